package store

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Guard row states, as stored.
const (
	statePending = "pending"
	stateApplied = "applied"
	stateDead    = "dead"
)

// decide maps the guard row as it is after the upsert of item version v
// (rowVersion, rowState) to a decision. found is false when the upsert left
// the row alone, which only happens when the row holds a newer version.
func decide(v int64, found bool, rowVersion int64, rowState string) Decision {
	switch {
	case !found || rowVersion > v:
		return SkipStale
	case rowState == statePending:
		return Apply
	default:
		return SkipDuplicate
	}
}

// Open opens the state store named by driver: "sqlite" (dsn is the database
// file path; see OpenSQLite) or "postgres" (dsn is a PostgreSQL connection
// string; see OpenPostgres). A nil logger discards.
func Open(ctx context.Context, driver, dsn string, logger *slog.Logger) (Store, error) {
	// Each branch checks err itself: returning a nil *SQLite as a Store would
	// make a non-nil interface.
	switch driver {
	case "sqlite":
		s, err := OpenSQLite(ctx, dsn, logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres":
		s, err := OpenPostgres(ctx, dsn, logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("store: unknown driver %q: valid drivers are \"sqlite\" and \"postgres\"", driver)
}

func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// badText says what is wrong with an identifier stored as text: both
// databases need valid UTF-8 without NUL bytes.
func badText(v string) string {
	switch {
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case strings.ContainsRune(v, 0):
		return "contains a NUL byte"
	}
	return ""
}

// cleanText makes free text (reasons, codes) storable as is.
func cleanText(v string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "")
}

func validateSync(op, sync string) error {
	if sync == "" {
		return fmt.Errorf("%s: sync name is empty", op)
	}
	if bad := badText(sync); bad != "" {
		return fmt.Errorf("%s: sync name %q %s", op, sync, bad)
	}
	return nil
}

func validateItem(op, sync, what string, i int, it Item) error {
	switch {
	case it.Key == "" && what == "item":
		return fmt.Errorf("%s: sync %q %s %d (event %q): key is empty", op, sync, what, i, it.EventID)
	case it.EventID == "":
		return fmt.Errorf("%s: sync %q %s %d (key %q): event id is empty", op, sync, what, i, it.Key)
	}
	if bad := badText(it.Key); bad != "" {
		return fmt.Errorf("%s: sync %q %s %d (event %q): key %q %s", op, sync, what, i, it.EventID, it.Key, bad)
	}
	if bad := badText(it.EventID); bad != "" {
		return fmt.Errorf("%s: sync %q %s %d (key %q): event id %q %s", op, sync, what, i, it.Key, it.EventID, bad)
	}
	return nil
}

func validateCursor(op, name, value string) error {
	if name == "" {
		return fmt.Errorf("%s: cursor name is empty", op)
	}
	if bad := badText(name); bad != "" {
		return fmt.Errorf("%s: cursor name %q %s", op, name, bad)
	}
	if bad := badText(value); bad != "" {
		return fmt.Errorf("%s: cursor %q: value %s (encode binary positions, e.g. base64)", op, name, bad)
	}
	return nil
}

func validateItems(op, sync string, items []Item) error {
	if err := validateSync(op, sync); err != nil {
		return err
	}
	for i, it := range items {
		if err := validateItem(op, sync, "item", i, it); err != nil {
			return err
		}
	}
	return nil
}

// finishPlan is a batch of results reduced to what each table needs, the
// same for both implementations.
type finishPlan struct {
	// outcomes holds one result per event id (the first), sorted by event id.
	// guard and xref are derived from every result: a write that happened
	// moves the guard even when its event's outcome was logged before.
	outcomes []Result
	// guard holds one state change per key (applied or dead), sorted by key.
	guard []guardChange
	// xref holds one change per (system, object, key), sorted.
	xref []xrefChange
}

type guardChange struct {
	key     string
	version int64
	state   string
}

type xrefChange struct {
	system, object, key string
	// targetID "" is a tombstone (the record was deleted).
	targetID string
	version  int64
}

func planFinish(op, sync string, results []Result) (finishPlan, error) {
	var p finishPlan
	if err := validateSync(op, sync); err != nil {
		return p, err
	}
	seen := make(map[string]bool, len(results))
	guard := make(map[string]guardChange)
	xref := make(map[[3]string]xrefChange)
	for i, r := range results {
		if err := validateItem(op, sync, "result", i, r.Item); err != nil {
			return p, err
		}
		for _, f := range []struct{ name, v string }{{"system", r.System}, {"object", r.Object}, {"target id", r.TargetID}} {
			if bad := badText(f.v); bad != "" {
				return p, fmt.Errorf("%s: sync %q result %d (event %q): %s %q %s", op, sync, i, r.EventID, f.name, f.v, bad)
			}
		}
		r.Reason, r.Code = cleanText(r.Reason), cleanText(r.Code)
		switch r.Outcome {
		case Applied, Skipped, Dead:
		default:
			return p, fmt.Errorf("%s: sync %q result %d (event %q): outcome %q is not one of %q, %q, %q",
				op, sync, i, r.EventID, r.Outcome, Applied, Skipped, Dead)
		}
		if !seen[r.EventID] { // the first result of an event is logged
			seen[r.EventID] = true
			p.outcomes = append(p.outcomes, r)
		}
		if r.Key == "" {
			continue // an event that could not be decoded: log and dead letter only
		}
		if r.Outcome == Applied || r.Outcome == Dead {
			// Only the highest version of a key can still match its row
			// (the row holds the newest version begun); applied beats dead.
			c := guardChange{key: r.Key, version: r.Version, state: string(r.Outcome)}
			if old, ok := guard[r.Key]; !ok || c.version > old.version ||
				(c.version == old.version && c.state == stateApplied) {
				guard[r.Key] = c
			}
		}
		if r.Outcome == Applied && r.System != "" && r.Object != "" && (r.TargetID != "" || r.Deleted) {
			c := xrefChange{system: r.System, object: r.Object, key: r.Key, version: r.Version}
			if !r.Deleted {
				c.targetID = r.TargetID
			}
			k := [3]string{r.System, r.Object, r.Key}
			if old, ok := xref[k]; !ok || c.version >= old.version {
				xref[k] = c
			}
		}
	}
	slices.SortStableFunc(p.outcomes, func(a, b Result) int { return strings.Compare(a.EventID, b.EventID) })
	for _, c := range guard {
		p.guard = append(p.guard, c)
	}
	slices.SortFunc(p.guard, func(a, b guardChange) int { return strings.Compare(a.key, b.key) })
	for _, c := range xref {
		p.xref = append(p.xref, c)
	}
	slices.SortFunc(p.xref, func(a, b xrefChange) int {
		return cmp.Or(strings.Compare(a.system, b.system), strings.Compare(a.object, b.object), strings.Compare(a.key, b.key))
	})
	return p, nil
}

func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

func validatePrune(op string, olderThan time.Duration) error {
	if olderThan <= 0 {
		return fmt.Errorf("%s: olderThan is %s: it must be positive (e.g. 720h for 30 days)", op, olderThan)
	}
	return nil
}

// pruneChunk bounds the rows one Prune statement deletes, so that a large
// prune never holds the write lock for long.
const pruneChunk = 5000

// migrationsFS holds migrations/<driver>/NNNN_name.sql, applied in order at
// open and recorded in the loyaltyhub_migrations table. Released files are
// never edited: a change is a new file.
//
//go:embed migrations
var migrationsFS embed.FS

// migration is one versioned schema change, from migrations/<driver>/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the migrations of one driver from fsys, sorted by
// version; file names must start with a positive number and versions must
// be unique.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations %s: %w", dir, err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s/%s: name must start with a positive version number and '_'", dir, e.Name())
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading embedded migration %s/%s: %w", dir, e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("embedded migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// pendingMigrations returns the migrations above current, or an error when
// the database is newer than this binary.
func pendingMigrations(ms []migration, current int, where string) ([]migration, error) {
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return nil, fmt.Errorf("%s has schema version %d, newer than this binary knows (%d): run a newer loyaltyhub", where, current, latest)
	}
	var out []migration
	for _, m := range ms {
		if m.version > current {
			out = append(out, m)
		}
	}
	return out, nil
}

// micro truncates t to microseconds, the precision both databases keep.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// validateLease checks AcquireLease's and ReleaseLease's arguments.
func validateLease(op, name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: empty lease name", op)
	case holder == "":
		return fmt.Errorf("%s: lease %q: empty holder", op, name)
	case ttl <= 0:
		return fmt.Errorf("%s: lease %q: ttl %v must be positive", op, name, ttl)
	}
	return nil
}

// RememberDelivery prunes at most deliveryPruneChunk expired deliveries on
// one call in deliveryPruneEvery, so that the table stays small between
// Prunes at little cost to ingress.
const (
	deliveryPruneEvery = 64
	deliveryPruneChunk = 256
)

func validateDelivery(op, source, id, digest string) error {
	for _, f := range []struct{ name, v string }{{"source", source}, {"delivery id", id}, {"digest", digest}} {
		if f.v == "" && f.name != "digest" {
			return fmt.Errorf("%s: %s is empty: %w", op, f.name, ErrInvalid)
		}
		if bad := badText(f.v); bad != "" {
			return fmt.Errorf("%s: %s %q %s (encode binary digests, e.g. hex): %w", op, f.name, f.v, bad, ErrInvalid)
		}
	}
	return nil
}

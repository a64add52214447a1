package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite pragmas, applied to every connection (see OpenSQLite for why).
const (
	sqliteWriterParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	sqliteReaderParams = "?_pragma=busy_timeout(5000)&_pragma=query_only(1)"
)

// SQLite is the Store on one SQLite database file (pure Go, modernc.org/sqlite).
//
// It keeps two pools on the file: one writer connection, through which every
// write transaction goes (so writers of this process queue in Go instead of
// polling SQLite's lock), and a few read-only connections for lookups, which
// WAL lets run while a write is in progress. Other processes may open the same
// file (a CLI listing dead letters while the hub runs); they wait for the write
// lock for up to 5 s (busy_timeout).
type SQLite struct {
	path string
	w    *sql.DB // one connection; BEGIN IMMEDIATE
	r    *sql.DB // read-only connections
	log  *slog.Logger
	now  func() time.Time

	// Prepared on w.
	stBegin, stGuard, stOutcome, stDLUpsert, stDLDelete, stXref, stRemember *sql.Stmt
	// Prepared on r.
	stLookup, stCursor, stSeen *sql.Stmt

	// remembered counts RememberDelivery calls, to prune now and then.
	remembered atomic.Uint64
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating it and its parent directory if needed) the
// SQLite database at path and brings its schema up to date. A nil logger
// discards.
//
// Connection settings: journal_mode=WAL (readers never block the writer and
// the reverse), busy_timeout=5000 ms (another process holding the write lock
// is waited for, not failed on), _txlock=immediate (every transaction takes
// the write lock at BEGIN, so a read-then-write guard decision can never be
// overtaken by another writer and never fails late with SQLITE_BUSY), and
// synchronous=NORMAL. With WAL, NORMAL keeps every committed transaction
// across a crash of the process (at commit the WAL is written to the OS,
// which outlives the process) and never corrupts the file; only an OS crash
// or power loss can lose the transactions of the last moments (the WAL is
// fsynced at checkpoints). FULL would add an fsync to every commit, i.e. to
// every Begin and Finish, to cover that case alone; JetStream, which holds
// the events and their acks, does not fsync every write by default either, so
// both would lose the same moments. A plain path only: ":memory:" and file:
// URIs are refused (the two pools must see the same file).
func OpenSQLite(ctx context.Context, path string, logger *slog.Logger) (*SQLite, error) {
	const op = "store.OpenSQLite"
	switch {
	case path == "":
		return nil, fmt.Errorf("%s: database path is empty: give a file path such as data/loyaltyhub.db", op)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return nil, fmt.Errorf("%s: database path %q: give a plain file path (in-memory and file: URIs are not supported)", op, path)
	case strings.ContainsRune(path, '?'):
		return nil, fmt.Errorf("%s: database path %q: must not contain '?'", op, path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("%s: creating the directory of %s: %w", op, path, err)
		}
	}
	s := &SQLite{path: path, log: orDiscard(logger), now: time.Now}
	var err error
	if s.w, err = sql.Open("sqlite", path+sqliteWriterParams); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", op, path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("%s: %s: %w", op, path, err)
	}
	if s.r, err = sql.Open("sqlite", path+sqliteReaderParams); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("%s: %s: %w", op, path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %s: %w", op, path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationsFS, "migrations/sqlite")
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS loyaltyhub_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating the migrations table: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM loyaltyhub_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	todo, err := pendingMigrations(ms, current, "the database")
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO loyaltyhub_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, s.now().UnixMicro()); err != nil {
			return fmt.Errorf("recording migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	for _, m := range todo {
		s.log.Info("state store migrated", "driver", "sqlite", "path", s.path, "migration", m.name)
	}
	return nil
}

const (
	// The guard upsert: insert (v, pending), or on an existing row move it to
	// (v, pending) when v is newer; an equal v rewrites the row unchanged so
	// that RETURNING reports its state; an older v leaves the row alone and
	// returns nothing (SkipStale). The right-hand sides read the old row.
	sqliteBeginSQL = `INSERT INTO guard (sync, key, version, state, event_id, updated_at)
VALUES (?1, ?2, ?3, 'pending', ?4, ?5)
ON CONFLICT (sync, key) DO UPDATE SET
	state      = CASE WHEN excluded.version > guard.version THEN 'pending' ELSE guard.state END,
	event_id   = CASE WHEN excluded.version > guard.version THEN excluded.event_id ELSE guard.event_id END,
	updated_at = CASE WHEN excluded.version > guard.version THEN excluded.updated_at ELSE guard.updated_at END,
	version    = excluded.version
WHERE excluded.version >= guard.version
RETURNING version, state`

	sqliteGuardSQL = `UPDATE guard SET state = ?1, updated_at = ?2
WHERE sync = ?3 AND key = ?4 AND version = ?5 AND state <> ?1 AND (?1 = 'applied' OR state = 'pending')`

	sqliteOutcomeSQL = `INSERT INTO outcomes (sync, event_id, key, version, outcome, reason, at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sync, event_id) DO NOTHING`

	sqliteDLUpsertSQL = `INSERT INTO dead_letters (sync, event_id, key, version, reason, code, attempts, event, at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sync, event_id) DO UPDATE SET
	key = excluded.key, version = excluded.version, reason = excluded.reason, code = excluded.code,
	attempts = excluded.attempts, event = excluded.event, at = excluded.at`

	// Removes the dead letters of the events in a JSON array of ids, in one
	// statement per Finish (there are rarely any).
	sqliteDLDeleteSQL = `DELETE FROM dead_letters WHERE sync = ? AND event_id IN (SELECT value FROM json_each(?))`

	sqliteXrefSQL = `INSERT INTO xref (system, object, key, target_id, version, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (system, object, key) DO UPDATE SET
	target_id = excluded.target_id, version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version >= xref.version`

	sqliteLookupSQL = `SELECT target_id FROM xref WHERE system = ? AND object = ? AND key = ?`
	sqliteCursorSQL = `SELECT value FROM cursors WHERE name = ?`

	// A delivery is remembered unless one not yet expired is.
	sqliteRememberSQL = `INSERT INTO deliveries (source, id, digest, until) VALUES (?, ?, ?, ?)
ON CONFLICT (source, id) DO UPDATE SET digest = excluded.digest, until = excluded.until
WHERE deliveries.until <= ?`
	sqliteSeenSQL = `SELECT digest FROM deliveries WHERE source = ? AND id = ? AND until > ?`
)

func (s *SQLite) prepare(ctx context.Context) error {
	for _, p := range []struct {
		db  *sql.DB
		st  **sql.Stmt
		sql string
	}{
		{s.w, &s.stBegin, sqliteBeginSQL},
		{s.w, &s.stGuard, sqliteGuardSQL},
		{s.w, &s.stOutcome, sqliteOutcomeSQL},
		{s.w, &s.stDLUpsert, sqliteDLUpsertSQL},
		{s.w, &s.stDLDelete, sqliteDLDeleteSQL},
		{s.w, &s.stXref, sqliteXrefSQL},
		{s.w, &s.stRemember, sqliteRememberSQL},
		{s.r, &s.stLookup, sqliteLookupSQL},
		{s.r, &s.stCursor, sqliteCursorSQL},
		{s.r, &s.stSeen, sqliteSeenSQL},
	} {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", firstLine(p.sql), err)
		}
		*p.st = st
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Begin implements Store.
func (s *SQLite) Begin(ctx context.Context, sync string, items []Item) ([]Decision, error) {
	const op = "store.sqlite.Begin"
	if err := validateItems(op, sync, items); err != nil {
		return nil, err
	}
	out := make([]Decision, len(items))
	if len(items) == 0 {
		return out, nil
	}
	now := s.now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: sync %q: %w", op, sync, err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, s.stBegin)
	for i, it := range items {
		var version int64
		var state string
		err := st.QueryRowContext(ctx, sync, it.Key, it.Version, it.EventID, now).Scan(&version, &state)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%s: sync %q key %q: %w", op, sync, it.Key, err)
		}
		out[i] = decide(it.Version, found, version, state)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%s: sync %q: commit: %w", op, sync, err)
	}
	return out, nil
}

// Finish implements Store.
func (s *SQLite) Finish(ctx context.Context, sync string, results []Result) error {
	const op = "store.sqlite.Finish"
	p, err := planFinish(op, sync, results)
	if err != nil || len(p.outcomes) == 0 {
		return err
	}
	now := s.now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: sync %q: %w", op, sync, err)
	}
	defer tx.Rollback()

	guard := tx.StmtContext(ctx, s.stGuard)
	for _, c := range p.guard {
		if _, err := guard.ExecContext(ctx, c.state, now, sync, c.key, c.version); err != nil {
			return fmt.Errorf("%s: sync %q key %q: guard: %w", op, sync, c.key, err)
		}
	}
	outcome := tx.StmtContext(ctx, s.stOutcome)
	dlUpsert := tx.StmtContext(ctx, s.stDLUpsert)
	var resolved []string
	for _, r := range p.outcomes {
		res, err := outcome.ExecContext(ctx, sync, r.EventID, r.Key, r.Version, string(r.Outcome), r.Reason, now)
		if err != nil {
			return fmt.Errorf("%s: sync %q event %q: outcome: %w", op, sync, r.EventID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("%s: sync %q event %q: outcome: %w", op, sync, r.EventID, err)
		}
		if n == 0 {
			continue // already recorded: a redelivery
		}
		if r.Outcome != Dead {
			resolved = append(resolved, r.EventID)
			continue
		}
		if _, err := dlUpsert.ExecContext(ctx, sync, r.EventID, r.Key, r.Version, r.Reason, r.Code, r.Attempts, blob(r.Event), now); err != nil {
			return fmt.Errorf("%s: sync %q event %q: dead letter: %w", op, sync, r.EventID, err)
		}
	}
	if len(resolved) > 0 {
		ids, err := json.Marshal(resolved)
		if err != nil {
			return fmt.Errorf("%s: sync %q: %w", op, sync, err)
		}
		if _, err := tx.StmtContext(ctx, s.stDLDelete).ExecContext(ctx, sync, string(ids)); err != nil {
			return fmt.Errorf("%s: sync %q: removing resolved dead letters: %w", op, sync, err)
		}
	}
	xref := tx.StmtContext(ctx, s.stXref)
	for _, c := range p.xref {
		if _, err := xref.ExecContext(ctx, c.system, c.object, c.key, c.targetID, c.version, now); err != nil {
			return fmt.Errorf("%s: sync %q: cross-reference %s/%s key %q: %w", op, sync, c.system, c.object, c.key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: sync %q: commit: %w", op, sync, err)
	}
	return nil
}

// blob returns b as a query argument: NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// LookupXref implements Store.
func (s *SQLite) LookupXref(ctx context.Context, system, object, key string) (string, bool, error) {
	var id string
	err := s.stLookup.QueryRowContext(ctx, system, object, key).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.sqlite.LookupXref: %s/%s key %q: %w", system, object, key, err)
	}
	return id, id != "", nil
}

// GuardOf implements Store.
func (s *SQLite) GuardOf(ctx context.Context, sync, key string) (Guard, bool, error) {
	var g Guard
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT version, state, event_id, updated_at FROM guard WHERE sync = ? AND key = ?`,
		sync, key).Scan(&g.Version, &g.State, &g.EventID, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Guard{}, false, nil
	case err != nil:
		return Guard{}, false, fmt.Errorf("store.sqlite.GuardOf: sync %q key %q: %w", sync, key, err)
	}
	g.UpdatedAt = time.UnixMicro(at).UTC()
	return g, true, nil
}

// Counts implements Store.
func (s *SQLite) Counts(ctx context.Context, sync string) (Counts, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT outcome, count(*) FROM outcomes WHERE sync = ? GROUP BY outcome`, sync)
	if err != nil {
		return Counts{}, fmt.Errorf("store.sqlite.Counts: sync %q: %w", sync, err)
	}
	c, err := scanCounts(rows)
	if err != nil {
		return Counts{}, fmt.Errorf("store.sqlite.Counts: sync %q: %w", sync, err)
	}
	return c, nil
}

// scanner is what *sql.Rows and pgx.Rows have in common.
type scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func scanCounts(rows *sql.Rows) (Counts, error) {
	return scanCountsFrom(sqlRows{rows})
}

func scanCountsFrom(rows scanner) (Counts, error) {
	defer rows.Close()
	var c Counts
	for rows.Next() {
		var o string
		var n int64
		if err := rows.Scan(&o, &n); err != nil {
			return Counts{}, err
		}
		switch Outcome(o) {
		case Applied:
			c.Applied = n
		case Skipped:
			c.Skipped = n
		case Dead:
			c.Dead = n
		}
	}
	return c, rows.Err()
}

// DeadLetters implements Store.
func (s *SQLite) DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]DeadLetter, error) {
	return queryDeadLetters(ctx, sqliteDB{s.r}, "store.sqlite.DeadLetters", DeadLetterFilter{Sync: sync}, afterID, limit)
}

// QueryDeadLetters implements Store.
func (s *SQLite) QueryDeadLetters(ctx context.Context, f DeadLetterFilter, afterID int64, limit int) ([]DeadLetter, error) {
	return queryDeadLetters(ctx, sqliteDB{s.r}, "store.sqlite.QueryDeadLetters", f, afterID, limit)
}

// SummarizeDeadLetters implements Store.
func (s *SQLite) SummarizeDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetterGroup, error) {
	return summarizeDeadLetters(ctx, sqliteDB{s.r}, "store.sqlite.SummarizeDeadLetters", f)
}

// DiscardDeadLetters implements Store.
func (s *SQLite) DiscardDeadLetters(ctx context.Context, sel Selection, by Operator) (Discarded, error) {
	return discardDeadLetters(ctx, "store.sqlite.DiscardDeadLetters", s.inTx(ctx), s.now(), sel, by)
}

// Requeue implements Store.
func (s *SQLite) Requeue(ctx context.Context, id int64, by Operator) (DeadLetter, error) {
	return requeue(ctx, "store.sqlite.Requeue", s.inTx(ctx), s.now(), id, by)
}

// ResetKey implements Store.
func (s *SQLite) ResetKey(ctx context.Context, sync, key string, target Target, by Operator) (KeyReset, error) {
	return resetKey(ctx, "store.sqlite.ResetKey", s.inTx(ctx), s.now(), sync, key, target, by)
}

// AuditLog implements Store.
func (s *SQLite) AuditLog(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error) {
	return auditLog(ctx, sqliteDB{s.r}, "store.sqlite.AuditLog", afterID, limit)
}

// FoldKeys implements Store.
func (s *SQLite) FoldKeys(ctx context.Context, sync, system, object string, fold func(string) string) (int, error) {
	return foldKeys(ctx, "store.sqlite.FoldKeys", s.inTx(ctx), sync, system, object, fold)
}

// inTx returns a runner of write transactions on the writer connection.
func (s *SQLite) inTx(ctx context.Context) func(func(sqlDB) error) error {
	return func(f func(sqlDB) error) error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := f(sqliteDB{tx}); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// sqliteDB adapts a *sql.DB or *sql.Tx on SQLite to sqlDB.
type sqliteDB struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (d sqliteDB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqliteDB) query(ctx context.Context, query string, args ...any) (scanner, error) {
	rows, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d sqliteDB) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return sqlRow{d.q.QueryRowContext(ctx, query, args...)}
}

func (sqliteDB) t(t time.Time) any { return t.UnixMicro() }

// sqlRow maps sql.ErrNoRows to errNoRows.
type sqlRow struct{ *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	} else if err != nil {
		return err
	}
	return nil
}

// SeenDelivery implements Store.
func (s *SQLite) SeenDelivery(ctx context.Context, source, id string) (string, bool, error) {
	var digest string
	err := s.stSeen.QueryRowContext(ctx, source, id, s.now().UnixMicro()).Scan(&digest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.sqlite.SeenDelivery: source %q delivery %q: %w", source, id, err)
	}
	return digest, true, nil
}

// RememberDelivery implements Store.
func (s *SQLite) RememberDelivery(ctx context.Context, source, id, digest string, until time.Time) error {
	const op = "store.sqlite.RememberDelivery"
	if err := validateDelivery(op, source, id, digest); err != nil {
		return err
	}
	now := s.now().UnixMicro()
	if _, err := s.stRemember.ExecContext(ctx, source, id, digest, until.UnixMicro(), now); err != nil {
		return fmt.Errorf("%s: source %q delivery %q: %w", op, source, id, err)
	}
	if s.remembered.Add(1)%deliveryPruneEvery == 0 {
		if _, err := s.w.ExecContext(ctx, sqlitePruneDeliveriesSQL(deliveryPruneChunk), now); err != nil {
			s.log.Warn("pruning expired deliveries", "driver", "sqlite", "err", err)
		}
	}
	return nil
}

func sqlitePruneDeliveriesSQL(limit int) string {
	return `DELETE FROM deliveries WHERE (source, id) IN
		(SELECT source, id FROM deliveries WHERE until <= ? LIMIT ` + fmt.Sprint(limit) + `)`
}

// GetCursor implements Store.
func (s *SQLite) GetCursor(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.stCursor.QueryRowContext(ctx, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.sqlite.GetCursor: %q: %w", name, err)
	}
	return v, true, nil
}

// SetCursor implements Store.
func (s *SQLite) SetCursor(ctx context.Context, name, value string) error {
	if err := validateCursor("store.sqlite.SetCursor", name, value); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, value, s.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("store.sqlite.SetCursor: %q: %w", name, err)
	}
	return nil
}

// AcquireLease implements Store.
func (s *SQLite) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	const op = "store.sqlite.AcquireLease"
	if err := validateLease(op, name, holder, ttl); err != nil {
		return Lease{}, false, err
	}
	now := s.now()
	l := Lease{Name: name}
	var acquired, expires int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO leases (name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END
		WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at
		RETURNING holder, acquired_at, expires_at`,
		name, holder, now.Add(ttl).UnixMicro(), now.UnixMicro()).Scan(&l.Holder, &acquired, &expires)
	ok := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		err = s.w.QueryRowContext(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?`, name).
			Scan(&l.Holder, &acquired, &expires)
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("%s: lease %q for %q: %w", op, name, holder, err)
	}
	l.AcquiredAt, l.ExpiresAt = time.UnixMicro(acquired).UTC(), time.UnixMicro(expires).UTC()
	return l, ok, nil
}

// LeaseOf implements Store.
func (s *SQLite) LeaseOf(ctx context.Context, name string) (Lease, bool, error) {
	l := Lease{Name: name}
	var acquired, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?`, name).
		Scan(&l.Holder, &acquired, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Lease{}, false, nil
	case err != nil:
		return Lease{}, false, fmt.Errorf("store.sqlite.LeaseOf: %q: %w", name, err)
	}
	l.AcquiredAt, l.ExpiresAt = time.UnixMicro(acquired).UTC(), time.UnixMicro(expires).UTC()
	return l, true, nil
}

// ReleaseLease implements Store.
func (s *SQLite) ReleaseLease(ctx context.Context, name, holder string) error {
	const op = "store.sqlite.ReleaseLease"
	if err := validateLease(op, name, holder, 1); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("%s: lease %q for %q: %w", op, name, holder, err)
	}
	return nil
}

// Prune implements Store.
func (s *SQLite) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	const op = "store.sqlite.Prune"
	if err := validatePrune(op, olderThan); err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-olderThan).UnixMicro()
	var total int64
	for _, q := range []struct{ what, sql string }{
		{"outcomes", `DELETE FROM outcomes WHERE (sync, event_id) IN
			(SELECT sync, event_id FROM outcomes WHERE at < ? LIMIT ` + fmt.Sprint(pruneChunk) + `)`},
		{"cross-reference tombstones", `DELETE FROM xref WHERE (system, object, key) IN
			(SELECT system, object, key FROM xref WHERE target_id = '' AND updated_at < ? LIMIT ` + fmt.Sprint(pruneChunk) + `)`},
		{"expired deliveries", sqlitePruneDeliveriesSQL(pruneChunk)},
	} {
		arg := cutoff
		if q.what == "expired deliveries" {
			arg = s.now().UnixMicro()
		}
		for {
			res, err := s.w.ExecContext(ctx, q.sql, arg)
			if err != nil {
				return total, fmt.Errorf("%s: %s: %w", op, q.what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("%s: %s: %w", op, q.what, err)
			}
			total += n
			if n < pruneChunk {
				break
			}
		}
	}
	s.log.Debug("state store pruned", "driver", "sqlite", "older_than", olderThan, "rows", total)
	return total, nil
}

// Close implements Store.
func (s *SQLite) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stBegin, s.stGuard, s.stOutcome, s.stDLUpsert, s.stDLDelete, s.stXref, s.stRemember,
		s.stLookup, s.stCursor, s.stSeen} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

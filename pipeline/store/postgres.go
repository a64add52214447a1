package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store on a PostgreSQL database, for hub replicas that share
// state.
//
// It talks pgx's native interface through a pgxpool.Pool rather than
// database/sql: Begin and Finish send all their statements in one pgx.Batch
// (one network round trip, run by the server as one implicit transaction),
// with whole batches passed as arrays to unnest(), so a batch of 200 events
// costs one round trip and a handful of statements, not 200. database/sql has
// neither pipelined batches nor native array parameters.
//
// Row locks are always taken in byte order of the key (the order Go sorts
// strings in, and PostgreSQL's "C" collation), so replicas running
// Begin and Finish on overlapping keys do not deadlock; should the server
// still report a deadlock or a serialization failure, the whole batch, rolled
// back, is retried a few times.
type Postgres struct {
	pool   *pgxpool.Pool
	schema string
	log    *slog.Logger
	now    func() time.Time

	// remembered counts RememberDelivery calls, to prune now and then.
	remembered atomic.Uint64
}

var _ Store = (*Postgres)(nil)

// migrationLock is the pg_advisory_xact_lock key under which replicas apply
// migrations one at a time ("loyaltyhub" in ASCII).
const migrationLock int64 = 0x6c6f79616c7479

// OpenPostgres connects to the PostgreSQL database named by dsn (a URL such as
// postgres://user@host:5432/db?sslmode=disable or a key=value string; pgxpool
// settings such as pool_max_conns are accepted) and brings its schema up to
// date. The tables go to the first schema of the DSN's search_path
// (…&search_path=loyaltyhub), created if missing, else to the server's
// default. Behind PgBouncer in transaction mode add
// default_query_exec_mode=exec to the DSN. A nil logger discards.
func OpenPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*Postgres, error) {
	const op = "store.OpenPostgres"
	if dsn == "" {
		return nil, fmt.Errorf("%s: DSN is empty: give a URL such as postgres://user@host:5432/db?sslmode=disable", op)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: parsing the DSN: %w", op, err)
	}
	p := &Postgres{
		schema: firstSchema(cfg.ConnConfig.RuntimeParams["search_path"]),
		log:    orDiscard(logger),
		now:    time.Now,
	}
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if p.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", op, where, err)
	}
	if err := p.pool.Ping(ctx); err != nil {
		p.pool.Close()
		return nil, fmt.Errorf("%s: connecting to %s: %w", op, where, err)
	}
	if err := p.migrate(ctx); err != nil {
		p.pool.Close()
		return nil, fmt.Errorf("%s: %s: %w", op, where, err)
	}
	return p, nil
}

// firstSchema returns the first explicit schema of a search_path value.
func firstSchema(searchPath string) string {
	first, _, _ := strings.Cut(searchPath, ",")
	first = strings.TrimSpace(first)
	if len(first) >= 2 && first[0] == '"' && first[len(first)-1] == '"' {
		first = strings.ReplaceAll(first[1:len(first)-1], `""`, `"`)
	}
	if first == "$user" {
		return ""
	}
	return first
}

func (p *Postgres) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationsFS, "migrations/postgres")
	if err != nil {
		return err
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	if p.schema != "" {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, p.schema).Scan(&exists); err != nil {
			return fmt.Errorf("looking up schema %q: %w", p.schema, err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{p.schema}.Sanitize()); err != nil {
				return fmt.Errorf("creating schema %q (named by search_path in the DSN): %w", p.schema, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS loyaltyhub_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL)`); err != nil {
		return fmt.Errorf("creating the migrations table: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM loyaltyhub_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	where := "the database"
	if p.schema != "" {
		where = fmt.Sprintf("schema %q", p.schema)
	}
	todo, err := pendingMigrations(ms, current, where)
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO loyaltyhub_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, p.now()); err != nil {
			return fmt.Errorf("recording migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	for _, m := range todo {
		p.log.Info("state store migrated", "driver", "postgres", "schema", p.schema, "migration", m.name)
	}
	return nil
}

// retry runs f again when PostgreSQL rolled its transaction back for a
// deadlock or a serialization failure, at most 5 times in all.
func (p *Postgres) retry(ctx context.Context, op string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var pgErr *pgconn.PgError
		if err == nil || attempt == 5 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
		wait := time.Duration(attempt)*10*time.Millisecond + rand.N(10*time.Millisecond)
		p.log.Warn("state store transaction rolled back by the server, retrying",
			"op", op, "sqlstate", pgErr.Code, "attempt", attempt, "wait", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// The guard upsert for one round of distinct keys, sorted (see sqliteBeginSQL
// for the logic). ON CONFLICT DO UPDATE locks the existing row and evaluates
// against its latest committed version, so the decision and the pending write
// are one atomic step even across replicas.
const pgBeginSQL = `INSERT INTO guard AS g (sync, key, version, state, event_id, updated_at)
SELECT $1::text, u.key, u.version, 'pending', u.event_id, $5::timestamptz
FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(key, version, event_id)
ON CONFLICT (sync, key) DO UPDATE SET
	state      = CASE WHEN excluded.version > g.version THEN 'pending' ELSE g.state END,
	event_id   = CASE WHEN excluded.version > g.version THEN excluded.event_id ELSE g.event_id END,
	updated_at = CASE WHEN excluded.version > g.version THEN excluded.updated_at ELSE g.updated_at END,
	version    = excluded.version
WHERE excluded.version >= g.version
RETURNING g.key, g.version, g.state`

type pgRoundItem struct {
	index int
	Item
}

// Begin implements Store. Items are split into rounds, round n holding the
// n-th occurrence of each key (usually there is one round); each round is one
// statement over distinct keys, and all rounds go in one batch.
func (p *Postgres) Begin(ctx context.Context, sync string, items []Item) ([]Decision, error) {
	const op = "store.postgres.Begin"
	if err := validateItems(op, sync, items); err != nil {
		return nil, err
	}
	out := make([]Decision, len(items))
	if len(items) == 0 {
		return out, nil
	}
	var rounds [][]pgRoundItem
	seen := make(map[string]int, len(items))
	for i, it := range items {
		n := seen[it.Key]
		seen[it.Key] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[n] = append(rounds[n], pgRoundItem{index: i, Item: it})
	}
	now := micro(p.now())
	args := make([][]any, len(rounds))
	for r, round := range rounds {
		slices.SortFunc(round, func(a, b pgRoundItem) int { return strings.Compare(a.Key, b.Key) })
		keys := make([]string, len(round))
		versions := make([]int64, len(round))
		ids := make([]string, len(round))
		for j, it := range round {
			keys[j], versions[j], ids[j] = it.Key, it.Version, it.EventID
		}
		args[r] = []any{sync, keys, versions, ids, now}
	}
	type row struct {
		version int64
		state   string
	}
	err := p.retry(ctx, op, func() error {
		batch := &pgx.Batch{} // a batch is sent once: build it per attempt
		for _, a := range args {
			batch.Queue(pgBeginSQL, a...)
		}
		br := p.pool.SendBatch(ctx, batch)
		defer br.Close()
		for _, round := range rounds {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			got := make(map[string]row, len(round))
			for rows.Next() {
				var k string
				var r row
				if err := rows.Scan(&k, &r.version, &r.state); err != nil {
					rows.Close()
					return err
				}
				got[k] = r
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, it := range round {
				r, found := got[it.Key]
				out[it.index] = decide(it.Version, found, r.version, r.state)
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("%s: sync %q: %w", op, sync, err)
	}
	return out, nil
}

// The Finish statements look rows up one key at a time (LATERAL subqueries on
// a unique key, then TID scans), so that their plans never depend on the
// tables' statistics: a plan built while a table was empty, or a hash join
// chosen for a mid-sized one, would otherwise scan whole tables per batch.
// FOR UPDATE or LIMIT 1 keeps the planner from turning a LATERAL subquery
// back into a plain join.
const (
	// Locks the guard rows a Finish changes, in the order of $2 (sorted by
	// the caller), before they are changed.
	pgGuardLockSQL = `SELECT 1 FROM unnest($2::text[]) AS u(key)
CROSS JOIN LATERAL (SELECT 1 FROM guard g WHERE g.sync = $1 AND g.key = u.key FOR UPDATE) l`

	// Updates the rows locked just before. Addressing them by ctid is safe
	// because nobody else can change them until this transaction ends.
	pgGuardSQL = `UPDATE guard g SET state = x.state, updated_at = $5::timestamptz
FROM (
	SELECT t.tid, u.state FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(key, version, state)
	CROSS JOIN LATERAL (SELECT ctid AS tid FROM guard WHERE sync = $1 AND key = u.key AND version = u.version LIMIT 1) t
) x
WHERE g.ctid = x.tid AND g.state <> x.state AND (x.state = 'applied' OR g.state = 'pending')`

	// Records the outcomes not yet recorded, then, for those alone, writes the
	// dead letter (dead) or removes a requeued one (applied, skipped).
	pgOutcomeSQL = `WITH r AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bytea[])
		AS r(event_id, key, version, outcome, reason, code, attempts, event)
), o AS (
	INSERT INTO outcomes (sync, event_id, key, version, outcome, reason, at)
	SELECT $1::text, r.event_id, r.key, r.version, r.outcome, r.reason, $10::timestamptz FROM r
	ON CONFLICT (sync, event_id) DO NOTHING
	RETURNING event_id, outcome
), d AS (
	INSERT INTO dead_letters (sync, event_id, key, version, reason, code, attempts, event, at)
	SELECT $1::text, r.event_id, r.key, r.version, r.reason, r.code, r.attempts, r.event, $10::timestamptz
	FROM r JOIN o ON o.event_id = r.event_id WHERE o.outcome = 'dead'
	ON CONFLICT (sync, event_id) DO UPDATE SET
		key = excluded.key, version = excluded.version, reason = excluded.reason, code = excluded.code,
		attempts = excluded.attempts, event = excluded.event, at = excluded.at
)
DELETE FROM dead_letters dl USING (
	SELECT t.tid FROM o
	CROSS JOIN LATERAL (SELECT ctid AS tid FROM dead_letters WHERE sync = $1 AND event_id = o.event_id LIMIT 1) t
	WHERE o.outcome <> 'dead'
) x
WHERE dl.ctid = x.tid`

	pgXrefSQL = `INSERT INTO xref AS x (system, object, key, target_id, version, updated_at)
SELECT u.system, u.object, u.key, u.target_id, u.version, $6::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(system, object, key, target_id, version)
ON CONFLICT (system, object, key) DO UPDATE SET
	target_id = excluded.target_id, version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version >= x.version`
)

// Finish implements Store: at most four statements in one batch.
func (p *Postgres) Finish(ctx context.Context, sync string, results []Result) error {
	const op = "store.postgres.Finish"
	plan, err := planFinish(op, sync, results)
	if err != nil || len(plan.outcomes) == 0 {
		return err
	}
	now := micro(p.now())
	type stmt struct {
		sql  string
		args []any
	}
	var stmts []stmt
	if n := len(plan.guard); n > 0 {
		keys := make([]string, n)
		versions := make([]int64, n)
		states := make([]string, n)
		for i, c := range plan.guard {
			keys[i], versions[i], states[i] = c.key, c.version, c.state
		}
		stmts = append(stmts,
			stmt{pgGuardLockSQL, []any{sync, keys}},
			stmt{pgGuardSQL, []any{sync, keys, versions, states, now}})
	}
	{
		n := len(plan.outcomes)
		ids, keys, outcomes, reasons, codes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions := make([]int64, n)
		attempts := make([]int32, n)
		events := make([][]byte, n)
		for i, r := range plan.outcomes {
			ids[i], keys[i], versions[i], outcomes[i], reasons[i], codes[i] = r.EventID, r.Key, r.Version, string(r.Outcome), r.Reason, r.Code
			attempts[i] = int32(min(r.Attempts, 1<<31-1))
			if len(r.Event) > 0 {
				events[i] = r.Event
			}
		}
		stmts = append(stmts, stmt{pgOutcomeSQL, []any{sync, ids, keys, versions, outcomes, reasons, codes, attempts, events, now}})
	}
	if n := len(plan.xref); n > 0 {
		systems, objects, keys, targets := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions := make([]int64, n)
		for i, c := range plan.xref {
			systems[i], objects[i], keys[i], targets[i], versions[i] = c.system, c.object, c.key, c.targetID, c.version
		}
		stmts = append(stmts, stmt{pgXrefSQL, []any{systems, objects, keys, targets, versions, now}})
	}
	err = p.retry(ctx, op, func() error {
		batch := &pgx.Batch{} // a batch is sent once: build it per attempt
		for _, st := range stmts {
			batch.Queue(st.sql, st.args...)
		}
		return p.pool.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("%s: sync %q: %w", op, sync, err)
	}
	return nil
}

// LookupXref implements Store.
func (p *Postgres) LookupXref(ctx context.Context, system, object, key string) (string, bool, error) {
	var id string
	err := p.pool.QueryRow(ctx, `SELECT target_id FROM xref WHERE system = $1 AND object = $2 AND key = $3`,
		system, object, key).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.postgres.LookupXref: %s/%s key %q: %w", system, object, key, err)
	}
	return id, id != "", nil
}

// GuardOf implements Store.
func (p *Postgres) GuardOf(ctx context.Context, sync, key string) (Guard, bool, error) {
	var g Guard
	err := p.pool.QueryRow(ctx, `SELECT version, state, event_id, updated_at FROM guard WHERE sync = $1 AND key = $2`,
		sync, key).Scan(&g.Version, &g.State, &g.EventID, &g.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Guard{}, false, nil
	case err != nil:
		return Guard{}, false, fmt.Errorf("store.postgres.GuardOf: sync %q key %q: %w", sync, key, err)
	}
	g.UpdatedAt = g.UpdatedAt.UTC()
	return g, true, nil
}

// Counts implements Store.
func (p *Postgres) Counts(ctx context.Context, sync string) (Counts, error) {
	rows, err := p.pool.Query(ctx, `SELECT outcome, count(*) FROM outcomes WHERE sync = $1 GROUP BY outcome`, sync)
	if err != nil {
		return Counts{}, fmt.Errorf("store.postgres.Counts: sync %q: %w", sync, err)
	}
	c, err := scanCountsFrom(rows)
	if err != nil {
		return Counts{}, fmt.Errorf("store.postgres.Counts: sync %q: %w", sync, err)
	}
	return c, nil
}

// DeadLetters implements Store.
func (p *Postgres) DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]DeadLetter, error) {
	return queryDeadLetters(ctx, pgDB{p.pool}, "store.postgres.DeadLetters", DeadLetterFilter{Sync: sync}, afterID, limit)
}

// QueryDeadLetters implements Store.
func (p *Postgres) QueryDeadLetters(ctx context.Context, f DeadLetterFilter, afterID int64, limit int) ([]DeadLetter, error) {
	return queryDeadLetters(ctx, pgDB{p.pool}, "store.postgres.QueryDeadLetters", f, afterID, limit)
}

// SummarizeDeadLetters implements Store.
func (p *Postgres) SummarizeDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetterGroup, error) {
	return summarizeDeadLetters(ctx, pgDB{p.pool}, "store.postgres.SummarizeDeadLetters", f)
}

// DiscardDeadLetters implements Store.
func (p *Postgres) DiscardDeadLetters(ctx context.Context, sel Selection, by Operator) (Discarded, error) {
	const op = "store.postgres.DiscardDeadLetters"
	return discardDeadLetters(ctx, op, p.inTx(ctx, op), micro(p.now()), sel, by)
}

// Requeue implements Store.
func (p *Postgres) Requeue(ctx context.Context, id int64, by Operator) (DeadLetter, error) {
	const op = "store.postgres.Requeue"
	return requeue(ctx, op, p.inTx(ctx, op), micro(p.now()), id, by)
}

// ResetKey implements Store.
func (p *Postgres) ResetKey(ctx context.Context, sync, key string, target Target, by Operator) (KeyReset, error) {
	const op = "store.postgres.ResetKey"
	return resetKey(ctx, op, p.inTx(ctx, op), micro(p.now()), sync, key, target, by)
}

// AuditLog implements Store.
func (p *Postgres) AuditLog(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error) {
	return auditLog(ctx, pgDB{p.pool}, "store.postgres.AuditLog", afterID, limit)
}

// FoldKeys implements Store.
func (p *Postgres) FoldKeys(ctx context.Context, sync, system, object string, fold func(string) string) (int, error) {
	const op = "store.postgres.FoldKeys"
	return foldKeys(ctx, op, p.inTx(ctx, op), sync, system, object, fold)
}

// inTx returns a runner of transactions, run again on a deadlock or a
// serialization failure (see retry).
func (p *Postgres) inTx(ctx context.Context, op string) func(func(sqlDB) error) error {
	return func(f func(sqlDB) error) error {
		return p.retry(ctx, op, func() error {
			return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return f(pgDB{tx}) })
		})
	}
}

// pgDB adapts a pool or a transaction to sqlDB, rewriting ? placeholders
// to $n (the shared statements hold no other question marks).
type pgDB struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (d pgDB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, dollars(query), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d pgDB) query(ctx context.Context, query string, args ...any) (scanner, error) {
	return d.q.Query(ctx, dollars(query), args...)
}

func (d pgDB) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return pgRow{d.q.QueryRow(ctx, dollars(query), args...)}
}

func (pgDB) t(t time.Time) any { return micro(t) }

// pgRow maps pgx.ErrNoRows to errNoRows.
type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	} else if err != nil {
		return err
	}
	return nil
}

// dollars rewrites the ? placeholders of query to $1, $2, …
func dollars(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// SeenDelivery implements Store.
func (p *Postgres) SeenDelivery(ctx context.Context, source, id string) (string, bool, error) {
	var digest string
	err := p.pool.QueryRow(ctx, `SELECT digest FROM deliveries WHERE source = $1 AND id = $2 AND until > $3`,
		source, id, micro(p.now())).Scan(&digest)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.postgres.SeenDelivery: source %q delivery %q: %w", source, id, err)
	}
	return digest, true, nil
}

// RememberDelivery implements Store.
func (p *Postgres) RememberDelivery(ctx context.Context, source, id, digest string, until time.Time) error {
	const op = "store.postgres.RememberDelivery"
	if err := validateDelivery(op, source, id, digest); err != nil {
		return err
	}
	now := micro(p.now())
	if _, err := p.pool.Exec(ctx, `INSERT INTO deliveries AS x (source, id, digest, until) VALUES ($1, $2, $3, $4)
		ON CONFLICT (source, id) DO UPDATE SET digest = excluded.digest, until = excluded.until
		WHERE x.until <= $5`, source, id, digest, micro(until), now); err != nil {
		return fmt.Errorf("%s: source %q delivery %q: %w", op, source, id, err)
	}
	if p.remembered.Add(1)%deliveryPruneEvery == 0 {
		if _, err := p.pool.Exec(ctx, pgPruneDeliveriesSQL(deliveryPruneChunk), now); err != nil {
			p.log.Warn("pruning expired deliveries", "driver", "postgres", "err", err)
		}
	}
	return nil
}

func pgPruneDeliveriesSQL(limit int) string {
	return `DELETE FROM deliveries WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM deliveries WHERE until <= $1 LIMIT ` + fmt.Sprint(limit) + `))`
}

// GetCursor implements Store.
func (p *Postgres) GetCursor(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := p.pool.QueryRow(ctx, `SELECT value FROM cursors WHERE name = $1`, name).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store.postgres.GetCursor: %q: %w", name, err)
	}
	return v, true, nil
}

// SetCursor implements Store.
func (p *Postgres) SetCursor(ctx context.Context, name, value string) error {
	if err := validateCursor("store.postgres.SetCursor", name, value); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, value, micro(p.now()))
	if err != nil {
		return fmt.Errorf("store.postgres.SetCursor: %q: %w", name, err)
	}
	return nil
}

// AcquireLease implements Store. Times are the database's clock.
func (p *Postgres) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	const op = "store.postgres.AcquireLease"
	if err := validateLease(op, name, holder, ttl); err != nil {
		return Lease{}, false, err
	}
	l := Lease{Name: name}
	err := p.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, expires_at, acquired_at)
		VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond', clock_timestamp())
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END
		WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at
		RETURNING holder, acquired_at, expires_at`,
		name, holder, ttl.Microseconds()).Scan(&l.Holder, &l.AcquiredAt, &l.ExpiresAt)
	ok := err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = p.pool.QueryRow(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = $1`, name).
			Scan(&l.Holder, &l.AcquiredAt, &l.ExpiresAt)
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("%s: lease %q for %q: %w", op, name, holder, err)
	}
	l.AcquiredAt, l.ExpiresAt = l.AcquiredAt.UTC(), l.ExpiresAt.UTC()
	return l, ok, nil
}

// LeaseOf implements Store.
func (p *Postgres) LeaseOf(ctx context.Context, name string) (Lease, bool, error) {
	l := Lease{Name: name}
	err := p.pool.QueryRow(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = $1`, name).
		Scan(&l.Holder, &l.AcquiredAt, &l.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Lease{}, false, nil
	case err != nil:
		return Lease{}, false, fmt.Errorf("store.postgres.LeaseOf: %q: %w", name, err)
	}
	l.AcquiredAt, l.ExpiresAt = l.AcquiredAt.UTC(), l.ExpiresAt.UTC()
	return l, true, nil
}

// ReleaseLease implements Store.
func (p *Postgres) ReleaseLease(ctx context.Context, name, holder string) error {
	const op = "store.postgres.ReleaseLease"
	if err := validateLease(op, name, holder, 1); err != nil {
		return err
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("%s: lease %q for %q: %w", op, name, holder, err)
	}
	return nil
}

// Prune implements Store.
func (p *Postgres) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	const op = "store.postgres.Prune"
	if err := validatePrune(op, olderThan); err != nil {
		return 0, err
	}
	cutoff := micro(p.now().Add(-olderThan))
	var total int64
	for _, q := range []struct{ what, sql string }{
		{"outcomes", `DELETE FROM outcomes WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM outcomes WHERE at < $1 LIMIT ` + fmt.Sprint(pruneChunk) + `))`},
		{"cross-reference tombstones", `DELETE FROM xref WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM xref WHERE target_id = '' AND updated_at < $1 LIMIT ` + fmt.Sprint(pruneChunk) + `))`},
		{"expired deliveries", pgPruneDeliveriesSQL(pruneChunk)},
	} {
		arg := cutoff
		if q.what == "expired deliveries" {
			arg = micro(p.now())
		}
		for {
			tag, err := p.pool.Exec(ctx, q.sql, arg)
			if err != nil {
				return total, fmt.Errorf("%s: %s: %w", op, q.what, err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < pruneChunk {
				break
			}
		}
	}
	p.log.Debug("state store pruned", "driver", "postgres", "older_than", olderThan, "rows", total)
	return total, nil
}

// Close implements Store.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

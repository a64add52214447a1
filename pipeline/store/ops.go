package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds what both drivers share beyond the hot path: the
// operators' dead-letter queries and changes (query, summary, discard,
// requeue, key reset), the audit log and FoldKeys. The rules are written once,
// here, against sqlDB; each driver only adapts its connection or transaction
// to it. The SQL is portable (SQLite 3.35+ and PostgreSQL): ? placeholders,
// rewritten to $n for PostgreSQL, and times passed through sqlDB.t and read
// back with dbTime.

// sqlDB is a database or transaction of either driver.
type sqlDB interface {
	exec(ctx context.Context, query string, args ...any) (int64, error)
	query(ctx context.Context, query string, args ...any) (scanner, error)
	queryRow(ctx context.Context, query string, args ...any) rowScanner
	// t is a time as the driver stores it.
	t(time.Time) any
}

type rowScanner interface{ Scan(dest ...any) error }

// errNoRows is what a rowScanner of either driver returns for no row.
var errNoRows = errors.New("no rows")

// dbTime scans a time column of either driver: SQLite keeps Unix
// microseconds, PostgreSQL timestamptz.
type dbTime struct{ p *time.Time }

func (d dbTime) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*d.p = time.UnixMicro(v).UTC()
	case time.Time:
		*d.p = v.UTC()
	case nil:
		*d.p = time.Time{}
	default:
		return fmt.Errorf("store: a time column holds %T", src)
	}
	return nil
}

// supersededSQL is true for a dead letter d whose key's guard row holds a
// newer version, applied.
const supersededSQL = `EXISTS (SELECT 1 FROM guard g WHERE g.sync = d.sync AND g.key = d.key AND g.state = 'applied' AND g.version > d.version)`

// letterColumns reads a dead letter d, with its event or without (NULL).
func letterColumns(withEvent bool) string {
	event := "d.event"
	if !withEvent {
		event = "NULL"
	}
	return `d.id, d.sync, d.event_id, d.key, d.version, d.reason, d.code, d.attempts, ` + event + `, d.at, ` + supersededSQL
}

func scanLetter(row rowScanner) (DeadLetter, error) {
	var d DeadLetter
	var event []byte
	if err := row.Scan(&d.ID, &d.Sync, &d.EventID, &d.Key, &d.Version, &d.Reason, &d.Code, &d.Attempts, &event,
		&dbTime{&d.At}, &d.Superseded); err != nil {
		return DeadLetter{}, err
	}
	if len(event) > 0 {
		d.Event = event
	}
	return d, nil
}

// args collects the arguments of one statement.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "?"
}

// in appends ids and returns "(?, ?, …)".
func (a *args) in(ids []int64) string {
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = a.add(id)
	}
	return "(" + strings.Join(ph, ", ") + ")"
}

// filterSQL returns f's conditions on dead letter d, each starting with AND.
func filterSQL(db sqlDB, f DeadLetterFilter, a *args) string {
	var b strings.Builder
	if f.Sync != "" {
		b.WriteString(" AND d.sync = " + a.add(f.Sync))
	}
	if f.Code != "" {
		b.WriteString(" AND d.code = " + a.add(f.Code))
	}
	if f.Key != "" {
		b.WriteString(" AND d.key = " + a.add(f.Key))
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND d.at >= " + a.add(db.t(micro(f.Since))))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND d.at < " + a.add(db.t(micro(f.Until))))
	}
	if f.Superseded {
		b.WriteString(" AND " + supersededSQL)
	}
	return b.String()
}

func validateFilter(op string, f DeadLetterFilter) error {
	for _, x := range []struct{ name, v string }{{"sync", f.Sync}, {"code", f.Code}, {"key", f.Key}} {
		if bad := badText(x.v); bad != "" {
			return fmt.Errorf("%s: filter %s %q %s: %w", op, x.name, x.v, bad, ErrInvalid)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%s: filter until %s is not after since %s: %w", op,
			f.Until.UTC().Format(time.RFC3339Nano), f.Since.UTC().Format(time.RFC3339Nano), ErrInvalid)
	}
	return nil
}

func validateOperator(op string, by Operator, needReason bool) error {
	switch {
	case by.Name == "":
		return fmt.Errorf("%s: who asks is required (Operator.Name) for the audit log: %w", op, ErrInvalid)
	case needReason && strings.TrimSpace(by.Reason) == "":
		return fmt.Errorf("%s: a reason is required: %w", op, ErrInvalid)
	}
	return nil
}

// selectLetters lists the dead letters among ids (when given) that f
// selects, after afterID, oldest first, at most limit (none when limit < 0).
func selectLetters(ctx context.Context, db sqlDB, f DeadLetterFilter, ids []int64, afterID int64, limit int, withEvents bool) ([]DeadLetter, error) {
	var a args
	q := `SELECT ` + letterColumns(withEvents) + ` FROM dead_letters d WHERE d.id > ` + a.add(afterID)
	if len(ids) > 0 {
		q += ` AND d.id IN ` + a.in(ids)
	}
	q += filterSQL(db, f, &a) + ` ORDER BY d.id`
	if limit >= 0 {
		q += ` LIMIT ` + a.add(limit)
	}
	rows, err := db.query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		d, err := scanLetter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func queryDeadLetters(ctx context.Context, db sqlDB, op string, f DeadLetterFilter, afterID int64, limit int) ([]DeadLetter, error) {
	if err := validateFilter(op, f); err != nil {
		return nil, err
	}
	out, err := selectLetters(ctx, db, f, nil, afterID, pageSize(limit), true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func summarizeDeadLetters(ctx context.Context, db sqlDB, op string, f DeadLetterFilter) ([]DeadLetterGroup, error) {
	if err := validateFilter(op, f); err != nil {
		return nil, err
	}
	var a args
	q := `SELECT d.sync, d.code, count(*), sum(CASE WHEN ` + supersededSQL + ` THEN 1 ELSE 0 END), min(d.at), max(d.at)
FROM dead_letters d WHERE 1 = 1` + filterSQL(db, f, &a) + `
GROUP BY d.sync, d.code ORDER BY d.sync, d.code`
	rows, err := db.query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := []DeadLetterGroup{}
	for rows.Next() {
		var g DeadLetterGroup
		if err := rows.Scan(&g.Sync, &g.Code, &g.Count, &g.Superseded, &dbTime{&g.Oldest}, &dbTime{&g.Newest}); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// giveUp is what discarding does to dead letters ids, in tx: the guard rows
// still holding their versions as pending again (requeued) go back to dead,
// their events' dead outcomes are recorded where a Requeue forgot them, and
// the letters go. It returns the guard rows of their keys as they were.
func giveUp(ctx context.Context, tx sqlDB, now time.Time, ids []int64) ([]AuditedGuard, error) {
	var a args
	in := a.in(ids)
	rows, err := tx.query(ctx, `SELECT DISTINCT g.sync, g.key, g.version, g.state, g.event_id, g.updated_at
FROM guard g JOIN dead_letters d ON g.sync = d.sync AND g.key = d.key
WHERE d.id IN `+in+` ORDER BY g.sync, g.key`, a...)
	if err != nil {
		return nil, fmt.Errorf("reading the guard rows: %w", err)
	}
	var guards []AuditedGuard
	for rows.Next() {
		var g AuditedGuard
		if err := rows.Scan(&g.Sync, &g.Key, &g.Version, &g.State, &g.EventID, &dbTime{&g.UpdatedAt}); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the guard rows: %w", err)
		}
		guards = append(guards, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the guard rows: %w", err)
	}

	a = nil
	at := a.add(tx.t(now))
	in = a.in(ids)
	if _, err := tx.exec(ctx, `UPDATE guard AS g SET state = 'dead', updated_at = `+at+`
FROM dead_letters d
WHERE d.id IN `+in+` AND g.sync = d.sync AND g.key = d.key AND g.version = d.version AND g.state = 'pending'`, a...); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	if _, err := tx.exec(ctx, `INSERT INTO outcomes (sync, event_id, key, version, outcome, reason, at)
SELECT d.sync, d.event_id, d.key, d.version, 'dead', d.reason, `+at+` FROM dead_letters d WHERE d.id IN `+in+`
ON CONFLICT (sync, event_id) DO NOTHING`, a...); err != nil {
		return nil, fmt.Errorf("outcomes: %w", err)
	}
	a = nil
	if _, err := tx.exec(ctx, `DELETE FROM dead_letters WHERE id IN `+a.in(ids), a...); err != nil {
		return nil, fmt.Errorf("deleting the dead letters: %w", err)
	}
	return guards, nil
}

func discardIn(ctx context.Context, tx sqlDB, now time.Time, sel Selection, by Operator) (Discarded, error) {
	var out Discarded
	ids := slices.Clone(sel.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	limit := sel.Limit
	switch {
	case len(ids) > 0:
		limit = len(ids)
	case limit <= 0 || limit > MaxPageSize:
		limit = MaxPageSize
	}
	letters, err := selectLetters(ctx, tx, sel.Filter, ids, 0, limit+1, false)
	if err != nil {
		return out, fmt.Errorf("selecting the dead letters: %w", err)
	}
	if len(letters) > limit {
		letters, out.More = letters[:limit], true
	}
	found := make(map[int64]bool, len(letters))
	for _, d := range letters {
		found[d.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			out.NotFound = append(out.NotFound, id)
		}
	}
	if len(letters) == 0 {
		return out, nil
	}
	chosen := make([]int64, len(letters))
	for i, d := range letters {
		chosen[i] = d.ID
	}
	guards, err := giveUp(ctx, tx, now, chosen)
	if err != nil {
		return out, err
	}
	e := AuditEntry{At: now, Actor: by.Name, Role: by.Role, Action: AuditDiscard, Reason: by.Reason,
		DeadLetters: audited(letters), Guards: guards}
	if !sel.Filter.IsZero() {
		f := sel.Filter
		e.Filter = &f
	}
	e.Sync, e.Key = common(letters)
	if out.AuditID, err = writeAudit(ctx, tx, e); err != nil {
		return out, err
	}
	out.DeadLetters = letters
	return out, nil
}

func discardDeadLetters(ctx context.Context, op string, inTx func(func(sqlDB) error) error, now time.Time, sel Selection, by Operator) (Discarded, error) {
	if err := validateOperator(op, by, false); err != nil {
		return Discarded{}, err
	}
	if err := validateFilter(op, sel.Filter); err != nil {
		return Discarded{}, err
	}
	switch {
	case len(sel.IDs) == 0 && sel.Filter.IsZero():
		return Discarded{}, fmt.Errorf("%s: name the dead letters to discard: ids, a filter or both (an empty selection would discard them all): %w", op, ErrInvalid)
	case len(sel.IDs) > MaxPageSize:
		return Discarded{}, fmt.Errorf("%s: %d ids: at most %d per call: %w", op, len(sel.IDs), MaxPageSize, ErrInvalid)
	}
	var out Discarded
	err := inTx(func(tx sqlDB) error {
		var err error
		out, err = discardIn(ctx, tx, now, sel, by)
		return err
	})
	if err != nil {
		return Discarded{}, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func requeue(ctx context.Context, op string, inTx func(func(sqlDB) error) error, now time.Time, id int64, by Operator) (DeadLetter, error) {
	if err := validateOperator(op, by, false); err != nil {
		return DeadLetter{}, err
	}
	var d DeadLetter
	err := inTx(func(tx sqlDB) error {
		var a args
		var err error
		d, err = scanLetter(tx.queryRow(ctx, `SELECT `+letterColumns(true)+` FROM dead_letters d WHERE d.id = `+a.add(id), a...))
		if err != nil {
			return err
		}
		var guards []AuditedGuard
		if g, ok, err := guardIn(ctx, tx, d.Sync, d.Key); err != nil {
			return err
		} else if ok {
			guards = []AuditedGuard{g}
		}
		if _, err := tx.exec(ctx, `UPDATE guard SET state = 'pending', updated_at = ?
WHERE sync = ? AND key = ? AND version = ? AND state = 'dead'`, tx.t(now), d.Sync, d.Key, d.Version); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		if _, err := tx.exec(ctx, `DELETE FROM outcomes WHERE sync = ? AND event_id = ? AND outcome = 'dead'`,
			d.Sync, d.EventID); err != nil {
			return fmt.Errorf("outcome: %w", err)
		}
		// An event whose outcome is applied or skipped after all is resolved.
		if _, err := tx.exec(ctx, `DELETE FROM dead_letters WHERE id = ?
AND EXISTS (SELECT 1 FROM outcomes WHERE sync = ? AND event_id = ?)`, id, d.Sync, d.EventID); err != nil {
			return err
		}
		_, err = writeAudit(ctx, tx, AuditEntry{At: now, Actor: by.Name, Role: by.Role, Action: AuditReplay, Reason: by.Reason,
			Sync: d.Sync, Key: d.Key, DeadLetters: audited([]DeadLetter{d}), Guards: guards})
		return err
	})
	if errors.Is(err, errNoRows) {
		return DeadLetter{}, fmt.Errorf("%s: dead letter %d: %w", op, id, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("%s: dead letter %d: %w", op, id, err)
	}
	return d, nil
}

func guardIn(ctx context.Context, tx sqlDB, sync, key string) (AuditedGuard, bool, error) {
	g := AuditedGuard{Sync: sync, Key: key}
	if key == "" {
		return g, false, nil
	}
	err := tx.queryRow(ctx, `SELECT version, state, event_id, updated_at FROM guard WHERE sync = ? AND key = ?`, sync, key).
		Scan(&g.Version, &g.State, &g.EventID, &dbTime{&g.UpdatedAt})
	switch {
	case errors.Is(err, errNoRows):
		return g, false, nil
	case err != nil:
		return g, false, fmt.Errorf("guard: %w", err)
	}
	return g, true, nil
}

func resetKey(ctx context.Context, op string, inTx func(func(sqlDB) error) error, now time.Time, sync, key string, target Target, by Operator) (KeyReset, error) {
	if err := validateSync(op, sync); err != nil {
		return KeyReset{}, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	switch bad := badText(key); {
	case key == "":
		return KeyReset{}, fmt.Errorf("%s: sync %q: key is empty: %w", op, sync, ErrInvalid)
	case bad != "":
		return KeyReset{}, fmt.Errorf("%s: sync %q: key %q %s: %w", op, sync, key, bad, ErrInvalid)
	}
	if err := validateOperator(op, by, true); err != nil {
		return KeyReset{}, err
	}
	var out KeyReset
	err := inTx(func(tx sqlDB) error {
		out = KeyReset{Sync: sync, Key: key}
		e := AuditEntry{At: now, Actor: by.Name, Role: by.Role, Action: AuditResetKey, Reason: by.Reason, Sync: sync, Key: key}
		g := Guard{}
		err := tx.queryRow(ctx, `DELETE FROM guard WHERE sync = ? AND key = ? RETURNING version, state, event_id, updated_at`, sync, key).
			Scan(&g.Version, &g.State, &g.EventID, &dbTime{&g.UpdatedAt})
		switch {
		case errors.Is(err, errNoRows):
		case err != nil:
			return fmt.Errorf("guard: %w", err)
		default:
			out.Guard = &g
			e.Guards = []AuditedGuard{{Sync: sync, Key: key, Version: g.Version, State: g.State, EventID: g.EventID, UpdatedAt: g.UpdatedAt}}
		}
		letters, err := selectLetters(ctx, tx, DeadLetterFilter{Sync: sync, Key: key}, nil, 0, -1, false)
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		if out.Guard == nil && len(letters) == 0 {
			return fmt.Errorf("sync %q has neither a guard row nor dead letters for key %q: %w", sync, key, ErrNotFound)
		}
		if len(letters) > 0 {
			ids := make([]int64, len(letters))
			for i, d := range letters {
				ids[i] = d.ID
			}
			if _, err := giveUp(ctx, tx, now, ids); err != nil {
				return err
			}
			out.Discarded, e.DeadLetters = letters, audited(letters)
		}
		if target.System != "" && target.Object != "" {
			x := AuditedXref{System: target.System, Object: target.Object, Key: key}
			err := tx.queryRow(ctx, `SELECT target_id, version FROM xref WHERE system = ? AND object = ? AND key = ?`,
				target.System, target.Object, key).Scan(&x.TargetID, &x.Version)
			switch {
			case errors.Is(err, errNoRows):
			case err != nil:
				return fmt.Errorf("cross-reference: %w", err)
			case x.Version > 0:
				if _, err := tx.exec(ctx, `UPDATE xref SET version = 0, updated_at = ? WHERE system = ? AND object = ? AND key = ?`,
					tx.t(now), target.System, target.Object, key); err != nil {
					return fmt.Errorf("cross-reference: %w", err)
				}
				e.Xref = &x
			}
		}
		out.AuditID, err = writeAudit(ctx, tx, e)
		return err
	})
	if err != nil {
		return KeyReset{}, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// auditDetail is what the audit table's detail column holds, as JSON.
type auditDetail struct {
	Filter      *DeadLetterFilter `json:"filter,omitempty"`
	DeadLetters []AuditedLetter   `json:"dead_letters,omitempty"`
	Guards      []AuditedGuard    `json:"guards,omitempty"`
	Xref        *AuditedXref      `json:"xref,omitempty"`
}

func writeAudit(ctx context.Context, tx sqlDB, e AuditEntry) (int64, error) {
	detail, err := json.Marshal(auditDetail{Filter: e.Filter, DeadLetters: e.DeadLetters, Guards: e.Guards, Xref: e.Xref})
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	var id int64
	err = tx.queryRow(ctx, `INSERT INTO audit (at, actor, role, action, sync, key, reason, detail)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		tx.t(e.At), cleanText(e.Actor), cleanText(e.Role), e.Action, e.Sync, e.Key, cleanText(e.Reason), string(detail)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return id, nil
}

func auditLog(ctx context.Context, db sqlDB, op string, afterID int64, limit int) ([]AuditEntry, error) {
	rows, err := db.query(ctx, `SELECT id, at, actor, role, action, sync, key, reason, detail FROM audit
WHERE id > ? ORDER BY id LIMIT ?`, afterID, pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var detail string
		if err := rows.Scan(&e.ID, &dbTime{&e.At}, &e.Actor, &e.Role, &e.Action, &e.Sync, &e.Key, &e.Reason, &detail); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		var d auditDetail
		if err := json.Unmarshal([]byte(detail), &d); err != nil {
			return nil, fmt.Errorf("%s: audit entry %d: %w", op, e.ID, err)
		}
		e.Filter, e.DeadLetters, e.Guards, e.Xref = d.Filter, d.DeadLetters, d.Guards, d.Xref
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func audited(letters []DeadLetter) []AuditedLetter {
	out := make([]AuditedLetter, len(letters))
	for i, d := range letters {
		out[i] = AuditedLetter{ID: d.ID, Sync: d.Sync, EventID: d.EventID, Key: d.Key, Version: d.Version, Code: d.Code}
	}
	return out
}

// common returns the sync and the key all letters share ("" when they differ).
func common(letters []DeadLetter) (sync, key string) {
	sync, key = letters[0].Sync, letters[0].Key
	for _, d := range letters[1:] {
		if d.Sync != sync {
			sync = ""
		}
		if d.Key != key {
			key = ""
		}
	}
	if sync == "" {
		key = ""
	}
	return sync, key
}

// foldPage is how many rows FoldKeys reads per page (and transaction).
const foldPage = 500

// stateRank orders guard states for FoldKeys' ties: applied beats dead beats
// pending.
const stateRank = `CASE %s WHEN 'applied' THEN 3 WHEN 'dead' THEN 2 ELSE 1 END`

var (
	foldGuardSQL = `INSERT INTO guard (sync, key, version, state, event_id, updated_at)
SELECT sync, CAST(? AS TEXT), version, state, event_id, updated_at FROM guard WHERE sync = ? AND key = ?
ON CONFLICT (sync, key) DO UPDATE SET
	version = excluded.version, state = excluded.state, event_id = excluded.event_id, updated_at = excluded.updated_at
WHERE excluded.version > guard.version
	OR (excluded.version = guard.version AND ` + fmt.Sprintf(stateRank, "excluded.state") + ` > ` + fmt.Sprintf(stateRank, "guard.state") + `)`
	foldXrefSQL = `INSERT INTO xref (system, object, key, target_id, version, updated_at)
SELECT system, object, CAST(? AS TEXT), target_id, version, updated_at FROM xref WHERE system = ? AND object = ? AND key = ?
ON CONFLICT (system, object, key) DO UPDATE SET
	target_id = excluded.target_id, version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version > xref.version`
)

func foldKeys(ctx context.Context, op string, inTx func(func(sqlDB) error) error, sync, system, object string, fold func(string) string) (int, error) {
	doXref := system != "" && object != ""
	switch {
	case fold == nil:
		return 0, fmt.Errorf("%s: fold is nil: %w", op, ErrInvalid)
	case sync == "" && !doXref:
		return 0, fmt.Errorf("%s: give a sync, or a system and an object, whose keys to fold: %w", op, ErrInvalid)
	}
	folded := func(k string) (string, error) {
		f := fold(k)
		switch bad := badText(f); {
		case f == "":
			return "", fmt.Errorf("key %q folds to an empty key: %w", k, ErrInvalid)
		case bad != "":
			return "", fmt.Errorf("key %q folds to %q, which %s: %w", k, f, bad, ErrInvalid)
		}
		return f, nil
	}
	// pages walks a table by key (or id) in pages of one transaction each,
	// calling move for each row whose key fold changes.
	type row struct {
		id  int64
		key string
	}
	pages := func(what, list string, listArgs func(after row) []any, byID bool, move func(tx sqlDB, r row, to string) error) (int, error) {
		n := 0
		var after row
		for {
			var page []row
			moved := 0
			err := inTx(func(tx sqlDB) error {
				page, moved = page[:0], 0 // the transaction may be run again
				rows, err := tx.query(ctx, list, listArgs(after)...)
				if err != nil {
					return err
				}
				for rows.Next() {
					var r row
					var err error
					if byID {
						err = rows.Scan(&r.id, &r.key)
					} else {
						err = rows.Scan(&r.key)
					}
					if err != nil {
						rows.Close()
						return err
					}
					page = append(page, r)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				for _, r := range page {
					if r.key == "" {
						continue
					}
					to, err := folded(r.key)
					if err != nil {
						return err
					}
					if to == r.key {
						continue
					}
					if err := move(tx, r, to); err != nil {
						return fmt.Errorf("key %q: %w", r.key, err)
					}
					moved++
				}
				return nil
			})
			if err != nil {
				return n, fmt.Errorf("%s: %s: %w", op, what, err)
			}
			n += moved
			if len(page) < foldPage {
				return n, nil
			}
			after = page[len(page)-1]
		}
	}
	total := 0
	if sync != "" {
		n, err := pages("guard of sync "+sync, `SELECT key FROM guard WHERE sync = ? AND key > ? ORDER BY key LIMIT ?`,
			func(after row) []any { return []any{sync, after.key, foldPage} }, false,
			func(tx sqlDB, r row, to string) error {
				if _, err := tx.exec(ctx, foldGuardSQL, to, sync, r.key); err != nil {
					return err
				}
				_, err := tx.exec(ctx, `DELETE FROM guard WHERE sync = ? AND key = ?`, sync, r.key)
				return err
			})
		total += n
		if err != nil {
			return total, err
		}
		n, err = pages("dead letters of sync "+sync, `SELECT id, key FROM dead_letters WHERE sync = ? AND id > ? ORDER BY id LIMIT ?`,
			func(after row) []any { return []any{sync, after.id, foldPage} }, true,
			func(tx sqlDB, r row, to string) error {
				_, err := tx.exec(ctx, `UPDATE dead_letters SET key = ? WHERE id = ?`, to, r.id)
				return err
			})
		total += n
		if err != nil {
			return total, err
		}
	}
	if doXref {
		n, err := pages("cross-reference "+system+"/"+object, `SELECT key FROM xref WHERE system = ? AND object = ? AND key > ? ORDER BY key LIMIT ?`,
			func(after row) []any { return []any{system, object, after.key, foldPage} }, false,
			func(tx sqlDB, r row, to string) error {
				if _, err := tx.exec(ctx, foldXrefSQL, to, system, object, r.key); err != nil {
					return err
				}
				_, err := tx.exec(ctx, `DELETE FROM xref WHERE system = ? AND object = ? AND key = ?`, system, object, r.key)
				return err
			})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Package store is the hub's state: the version guard, the cross-reference,
// the outcome log, the dead-letter queue and the source cursors. One
// interface, two real implementations: SQLite (pure Go, the default, a file in
// the data directory; see OpenSQLite) and PostgreSQL (for hub replicas that
// share state; see OpenPostgres). Open picks one by driver name.
//
// Both apply their schema at open from versioned migrations embedded in the
// binary, in one transaction, so opening is idempotent and an older binary
// refuses a newer schema instead of corrupting it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Decision is what the version guard says about one event.
type Decision int

const (
	// Apply: write it. The (sync, key) row now holds this version as pending.
	Apply Decision = iota + 1
	// SkipStale: a newer version of the key is applied or pending.
	SkipStale
	// SkipDuplicate: this version is already applied (or dead-lettered).
	SkipDuplicate
)

// String returns "apply", "stale" or "duplicate" (usable as a skip reason).
func (d Decision) String() string {
	switch d {
	case Apply:
		return "apply"
	case SkipStale:
		return "stale"
	case SkipDuplicate:
		return "duplicate"
	}
	return "unknown"
}

// Item names one event for the guard.
type Item struct {
	// EventID is the event's idempotency key; must not be empty.
	EventID string
	// Key is the entity's id at the source; must not be empty in Begin. In
	// Finish it may be empty (an event that could not be decoded): such a
	// result only goes to the outcome log and, if Dead, the dead letters.
	Key string
	// Version is monotonic per key at the source.
	Version int64
}

// Guard is a key's version-guard row in one sync.
type Guard struct {
	// Version is the newest version begun.
	Version int64
	// State is GuardPending (begun, no final outcome yet), GuardApplied or
	// GuardDead.
	State string
	// EventID is the event that began Version.
	EventID string
	// UpdatedAt is when the row last changed.
	UpdatedAt time.Time
}

// The states of a guard row.
const (
	GuardPending = "pending"
	GuardApplied = "applied"
	GuardDead    = "dead"
)

// Lease is who holds a lease, since when and until when.
type Lease struct {
	Name, Holder string
	// AcquiredAt is when Holder took the lease (renewals keep it).
	AcquiredAt time.Time
	// ExpiresAt is when another holder may take it, unless renewed.
	ExpiresAt time.Time
}

// Outcome is the final word on one event for one sync.
type Outcome string

const (
	// Applied: the target accepted the write.
	Applied Outcome = "applied"
	// Skipped: nothing was written (stale, duplicate, filtered out).
	Skipped Outcome = "skipped"
	// Dead: the write failed for good; the event is in the dead-letter queue.
	Dead Outcome = "dead"
)

// Result records the final outcome of one event.
type Result struct {
	Item
	Outcome Outcome
	// System and Object name the target, for the cross-reference (Applied).
	// When either is empty the cross-reference is left alone.
	System, Object string
	// TargetID is the record's id in the target (Applied); "" for deletes,
	// which remove the cross-reference entry instead. An Applied result with
	// TargetID "" and Deleted false (a target without record ids) leaves the
	// cross-reference alone.
	TargetID string
	Deleted  bool
	// Reason says why (Skipped: "stale", "duplicate", "filtered"; Dead: the error).
	Reason string
	// Code is the target's error code (Dead).
	Code string
	// Attempts made before the outcome (Dead).
	Attempts int
	// Event is the whole event (Dead), kept for replay. Stored byte for byte.
	Event json.RawMessage
}

// DeadLetter is one dead-lettered event. At is when it was (last) dead-lettered.
type DeadLetter struct {
	ID       int64           `json:"id"`
	Sync     string          `json:"sync"`
	EventID  string          `json:"event_id"`
	Key      string          `json:"key"`
	Version  int64           `json:"version"`
	Reason   string          `json:"reason"`
	Code     string          `json:"code,omitempty"`
	Attempts int             `json:"attempts"`
	Event    json.RawMessage `json:"event"`
	At       time.Time       `json:"at"`
}

// Counts are the outcomes recorded for a sync.
type Counts struct {
	Applied, Skipped, Dead int64
}

// DefaultPageSize is the number of dead letters DeadLetters returns when
// asked for limit <= 0; MaxPageSize caps larger limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ErrNotFound is returned (wrapped) by Requeue for an unknown dead letter.
var ErrNotFound = errors.New("not found")

// Store is safe for concurrent use, and several Stores (hub replicas) may
// share one database.
//
// Version guard, per (sync, key), on one row holding a version and a state:
//   - no row, or row.version < v: row := (v, pending); Apply.
//   - row.version == v and pending: Apply (a redelivery after a crash, or a
//     retry; upserts make the second write harmless).
//   - row.version == v and applied or dead: SkipDuplicate.
//   - row.version > v: SkipStale.
//
// So once version v is pending, no older version is ever written again, even
// across crashes. Begin decides a whole batch in one transaction, in order:
// items of the same key within one batch see the effect of the ones before
// them ([k v1, k v2] is Apply, Apply; [k v2, k v1] is Apply, SkipStale).
//
// Concurrency, what is guaranteed: each per-key decision is made atomically
// with the write of the pending row (Postgres: INSERT … ON CONFLICT DO UPDATE
// holds the row lock until commit; SQLite: one writer at a time, the write
// lock taken at BEGIN), so decisions on a key are linearizable across
// goroutines, processes and replicas. The Apply decisions of a key, in commit
// order, never go down in version: once a Begin has returned Apply for v, no
// later Begin, in any replica, returns Apply for a version below v.
//
// What is not guaranteed (and no guard can): the order in which the sinks'
// writes land. If replica A gets Apply(v1), then replica B gets Apply(v2)
// before A's write has reached the target, A's write can land last. Closing
// that window needs one key in flight on one consumer at a time (ordered,
// key-partitioned delivery) or a version check in the target. Finish will
// then not mark v1 applied (the row holds v2), and the cross-reference keeps
// the entry of the highest version.
type Store interface {
	// Begin runs the version guard for items of one sync and returns one
	// decision per item, in order.
	Begin(ctx context.Context, sync string, items []Item) ([]Decision, error)
	// Finish records final outcomes in one transaction: the guard row's state
	// (applied or dead, only if its version is still the result's; a dead
	// result only moves a pending row), the cross-reference for Applied (only
	// if no newer version of the key has written it), the dead letter for
	// Dead, and one outcome log row per (sync, event id); a second outcome for
	// the same event id is ignored, so redeliveries are never counted twice.
	// When the first outcome of an event that has a dead letter (one
	// requeued, see Requeue) is applied or skipped, the dead letter is
	// removed. If results repeat an event id, the first one is logged; the
	// guard and the cross-reference take every result into account.
	Finish(ctx context.Context, sync string, results []Result) error
	// LookupXref returns the target id of key in system/object; false when
	// there is none or the record was deleted.
	LookupXref(ctx context.Context, system, object, key string) (string, bool, error)
	// GuardOf returns the version-guard row of key in sync: the newest
	// version begun and its state; false when the key has none.
	GuardOf(ctx context.Context, sync, key string) (Guard, bool, error)
	// Counts returns the outcome counts of a sync from the outcome log (so
	// within the retention kept by Prune).
	Counts(ctx context.Context, sync string) (Counts, error)
	// DeadLetters lists the dead letters of a sync ("" for all), oldest first,
	// after the given id, at most limit (DefaultPageSize when limit <= 0,
	// MaxPageSize at most). Page on with afterID = the last ID returned.
	DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]DeadLetter, error)
	// Requeue prepares dead letter id for a replay and returns it: the guard
	// row goes from dead back to pending (if it still holds that version) and
	// the event's dead outcome is forgotten, so the replayed event is applied
	// and counted once more. The dead letter stays listed until the replayed
	// event's outcome is recorded (Finish): applied or skipped removes it,
	// dead again updates it in place (same id). So a crash between Requeue and
	// publishing the event loses nothing; Requeue is idempotent. Replay the
	// event as it is (same id, key and version). If a newer version has
	// reached the key since, the replay is skipped as stale.
	// An unknown id returns an error wrapping ErrNotFound.
	Requeue(ctx context.Context, id int64) (DeadLetter, error)
	// AcquireLease takes lease name for holder until ttl from now, or renews
	// it when holder already has it. It succeeds when nobody holds the lease,
	// its holder's time is up, or holder holds it, and returns the lease as it
	// stands after the call: on failure, the other holder's. Expiry is judged
	// by the database's clock (PostgreSQL), so replicas' clocks need not agree.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error)
	// LeaseOf returns lease name as it stands, expired or not; false when
	// nobody has taken it (or it was released).
	LeaseOf(ctx context.Context, name string) (Lease, bool, error)
	// ReleaseLease gives lease name up if holder holds it, so that another
	// holder may take it at once; otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetCursor returns the value saved under name (a source's read
	// position, e.g. "ledger.member"), and false if there is none.
	GetCursor(ctx context.Context, name string) (string, bool, error)
	// SetCursor saves value under name, replacing any previous value.
	SetCursor(ctx context.Context, name, value string) error
	// Prune deletes outcome log rows and cross-reference tombstones older
	// than olderThan (> 0) and returns how many rows went. Guard rows, dead
	// letters and cursors are kept. Counts shrink accordingly, and an event
	// redelivered after its outcome was pruned is counted again (as skipped:
	// the guard still knows its version).
	Prune(ctx context.Context, olderThan time.Duration) (int64, error)
	// Close releases the database. Calls after Close fail.
	Close() error
}

// Package store is the hub's state: the version guard, the cross-reference,
// the outcome log, the dead-letter queue, the source cursors, the leases,
// the audit log of operators' changes and the webhook deliveries seen. One
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
	// Superseded is true when the key's guard row in the sync now holds a
	// newer version, applied: the target has moved past this event, so
	// replaying it would be skipped as stale. Worked out when listed.
	Superseded bool `json:"superseded"`
}

// DeadLetterFilter selects dead letters: each field that is set must match,
// and the zero filter selects every dead letter.
type DeadLetterFilter struct {
	// Sync, Code and Key match exactly.
	Sync string `json:"sync,omitempty"`
	Code string `json:"code,omitempty"`
	Key  string `json:"key,omitempty"`
	// Since and Until bound when a letter was dead-lettered: Since <= At <
	// Until. A zero time leaves that side open.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Superseded selects only the superseded letters (see DeadLetter).
	Superseded bool `json:"superseded,omitempty"`
}

// IsZero reports whether f selects every dead letter.
func (f DeadLetterFilter) IsZero() bool { return f == DeadLetterFilter{} }

// DeadLetterGroup sums up the dead letters of one sync and error code.
type DeadLetterGroup struct {
	Sync string `json:"sync"`
	Code string `json:"code"`
	// Count is how many; Superseded how many of them are superseded.
	Count      int64 `json:"count"`
	Superseded int64 `json:"superseded"`
	// Oldest and Newest are the first and last dead-lettering times.
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
}

// Operator says who asks for a change an operator makes to the state (a
// discard, a replay, a key reset), and why; it goes to the audit log.
type Operator struct {
	// Name is who: an admin token's name, or "loopback". Required.
	Name string
	// Role is the role they act in, e.g. "operator".
	Role string
	// Reason says why. Optional, except for ResetKey.
	Reason string
}

// Selection names the dead letters DiscardDeadLetters removes: those among
// IDs (when given) that Filter selects, at most Limit of them (when IDs are
// not given: MaxPageSize when Limit <= 0 or above it).
type Selection struct {
	IDs    []int64
	Filter DeadLetterFilter
	Limit  int
}

// Discarded is what DiscardDeadLetters did.
type Discarded struct {
	// DeadLetters are the letters discarded, oldest first, without their
	// events.
	DeadLetters []DeadLetter
	// NotFound lists the IDs given that named no dead letter (or one the
	// filter does not select).
	NotFound []int64
	// More is true when the filter selects more letters than Limit: call
	// again to discard the next ones.
	More bool
	// AuditID is the audit entry written; 0 when nothing was discarded.
	AuditID int64
}

// Target names a sync's target object, whose cross-reference ResetKey
// resets too. The zero Target leaves the cross-reference alone.
type Target struct {
	System, Object string
}

// KeyReset is what ResetKey did.
type KeyReset struct {
	Sync, Key string
	// Guard is the guard row removed; nil when the key had none.
	Guard *Guard
	// Discarded are the key's dead letters discarded, without their events.
	Discarded []DeadLetter
	// AuditID is the audit entry written.
	AuditID int64
}

// The actions of the audit log.
const (
	AuditDiscard  = "discard"
	AuditReplay   = "replay"
	AuditResetKey = "reset_key"
)

// AuditEntry is one operator action as the audit log keeps it.
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Actor and Role are Operator.Name and Operator.Role.
	Actor string `json:"actor"`
	Role  string `json:"role"`
	// Action is AuditDiscard, AuditReplay or AuditResetKey.
	Action string `json:"action"`
	// Sync and Key name what was acted on, when it was one sync or one key.
	Sync   string `json:"sync,omitempty"`
	Key    string `json:"key,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Filter is the filter of a discard by filter.
	Filter *DeadLetterFilter `json:"filter,omitempty"`
	// DeadLetters are the letters acted on.
	DeadLetters []AuditedLetter `json:"dead_letters,omitempty"`
	// Guards are the guard rows of their keys as they were before.
	Guards []AuditedGuard `json:"guards,omitempty"`
	// Xref is the cross-reference entry a key reset lowered, as it was.
	Xref *AuditedXref `json:"xref,omitempty"`
}

// AuditedLetter is a dead letter in the audit log: what names it, no event.
type AuditedLetter struct {
	ID      int64  `json:"id"`
	Sync    string `json:"sync"`
	EventID string `json:"event_id"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Code    string `json:"code,omitempty"`
}

// AuditedGuard is a guard row in the audit log.
type AuditedGuard struct {
	Sync      string    `json:"sync"`
	Key       string    `json:"key"`
	Version   int64     `json:"version"`
	State     string    `json:"state"`
	EventID   string    `json:"event_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AuditedXref is a cross-reference entry in the audit log.
type AuditedXref struct {
	System   string `json:"system"`
	Object   string `json:"object"`
	Key      string `json:"key"`
	TargetID string `json:"target_id"`
	Version  int64  `json:"version"`
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

// ErrNotFound is returned (wrapped) by Requeue for an unknown dead letter,
// and by ResetKey for a key that has neither a guard row nor dead letters.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by the errors of calls whose arguments are wrong (an
// empty selection, a filter whose Until is not after Since, a missing
// operator name or reason).
var ErrInvalid = errors.New("invalid argument")

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
	// MaxPageSize at most). Page on with afterID = the last ID returned. It
	// is QueryDeadLetters with a filter on the sync alone.
	DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]DeadLetter, error)
	// QueryDeadLetters lists the dead letters f selects, oldest first, after
	// the given id, at most limit (as DeadLetters), each marked Superseded
	// or not.
	QueryDeadLetters(ctx context.Context, f DeadLetterFilter, afterID int64, limit int) ([]DeadLetter, error)
	// SummarizeDeadLetters counts the dead letters f selects per sync and
	// error code, sorted by sync and code, with how many are superseded and
	// when the oldest and the newest were dead-lettered.
	SummarizeDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetterGroup, error)
	// DiscardDeadLetters removes the dead letters sel names, in one
	// transaction with an audit entry of them (by.Name is required). A
	// selection with neither IDs nor a filter is refused (ErrInvalid).
	// Discarding gives an event up: its outcome stays dead in the outcome log
	// (recorded again if a Requeue had forgotten it), and the guard row of
	// its key is left as it is, except that a row holding the letter's
	// version as pending again (a Requeue) goes back to dead, so that a
	// replay still in flight is skipped as a duplicate. A later event of the
	// key applies when its version is newer than the discarded one; for a
	// version no later event can pass (a frozen key), use ResetKey.
	DiscardDeadLetters(ctx context.Context, sel Selection, by Operator) (Discarded, error)
	// Requeue prepares dead letter id for a replay and returns it: the guard
	// row goes from dead back to pending (if it still holds that version) and
	// the event's dead outcome is forgotten, so the replayed event is applied
	// and counted once more. The dead letter stays listed until the replayed
	// event's outcome is recorded (Finish): applied or skipped removes it,
	// dead again updates it in place (same id). So a crash between Requeue and
	// publishing the event loses nothing; Requeue is idempotent. Replay the
	// event as it is (same id, key and version). If a newer version has
	// reached the key since, the replay is skipped as stale. Each call writes
	// an audit entry (by.Name is required), in the same transaction.
	// An unknown id returns an error wrapping ErrNotFound.
	Requeue(ctx context.Context, id int64, by Operator) (DeadLetter, error)
	// ResetKey recovers a key whose guard row blocks every later event (a
	// version accepted by mistake, such as 2^63-1): it deletes the key's
	// guard row in sync and discards the key's dead letters there (their
	// outcomes stay dead), and, when target is given, lowers the version of
	// the key's cross-reference entry in target to 0 (its target id kept), so
	// that later writes update it again. The next event of the key then
	// applies whatever its version. One transaction, with an audit entry of
	// what the rows held; by.Name and by.Reason are required. A key with
	// neither a guard row nor dead letters in sync returns an error wrapping
	// ErrNotFound.
	ResetKey(ctx context.Context, sync, key string, target Target, by Operator) (KeyReset, error)
	// AuditLog lists the audit entries, oldest first, after the given id, at
	// most limit (as DeadLetters). The audit log is never pruned.
	AuditLog(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error)
	// SeenDelivery returns the digest remembered for webhook delivery id of source,
	// and true, when one is remembered and not expired.
	SeenDelivery(ctx context.Context, source, id string) (digest string, found bool, err error)
	// RememberDelivery remembers delivery id of source with digest until the given
	// time (replacing an expired entry); expired entries are pruned (by Prune and,
	// cheaply, now and then by RememberDelivery itself). An entry not yet
	// expired is kept as it is: the first delivery remembered wins.
	RememberDelivery(ctx context.Context, source, id, digest string, until time.Time) error
	// FoldKeys rewrites the guard rows of sync and the cross-reference entries of
	// system/object so that every key is fold(key), keeping on a collision the row
	// with the highest version (the guard) and the entry of the newest version
	// (the cross-reference). It returns how many rows changed. Idempotent.
	// The dead letters of sync get their keys folded too (and count), so
	// that filters by key, superseded marks and ResetKey see the folded keys.
	// sync "" leaves the guard and the dead letters alone; system or object ""
	// the cross-reference. Rows are read in pages, one transaction per page,
	// so it works on large tables; run it before the sync starts folding.
	// fold must be idempotent (fold(fold(k)) == fold(k)); a key it maps to ""
	// or to text the store cannot hold is an error.
	FoldKeys(ctx context.Context, sync, system, object string, fold func(string) string) (int, error)
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
	// than olderThan (> 0), and every expired delivery (see
	// RememberDelivery), and returns how many rows went. Guard rows, dead
	// letters, cursors and the audit log are kept. Counts shrink accordingly, and an event
	// redelivered after its outcome was pruned is counted again (as skipped:
	// the guard still knows its version).
	Prune(ctx context.Context, olderThan time.Duration) (int64, error)
	// Close releases the database. Calls after Close fail.
	Close() error
}

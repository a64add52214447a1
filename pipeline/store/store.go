// Package store is the hub's state: the version guard, the cross-reference,
// the outcome log and the dead-letter queue. One interface, two real
// implementations: SQLite (pure Go, the default, a file in the data directory)
// and PostgreSQL (for hub replicas that share state).
package store

import (
	"context"
	"encoding/json"
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
	EventID string
	Key     string
	Version int64
}

// Outcome is the final word on one event for one sync.
type Outcome string

const (
	Applied Outcome = "applied"
	Skipped Outcome = "skipped"
	Dead    Outcome = "dead"
)

// Result records the final outcome of one event.
type Result struct {
	Item
	Outcome Outcome
	// System and Object name the target, for the cross-reference (Applied).
	System, Object string
	// TargetID is the record's id in the target (Applied); "" for deletes,
	// which remove the cross-reference entry instead.
	TargetID string
	Deleted  bool
	// Reason says why (Skipped: "stale", "duplicate", "filtered"; Dead: the error).
	Reason string
	// Code is the target's error code (Dead).
	Code string
	// Attempts made before the outcome (Dead).
	Attempts int
	// Event is the whole event (Dead), kept for replay.
	Event json.RawMessage
}

// DeadLetter is one dead-lettered event.
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

// Store is safe for concurrent use.
//
// Version guard, per (sync, key), on one row holding a version and a state:
//   - no row, or row.version < v: row := (v, pending); Apply.
//   - row.version == v and pending: Apply (a redelivery after a crash, or a
//     retry; upserts make the second write harmless).
//   - row.version == v and applied or dead: SkipDuplicate.
//   - row.version > v: SkipStale.
//
// So once version v is pending, no older version is ever written again, even
// across crashes. Begin decides a whole batch in one transaction, in order.
type Store interface {
	// Begin runs the version guard for items of one sync.
	Begin(ctx context.Context, sync string, items []Item) ([]Decision, error)
	// Finish records final outcomes in one transaction: the guard row's state
	// (applied or dead, only if its version is still the result's), the
	// cross-reference for Applied, the dead letter for Dead, and one outcome
	// log row per (sync, event id); a second outcome for the same event id is
	// ignored, so redeliveries are never counted twice.
	Finish(ctx context.Context, sync string, results []Result) error
	// LookupXref returns the target id of key in system/object.
	LookupXref(ctx context.Context, system, object, key string) (string, bool, error)
	// Counts returns the outcome counts of a sync from the outcome log.
	Counts(ctx context.Context, sync string) (Counts, error)
	// DeadLetters lists the dead letters of a sync ("" for all), oldest first,
	// after the given id, at most limit.
	DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]DeadLetter, error)
	Close() error
}

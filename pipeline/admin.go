package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// SyncStatus is a sync's configuration and state.
type SyncStatus struct {
	Name, Topic, System, Object string
	Counts                      store.Counts
	// Backlog is the bus backlog of the sync's consumer; -1 when unknown.
	Backlog int
	// Lease is the sync's lease: which replica runs it (Found false: none).
	Lease      store.Lease
	LeaseFound bool
	// Breaker is the state of the target connector's circuit breaker in
	// this replica (closed, half-open, open); "" without one.
	Breaker string
}

// Status reports every sync: its outcome counts from the state store (exact
// per event) and its bus backlog.
func (h *Hub) Status(ctx context.Context, st store.Store) ([]SyncStatus, error) {
	h.mu.Lock()
	syncs := append([]*Sync(nil), h.syncs...)
	h.mu.Unlock()
	out := make([]SyncStatus, 0, len(syncs))
	for _, s := range syncs {
		c, err := st.Counts(ctx, s.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", s.cfg.Name, err)
		}
		backlog := -1
		if h.pending != nil {
			if n, err := h.pending(ctx, ConsumerName(s.cfg.Name)); err == nil {
				backlog = n
			}
		}
		lease, found, err := st.LeaseOf(ctx, LeaseName(ConsumerName(s.cfg.Name)))
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", s.cfg.Name, err)
		}
		ss := SyncStatus{Name: s.cfg.Name, Topic: s.cfg.Topic, System: s.cfg.System, Object: s.cfg.Object, Counts: c, Backlog: backlog,
			Lease: lease, LeaseFound: found}
		if s.cfg.Breaker != nil {
			ss.Breaker = s.cfg.Breaker.State()
		}
		out = append(out, ss)
	}
	return out, nil
}

// ErrUnknownSync is wrapped by the errors of admin calls naming a sync the
// hub does not run.
var ErrUnknownSync = errors.New("no such sync")

// syncConfig returns the configuration of the sync named name.
func (h *Hub) syncConfig(name string) (SyncConfig, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.syncs {
		if s.cfg.Name == name {
			return s.cfg, true
		}
	}
	return SyncConfig{}, false
}

// Replay publishes dead letter id's event again, unchanged, on its sync's
// topic, after putting its version-guard row back to pending (see
// store.Requeue, which writes the audit entry of by). The dead letter stays
// listed until the replay's outcome is stored. A publish failure leaves it
// listed: replay it again.
func (h *Hub) Replay(ctx context.Context, st store.Store, pub message.Publisher, id int64, by store.Operator) (store.DeadLetter, error) {
	dl, err := st.Requeue(ctx, id, by)
	if err != nil {
		return store.DeadLetter{}, err
	}
	cfg, ok := h.syncConfig(dl.Sync)
	if !ok {
		return dl, fmt.Errorf("dead letter %d belongs to sync %q, which is no longer configured", id, dl.Sync)
	}
	topic := cfg.Topic
	var ev event.Event
	if err := json.Unmarshal(dl.Event, &ev); err != nil || ev.ID == "" {
		return dl, errors.New("the dead letter does not hold a decodable event (it was dead-lettered as undecodable); it cannot be replayed")
	}
	ev.Origin, _, _ = strings.Cut(topic, ".")
	ev.Version = dl.Version
	msg, err := ev.ToMessage()
	if err != nil {
		return dl, err
	}
	if err := pub.Publish(topic, msg); err != nil {
		return dl, fmt.Errorf("publishing the event again: %w", err)
	}
	return dl, nil
}

// ResetKey recovers a frozen key of sync (see store.ResetKey): its guard row
// goes, its dead letters are discarded and its cross-reference entry in the
// sync's target is lowered, so the key's next event applies whatever its
// version. An unknown sync is an error wrapping ErrUnknownSync.
func (h *Hub) ResetKey(ctx context.Context, st store.Store, sync, key string, by store.Operator) (store.KeyReset, error) {
	cfg, ok := h.syncConfig(sync)
	if !ok {
		return store.KeyReset{}, fmt.Errorf("sync %q: %w", sync, ErrUnknownSync)
	}
	return st.ResetKey(ctx, sync, cfg.Keys.Fold(key), store.Target{System: cfg.System, Object: cfg.Object}, by)
}

// EventKey returns a dead letter's key as its event spells it (the event's
// subject) when that is the key the sync stored folded; else stored itself
// (a membership key SEGMENT:MEMBER, an event that does not decode).
func (h *Hub) EventKey(sync, stored string, ev json.RawMessage) string {
	cfg, ok := h.syncConfig(sync)
	if !ok {
		return stored
	}
	var e struct {
		Subject string `json:"subject"`
	}
	if json.Unmarshal(ev, &e) != nil || e.Subject == "" || cfg.Keys.Fold(e.Subject) != stored {
		return stored
	}
	return e.Subject
}

// ErrAmbiguousKey is wrapped by FoldKeyFilter's error for a key filter that
// names no sync, when the syncs' targets compare keys differently.
var ErrAmbiguousKey = errors.New("the key is stored differently by different syncs")

// FoldKeyFilter returns f with its key as the state store keeps it: folded
// the way the sync's target compares keys (a case-insensitive target keeps
// "m-1" for "M-1"). A filter without a sync folds the key when every sync
// folds alike, and is refused (ErrAmbiguousKey) otherwise.
func (h *Hub) FoldKeyFilter(f store.DeadLetterFilter) (store.DeadLetterFilter, error) {
	if f.Key == "" {
		return f, nil
	}
	if f.Sync != "" {
		if cfg, ok := h.syncConfig(f.Sync); ok {
			f.Key = cfg.Keys.Fold(f.Key)
		}
		return f, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	folded := ""
	for i, s := range h.syncs {
		k := s.cfg.Keys.Fold(f.Key)
		if i > 0 && k != folded {
			return f, fmt.Errorf("%w (as %q and as %q): name the sync too", ErrAmbiguousKey, folded, k)
		}
		folded = k
	}
	if len(h.syncs) > 0 {
		f.Key = folded
	}
	return f, nil
}

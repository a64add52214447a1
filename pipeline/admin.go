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
		out = append(out, SyncStatus{Name: s.cfg.Name, Topic: s.cfg.Topic, System: s.cfg.System, Object: s.cfg.Object, Counts: c, Backlog: backlog,
			Lease: lease, LeaseFound: found})
	}
	return out, nil
}

// Replay publishes dead letter id's event again, unchanged, on its sync's
// topic, after putting its version-guard row back to pending (see
// store.Requeue). The dead letter stays listed until the replay's outcome
// is stored. A publish failure leaves it listed: replay it again.
func (h *Hub) Replay(ctx context.Context, st store.Store, pub message.Publisher, id int64) (store.DeadLetter, error) {
	dl, err := st.Requeue(ctx, id)
	if err != nil {
		return store.DeadLetter{}, err
	}
	var topic string
	h.mu.Lock()
	for _, s := range h.syncs {
		if s.cfg.Name == dl.Sync {
			topic = s.cfg.Topic
		}
	}
	h.mu.Unlock()
	if topic == "" {
		return dl, fmt.Errorf("dead letter %d belongs to sync %q, which is no longer configured", id, dl.Sync)
	}
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

package pipeline

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// countingWriter applies every record and counts the writes per key.
type countingWriter struct {
	mu     sync.Mutex
	writes map[string]int
}

func (w *countingWriter) Write(_ context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]connectors.Result, len(req.Records))
	for i, r := range req.Records {
		w.writes[r.Key]++
		out[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: "T-" + r.Key}
	}
	return connectors.WriteResponse{Results: out, Calls: 1}, nil
}

// TestBackfilledCopyGoesOn: a live redelivery and a backfilled delivery of
// the same, already applied, event in one batch: the backfilled one is
// written (the live one alone would be a duplicate), and both get its
// outcome.
func TestBackfilledCopyGoesOn(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	w := &countingWriter{writes: map[string]int{}}
	mapper := func(_ context.Context, ev *event.Event) (map[string]any, error) {
		return map[string]any{"v": ev.Version}, nil
	}
	s, err := NewSync(SyncConfig{Name: "members", Topic: "ledger.member", System: "crm", Object: "Member",
		Mode: connectors.Upsert, ExternalIDField: "Ext__c"}, mapper, w, st, nil, nil)
	require.NoError(t, err)

	ev := &event.Event{ID: "e1", Source: "urn:test", SpecVersion: "1.0", Type: event.TypeMemberUpserted, Subject: "M-1",
		Data: json.RawMessage(`{"id":"M-1"}`), Origin: "ledger", Version: 3}
	deliver := func(force bool) *pending {
		return &pending{ctx: ctx, ev: ev, raw: []byte(`{}`), attempt: 1, force: force, result: make(chan error, 1)}
	}
	first := deliver(false)
	s.process([]*pending{first})
	require.NoError(t, <-first.result)
	require.Equal(t, store.Applied, first.outcome)

	for _, order := range [][2]bool{{false, true}, {true, false}} {
		a, b := deliver(order[0]), deliver(order[1])
		s.process([]*pending{a, b})
		require.NoError(t, <-a.result)
		require.NoError(t, <-b.result)
		assert.Equal(t, store.Applied, a.outcome, "order %v", order)
		assert.Equal(t, store.Applied, b.outcome, "order %v", order)
	}
	assert.Equal(t, 3, w.writes["M-1"], "the first delivery, then the backfilled one of each pair")

	// Without a backfill, a redelivery is a duplicate: not written.
	c := deliver(false)
	s.process([]*pending{c})
	require.NoError(t, <-c.result)
	assert.Equal(t, store.Skipped, c.outcome)
	assert.Equal(t, 3, w.writes["M-1"])
}

package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline"
)

// TestBackfillRewritesWhatTheTargetLost: after the target loses its records
// (a sandbox refresh), a backfill writes the newest version of every key the
// bus holds, though the version guard has them as applied; a live event
// keeps working beside it; the outcome counts do not change.
func TestBackfillRewritesWhatTheTargetLost(t *testing.T) {
	h := newHarness(t, pipeline.SyncConfig{}, newTarget())
	h.publish(memberEvent("e1", "M-1", 1, "ada"), memberEvent("e2", "M-1", 2, "ada b"), memberEvent("e3", "M-2", 1, "grace"),
		memberEvent("e4", "M-3", 1, "bad"))
	h.waitCounts("members", 4)
	before, err := h.store.Counts(context.Background(), "members")
	require.NoError(t, err)

	h.target.mu.Lock()
	clear(h.target.records)
	h.target.mu.Unlock()

	_, ok := h.sync.BackfillStatus()
	assert.False(t, ok, "no backfill yet")
	require.NoError(t, h.sync.Backfill(context.Background(), h.bus))

	st, ok := h.sync.BackfillStatus()
	require.True(t, ok)
	assert.False(t, st.Running)
	assert.Equal(t, int64(4), st.Scanned)
	assert.Equal(t, int64(3), st.Selected, "the newest event of each key")
	assert.Equal(t, int64(2), st.Applied)
	assert.Equal(t, int64(1), st.Failed, "M-3's mapping fails again")
	require.Len(t, st.Failures, 1)
	assert.Equal(t, "M-3", st.Failures[0].Key)
	assert.Contains(t, st.Failures[0].Reason, "required value is missing")

	h.target.mu.Lock()
	assert.Equal(t, "ada b", h.target.records["M-1"]["name"])
	assert.Equal(t, "grace", h.target.records["M-2"]["name"])
	assert.Equal(t, []int64{2, 2}, h.target.history["M-1"], "v2 written again (v1 was stale in the live batch), v1 not")
	h.target.mu.Unlock()

	after, err := h.store.Counts(context.Background(), "members")
	require.NoError(t, err)
	assert.Equal(t, before, after, "the outcome log keeps each event's first outcome")

	// Live events still flow, and a second backfill may run.
	h.publish(memberEvent("e5", "M-2", 2, "grace h"))
	h.waitCounts("members", 5)
	require.NoError(t, h.sync.Backfill(context.Background(), h.bus))
	st, _ = h.sync.BackfillStatus()
	assert.Equal(t, int64(5), st.Scanned)
	assert.Equal(t, int64(2), st.Applied)
}

// TestBackfillStopsWhenTheSyncMoves: a backfill started in the background
// stops, with the reason, once this replica no longer runs the sync.
func TestBackfillStopsWhenTheSyncMoves(t *testing.T) {
	defer pipeline.SetBackfillLeaseCheck(0)()
	h := newHarness(t, pipeline.SyncConfig{}, newTarget())
	h.publish(memberEvent("e1", "M-1", 1, "ada"), memberEvent("e2", "M-2", 1, "grace"))
	h.waitCounts("members", 2)
	h.target.mu.Lock()
	clear(h.target.records)
	h.target.mu.Unlock()

	moved := errors.New("sync members does not run on this replica but on \"b\"")
	require.NoError(t, h.sync.StartBackfill(context.Background(), h.bus, func(context.Context) error { return moved }))
	st, ok := h.sync.BackfillStatus()
	require.True(t, ok)
	require.Eventually(t, func() bool { st, _ = h.sync.BackfillStatus(); return !st.Running }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "stopped: "+moved.Error(), st.Error)
	assert.Zero(t, st.Applied)
	h.target.mu.Lock()
	assert.Empty(t, h.target.records, "nothing written once the lease moved")
	h.target.mu.Unlock()
}

package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// TestSyncFoldsKeysAsTheTargetCompares: Salesforce matches external ids
// case-insensitively, so "case-ab" and "CASE-AB" are one record there. Before
// keys were folded, case-ab v1 overwrote CASE-AB v5, and a delete of a
// never-created dc-ab deleted DC-AB.
func TestSyncFoldsKeysAsTheTargetCompares(t *testing.T) {
	tgt := newTarget()
	h := newHarness(t, pipeline.SyncConfig{Keys: connectors.KeysCaseInsensitive}, tgt)
	h.publish(memberEvent("e1", "CASE-AB", 5, "newest"), memberEvent("e2", "DC-AB", 5, "kept"))
	h.waitCounts("members", 2)
	h.publish(memberEvent("e3", "case-ab", 1, "older"), memberEvent("e4", "dc-ab", 1, "-deleted-"))
	c := h.waitCounts("members", 4)
	assert.Equal(t, store.Counts{Applied: 2, Skipped: 2}, c)
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.Empty(t, tgt.history["case-ab"], "an older version under another spelling is stale")
	assert.False(t, tgt.deleted["dc-ab"] || tgt.deleted["DC-AB"], "the stale delete deleted nothing")
	g, ok, err := h.store.GuardOf(context.Background(), "members", connectors.KeysCaseInsensitive.Fold("case-ab"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(5), g.Version)
}

// TestSyncKeysStayExactForExactTargets: the same events on a target that
// tells case apart are four records.
func TestSyncKeysStayExactForExactTargets(t *testing.T) {
	tgt := newTarget()
	h := newHarness(t, pipeline.SyncConfig{}, tgt)
	h.publish(memberEvent("e1", "CASE-AB", 5, "a"), memberEvent("e3", "case-ab", 1, "b"))
	assert.Equal(t, store.Counts{Applied: 2}, h.waitCounts("members", 2))
}

// TestSyncRefusesAnExternalIDThatIsNotTheKey: the guard orders the subject,
// the target matches the mapped external id; when they differ, version 1 of
// one key could overwrite version 5 of another.
func TestSyncRefusesAnExternalIDThatIsNotTheKey(t *testing.T) {
	byDataID := func(_ context.Context, ev *event.Event) (map[string]any, error) {
		var d struct {
			ID      string `json:"id"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, err
		}
		return map[string]any{"Ext__c": d.ID, "version": d.Version}, nil
	}
	tgt := newTarget()
	h := newHarnessWith(t, pipeline.SyncConfig{}, tgt, byDataID)
	good := memberEvent("e1", "M-1", 5, "x")
	bad := memberEvent("e2", "M-2", 1, "x")
	bad.Data = json.RawMessage(`{"id":"M-1","version":1}`)
	h.publish(good, bad)
	c := h.waitCounts("members", 2)
	assert.Equal(t, store.Counts{Applied: 1, Dead: 1}, c)
	dls, err := h.store.DeadLetters(context.Background(), "members", 0, 0)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, "KEY_MISMATCH", dls[0].Code)
	assert.Contains(t, dls[0].Reason, `Ext__c = "M-1", but the event's key (its subject) is "M-2"`)
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.Equal(t, []int64{5}, tgt.history["M-1"], "version 1 never overwrote version 5")
}

// TestSyncBreakerHoldsWritesThroughAnOutage: during an outage longer than
// the retries last, records wait instead of being dead-lettered, and the
// dead target is called a few times (probes), not once per retry.
func TestSyncBreakerHoldsWritesThroughAnOutage(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := pipeline.NewMetrics(reg)
	tgt := newTarget()
	tgt.down = true
	breaker := pipeline.NewBreaker("crm", pipeline.BreakerConfig{Failures: 2, OpenFor: 200 * time.Millisecond}, metrics, nil)
	h := newHarnessMetrics(t, pipeline.SyncConfig{MaxAttempts: 3, BatchSize: 10, Breaker: breaker}, tgt, metrics)
	var evs []*event.Event
	for i := range 40 {
		evs = append(evs, memberEvent(fmt.Sprintf("e%d", i), fmt.Sprintf("M-%d", i), 1, "x"))
	}
	h.publish(evs...)
	require.Eventually(t, func() bool { return breaker.State() == pipeline.BreakerOpen }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(2 * time.Second) // 2 s down: 3 attempts at 10-50 ms backoff are long spent
	tgt.mu.Lock()
	callsDown := tgt.calls
	tgt.down = false
	tgt.mu.Unlock()
	c := h.waitCounts("members", 40)
	assert.Equal(t, store.Counts{Applied: 40}, c, "nothing dead-lettered for the outage")
	assert.Less(t, callsDown, 25, "the dead target got probes, not a retry storm")
	assert.Equal(t, pipeline.BreakerClosed, breaker.State())
	assert.GreaterOrEqual(t, counterValue(metrics.BreakerTransitions("crm", pipeline.BreakerOpen)), 1.0)
	assert.GreaterOrEqual(t, counterValue(metrics.BreakerTransitions("crm", pipeline.BreakerClosed)), 1.0)
}

// TestSyncWaitsOutRetryAfterWithoutSpendingAttempts: a burst of throttled
// calls longer than the attempts would last dead-letters nothing.
func TestSyncWaitsOutRetryAfterWithoutSpendingAttempts(t *testing.T) {
	tgt := newTarget()
	tgt.failCalls = 12 // each with Retry-After 50 ms
	h := newHarness(t, pipeline.SyncConfig{MaxAttempts: 2}, tgt)
	h.publish(memberEvent("e1", "M-1", 1, "a"), memberEvent("e2", "M-2", 1, "b"))
	assert.Equal(t, store.Counts{Applied: 2}, h.waitCounts("members", 2))
}

// TestSyncCountersAddUp: per delivery, received = applied + skipped + dead +
// requeued + in flight, with duplicates in and across batches, a segment
// change of many members, dead letters and retries. The progress line once
// said received=8 applied=506 (memberships counted as events).
func TestSyncCountersAddUp(t *testing.T) {
	tgt := newTarget()
	tgt.refuse["M-3"] = "bad"
	tgt.retryFirst["M-4"] = 2
	h := newHarness(t, pipeline.SyncConfig{BatchSize: 20}, tgt)
	var members []string
	for i := range 50 {
		members = append(members, fmt.Sprintf("S-%d", i))
	}
	evs := []*event.Event{
		memberEvent("e1", "M-1", 1, "a"), memberEvent("e1", "M-1", 1, "a"), // a copy in the batch
		memberEvent("e2", "M-2", 2, "b"), memberEvent("e2b", "M-2", 1, "old"),
		memberEvent("e3", "M-3", 1, "c"), memberEvent("e4", "M-4", 1, "d"),
		segmentEvent("s1", "VIP", 1, members, nil),
	}
	h.publish(evs...)
	h.waitCounts("members", 6)
	h.publish(evs...) // redelivered, all of it
	var st pipeline.Stats
	require.Eventually(t, func() bool {
		st = h.sync.Stats()
		return st.Received == 14 && st.InFlight == 0
	}, 10*time.Second, 20*time.Millisecond, "stats: %+v", st)
	assert.Equal(t, st.Received, st.Applied+st.Skipped+st.Dead+st.Requeued+st.InFlight, "%+v", st)
	// e1 and its copy in the batch (which shares its outcome), e2, e4 and
	// the segment change, which counts once, not once per member.
	assert.Equal(t, int64(5), st.Applied, "%+v", st)
	assert.Equal(t, int64(1), st.Dead, "%+v", st)
	assert.Equal(t, int64(8), st.Skipped, "the stale e2b, then the 7 redeliveries: %+v", st)
}

// TestSyncMembershipKeysFoldToo: one member listed in two spellings is one
// membership on a case-insensitive target.
func TestSyncMembershipKeysFoldToo(t *testing.T) {
	tgt := newTarget()
	h := newHarnessWith(t, pipeline.SyncConfig{Keys: connectors.KeysCaseInsensitive}, tgt,
		func(_ context.Context, ev *event.Event) (map[string]any, error) {
			return map[string]any{"key": ev.Subject}, nil
		})
	h.publish(segmentEvent("s1", "VIP", 1, []string{"m-1", "M-1", "m-2"}, nil))
	h.waitCounts("members", 1)
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	var keys []string
	for k := range tgt.records {
		keys = append(keys, strings.ToUpper(k))
	}
	assert.ElementsMatch(t, []string{"VIP:M-1", "VIP:M-2"}, keys)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// pageReader answers one page of changes, then nothing.
type pageReader struct {
	changes []connectors.Change
	read    bool
}

func (r *pageReader) Read(context.Context, connectors.ReadRequest) (connectors.ReadResponse, error) {
	if r.read {
		return connectors.ReadResponse{Cursor: "end"}, nil
	}
	r.read = true
	return connectors.ReadResponse{Changes: r.changes, Cursor: "end"}, nil
}

// TestPollerRefusesChangesIngressWouldRefuse: a polled connector is held to
// the same rules as the webhook: bounded versions and keys, one version and
// one key whoever reads them.
func TestPollerRefusesChangesIngressWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, dir+"/state.db", nil)
	require.NoError(t, err)
	defer st.Close()
	b, err := bus.Open(ctx, bus.Config{StoreDir: dir + "/nats"}, nil)
	require.NoError(t, err)
	defer b.Close()
	ch := func(id, subject string, version int64, data string) connectors.Change {
		return connectors.Change{ID: id, Type: event.TypeVoucherUpserted, Subject: subject, Version: version, Data: json.RawMessage(data)}
	}
	r := &pageReader{changes: []connectors.Change{
		ch("ok-1", "V-1", 3, `{"id":"V-1","version":3}`),
		ch("ok-2", "V-2", 1<<53-1, `{"code":"X"}`),
		ch("big-version", "V-3", 1<<53, `{}`),
		ch("frozen", "V-4", 1<<63-1, `{}`),
		ch("long-subject", strings.Repeat("v", 256), 1, `{}`),
		ch("two-versions", "V-5", 2, `{"version":50}`),
		ch("two-keys", "V-6", 2, `{"id":"V-1"}`),
		ch("control\n", "V-7", 2, `{}`),
	}}
	p := pipeline.NewPoller(pipeline.PollConfig{Connector: "vendor", Object: "Voucher", Interval: 20 * time.Millisecond}, r, st, b.Publisher(), nil)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(pctx); close(done) }()
	require.Eventually(t, func() bool {
		c, _, _ := st.GetCursor(ctx, p.CursorName())
		return c == "end"
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	n, err := b.Stored(ctx, "vendor.voucher")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), n, "only the two good changes reach the bus")
}

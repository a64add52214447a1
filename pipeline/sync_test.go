package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/bus"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// target is an in-memory system behind connectors.Writer. It records every
// write so tests can check that no older version ever replaced a newer one,
// and it fails on demand.
type target struct {
	mu       sync.Mutex
	records  map[string]map[string]any // key → fields
	ids      map[string]string         // key → target id
	history  map[string][]int64        // key → versions written, in order
	deleted  map[string]bool
	calls    int
	maxBatch int

	// failures by key: how many times to answer retryable before applying
	retryFirst map[string]int
	// keys always refused (permanent)
	refuse map[string]string
	// whole calls to fail with a transient error (with a Retry-After)
	failCalls int
	// down: every call fails as a whole with a transient error and no
	// Retry-After (an outage)
	down bool
}

func newTarget() *target {
	return &target{records: map[string]map[string]any{}, ids: map[string]string{}, history: map[string][]int64{},
		deleted: map[string]bool{}, retryFirst: map[string]int{}, refuse: map[string]string{}}
}

func (t *target) Write(_ context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if len(req.Records) > t.maxBatch && t.maxBatch > 0 {
		t.maxBatch = -1 // flagged: the sync sent more than the batch size
	}
	if t.down {
		return connectors.WriteResponse{Calls: 1}, connectors.E("target.Write", connectors.Transient, errors.New("HTTP 503: the target is down"))
	}
	if t.failCalls > 0 {
		t.failCalls--
		return connectors.WriteResponse{Calls: 1}, &connectors.Error{Op: "target.Write", Kind: connectors.Transient,
			RetryAfter: 50 * time.Millisecond, Err: errors.New("HTTP 503: service unavailable")}
	}
	out := connectors.WriteResponse{Calls: 1, Results: make([]connectors.Result, len(req.Records))}
	for i, r := range req.Records {
		if msg, ok := t.refuse[r.Key]; ok {
			out.Results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "INVALID_FIELD", Message: msg}
			continue
		}
		if t.retryFirst[r.Key] > 0 {
			t.retryFirst[r.Key]--
			out.Results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "UNABLE_TO_LOCK_ROW", Message: "unable to obtain exclusive access to this record"}
			continue
		}
		if req.Operation == connectors.Delete {
			delete(t.records, r.Key)
			t.deleted[r.Key] = true
			out.Results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: r.TargetID}
			continue
		}
		v, _ := r.Fields["version"].(int64)
		t.history[r.Key] = append(t.history[r.Key], v)
		t.records[r.Key] = r.Fields
		if t.ids[r.Key] == "" {
			t.ids[r.Key] = fmt.Sprintf("T-%05d", len(t.ids)+1)
		}
		out.Results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: t.ids[r.Key]}
	}
	return out, nil
}

// mapper copies name and version; "bad" names fail mapping, "skip" ones are filtered.
func mapper(_ context.Context, ev *event.Event) (map[string]any, error) {
	var data struct {
		Name    string `json:"name"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		return nil, err
	}
	switch data.Name {
	case "bad":
		return nil, errors.New("fields.Name: required value is missing")
	case "skip":
		return nil, pipeline.ErrFiltered
	}
	return map[string]any{"name": data.Name, "version": data.Version}, nil
}

type harness struct {
	t      *testing.T
	sync   *pipeline.Sync
	bus    *bus.Bus
	store  store.Store
	target *target
	hub    *pipeline.Hub
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, cfg pipeline.SyncConfig, tgt *target) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, tgt, mapper)
}

// newHarnessWith is newHarness with another mapper.
func newHarnessWith(t *testing.T, cfg pipeline.SyncConfig, tgt *target, mapper pipeline.Mapper) *harness {
	t.Helper()
	return newHarnessFull(t, cfg, tgt, mapper, nil)
}

// newHarnessMetrics is newHarness with the sync's metrics given.
func newHarnessMetrics(t *testing.T, cfg pipeline.SyncConfig, tgt *target, m *pipeline.Metrics) *harness {
	t.Helper()
	return newHarnessFull(t, cfg, tgt, mapper, m)
}

func newHarnessFull(t *testing.T, cfg pipeline.SyncConfig, tgt *target, mapper pipeline.Mapper, metrics *pipeline.Metrics) *harness {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats")}, nil)
	require.NoError(t, err)
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "state.db"), nil)
	require.NoError(t, err)
	hub, err := pipeline.NewHub(pipeline.HubConfig{CloseTimeout: 10 * time.Second},
		func(consumer string, inflight int) (message.Subscriber, error) {
			return b.Subscriber(consumer, inflight)
		},
		b.Pending, nil)
	require.NoError(t, err)
	if cfg.Name == "" {
		cfg.Name = "members"
	}
	cfg.Topic, cfg.System, cfg.Object = "ledger.member", "crm", "Member"
	if cfg.Mode == "" {
		cfg.Mode, cfg.ExternalIDField = connectors.Upsert, "Ext__c"
	}
	if cfg.BatchWindow == 0 {
		cfg.BatchWindow = 20 * time.Millisecond
	}
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval, cfg.MaxInterval = 10*time.Millisecond, 50*time.Millisecond
	}
	s, err := pipeline.NewSync(cfg, mapper, tgt, st, metrics, nil)
	require.NoError(t, err)
	require.NoError(t, hub.AddSync(s))
	runCtx, cancel := context.WithCancel(ctx)
	h := &harness{t: t, sync: s, bus: b, store: st, target: tgt, hub: hub, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- hub.Run(runCtx) }()
	<-hub.Running()
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	h.cancel()
	<-h.done
	_ = h.bus.Close()
	_ = h.store.Close()
}

// publish sends member events: key, version, name.
func (h *harness) publish(evs ...*event.Event) {
	h.t.Helper()
	msgs := make([]*message.Message, len(evs))
	for i, ev := range evs {
		m, err := ev.ToMessage()
		require.NoError(h.t, err)
		msgs[i] = m
	}
	require.NoError(h.t, h.bus.Publisher().Publish("ledger.member", msgs...))
}

func memberEvent(id, key string, version int64, name string) *event.Event {
	typ := event.TypeMemberUpserted
	if name == "-deleted-" {
		typ = event.TypeMemberDeleted
	}
	data, _ := json.Marshal(map[string]any{"id": key, "version": version, "name": name})
	return &event.Event{ID: id, Source: "urn:test", SpecVersion: "1.0", Type: typ, Subject: key,
		Data: data, Origin: "ledger", Version: version}
}

// waitCounts waits until the store's outcome log has n events for the sync.
func (h *harness) waitCounts(sync string, n int64) store.Counts {
	h.t.Helper()
	var c store.Counts
	require.Eventually(h.t, func() bool {
		var err error
		c, err = h.store.Counts(context.Background(), sync)
		require.NoError(h.t, err)
		return c.Applied+c.Skipped+c.Dead >= n
	}, 30*time.Second, 20*time.Millisecond, "outcomes recorded: %+v, want %d", c, n)
	return c
}

func TestSyncAppliesNewestVersionOnly(t *testing.T) {
	tgt := newTarget()
	tgt.maxBatch = 50
	h := newHarness(t, pipeline.SyncConfig{BatchSize: 50}, tgt)

	// 30 members × 10 versions, sent newest-first for half of the members
	// and oldest-first for the rest, plus every event a second time.
	var evs []*event.Event
	for m := 0; m < 30; m++ {
		key := fmt.Sprintf("M-%02d", m)
		for v := int64(1); v <= 10; v++ {
			if m%2 == 0 {
				v = 11 - v
			}
			evs = append(evs, memberEvent(fmt.Sprintf("%s-v%d", key, v), key, v, fmt.Sprintf("name-%d", v)))
			if m%2 == 0 {
				v = 11 - v
			}
		}
	}
	h.publish(evs...)
	h.publish(evs[:100]...) // redelivered duplicates
	c := h.waitCounts("members", 300)

	assert.Equal(t, int64(0), c.Dead)
	assert.Equal(t, int64(300), c.Applied+c.Skipped, "each distinct event has exactly one outcome")
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.NotEqual(t, -1, tgt.maxBatch, "a write carried more records than the batch size")
	require.Len(t, tgt.records, 30)
	for key, rec := range tgt.records {
		assert.Equal(t, int64(10), rec["version"], "member %s holds version %v, want the newest", key, rec["version"])
		hist := tgt.history[key]
		for i := 1; i < len(hist); i++ {
			assert.GreaterOrEqual(t, hist[i], hist[i-1], "member %s: version %d written after %d", key, hist[i], hist[i-1])
		}
	}
	// The newest-first members were written once: every later event was stale.
	assert.Equal(t, []int64{10}, tgt.history["M-00"])
}

func TestSyncRetriesThenApplies(t *testing.T) {
	tgt := newTarget()
	tgt.retryFirst["M-1"] = 3
	tgt.failCalls = 2
	h := newHarness(t, pipeline.SyncConfig{MaxAttempts: 10}, tgt)
	h.publish(memberEvent("e1", "M-1", 1, "ada"), memberEvent("e2", "M-2", 1, "grace"))
	c := h.waitCounts("members", 2)
	assert.Equal(t, store.Counts{Applied: 2}, c)
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.Equal(t, "ada", tgt.records["M-1"]["name"])
	assert.GreaterOrEqual(t, tgt.calls, 6, "2 failed calls and 3 lock errors need at least 6 calls")
}

func TestSyncDeadLettersPermanentFailuresAndMappingErrors(t *testing.T) {
	tgt := newTarget()
	tgt.refuse["M-2"] = "No such column 'Emial__c' on sobject of type Member"
	tgt.retryFirst["M-4"] = 1000 // never succeeds
	h := newHarness(t, pipeline.SyncConfig{MaxAttempts: 3}, tgt)
	h.publish(
		memberEvent("e1", "M-1", 1, "ada"),
		memberEvent("e2", "M-2", 1, "grace"),
		memberEvent("e3", "M-3", 1, "bad"),
		memberEvent("e4", "M-4", 1, "alan"),
		memberEvent("e5", "M-5", 1, "skip"),
	)
	c := h.waitCounts("members", 5)
	assert.Equal(t, store.Counts{Applied: 1, Skipped: 1, Dead: 3}, c)

	dls, err := h.store.DeadLetters(context.Background(), "members", 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 3)
	byKey := map[string]store.DeadLetter{}
	for _, d := range dls {
		byKey[d.Key] = d
	}
	assert.Equal(t, "INVALID_FIELD", byKey["M-2"].Code)
	assert.Contains(t, byKey["M-2"].Reason, "Emial__c")
	assert.Equal(t, "MAPPING_ERROR", byKey["M-3"].Code)
	assert.Contains(t, byKey["M-3"].Reason, "fields.Name")
	assert.Equal(t, "RETRIES_EXHAUSTED", byKey["M-4"].Code)
	assert.Equal(t, 3, byKey["M-4"].Attempts)
	assert.Contains(t, byKey["M-4"].Reason, "UNABLE_TO_LOCK_ROW")
	// The dead letter keeps the whole event for replay.
	ev := map[string]any{}
	require.NoError(t, json.Unmarshal(byKey["M-2"].Event, &ev))
	assert.Equal(t, "e2", ev["id"])

	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.Equal(t, 3, 1000-tgt.retryFirst["M-4"], "M-4 was tried exactly max_attempts times")
}

func TestSyncDeletesThroughTheCrossReference(t *testing.T) {
	tgt := newTarget()
	h := newHarness(t, pipeline.SyncConfig{}, tgt)
	h.publish(memberEvent("e1", "M-1", 1, "ada"))
	h.waitCounts("members", 1)
	id, ok, err := h.store.LookupXref(context.Background(), "crm", "Member", "M-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "T-00001", id)

	h.publish(memberEvent("e2", "M-1", 2, "-deleted-"), memberEvent("e0", "M-1", 1, "ada")) // the stale upsert arrives after the delete
	h.waitCounts("members", 2)
	require.Eventually(t, func() bool {
		c, _ := h.store.Counts(context.Background(), "members")
		return c.Applied+c.Skipped == 3
	}, 10*time.Second, 20*time.Millisecond)
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.True(t, tgt.deleted["M-1"])
	assert.NotContains(t, tgt.records, "M-1", "a stale upsert must not bring a deleted member back")
	_, ok, err = h.store.LookupXref(context.Background(), "crm", "Member", "M-1")
	require.NoError(t, err)
	assert.False(t, ok, "the cross-reference entry is removed with the record")
}

func TestSyncConfigValidate(t *testing.T) {
	_, err := pipeline.NewSync(pipeline.SyncConfig{Name: "x", Topic: "ledger.member", Object: "A", Mode: "merge"}, mapper, newTarget(), nil, nil, nil)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), `mode "merge"`), err.Error())
	_, err = pipeline.NewSync(pipeline.SyncConfig{Name: "x", Topic: "ledger.member", Object: "A", Mode: connectors.Upsert}, mapper, newTarget(), nil, nil, nil)
	require.ErrorContains(t, err, "external id field is required")
	_, err = pipeline.NewSync(pipeline.SyncConfig{Name: "x", Topic: "ledger.member", Object: "A", Mode: connectors.Insert, Removals: "flag"}, mapper, newTarget(), nil, nil, nil)
	require.ErrorContains(t, err, `removals "flag" is not one of delete, write`)
}

func segmentEvent(id, segment string, version int64, added, removed []string) *event.Event {
	data, _ := json.Marshal(map[string]any{"segment_id": segment, "version": version, "added": added, "removed": removed})
	return &event.Event{ID: id, Source: "urn:test", SpecVersion: "1.0", Type: event.TypeSegmentChanged, Subject: segment,
		Data: data, Origin: "ledger", Version: version}
}

// runSegments runs a segment sync over segment changes, one at a time (by
// default two changes of VIP: M-1, M-2, M-3 join, then M-4 joins and M-3
// leaves), and returns the outcome counts.
func runSegments(t *testing.T, cfg pipeline.SyncConfig, m pipeline.Mapper, tgt *target, evs ...*event.Event) store.Counts {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats")}, nil)
	require.NoError(t, err)
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "state.db"), nil)
	require.NoError(t, err)
	hub, err := pipeline.NewHub(pipeline.HubConfig{},
		func(consumer string, inflight int) (message.Subscriber, error) {
			return b.Subscriber(consumer, inflight)
		}, b.Pending, nil)
	require.NoError(t, err)
	cfg.Name, cfg.Topic, cfg.System, cfg.Object = "segments", "ledger.segment", "geo", "memberships"
	cfg.Mode, cfg.ExternalIDField, cfg.BatchWindow = connectors.Upsert, "key", 10*time.Millisecond
	cfg.InitialInterval, cfg.MaxInterval = 10*time.Millisecond, 20*time.Millisecond
	s, err := pipeline.NewSync(cfg, m, tgt, st, nil, nil)
	require.NoError(t, err)
	require.NoError(t, hub.AddSync(s))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hub.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done; _ = b.Close(); _ = st.Close() })
	<-hub.Running()

	if len(evs) == 0 {
		evs = []*event.Event{
			segmentEvent("s1", "VIP", 1, []string{"M-1", "M-2", "M-3"}, nil),
			segmentEvent("s2", "VIP", 2, []string{"M-4"}, []string{"M-3"}),
		}
	}
	var c store.Counts
	ids := map[string]bool{}
	for _, ev := range evs {
		msg, err := ev.ToMessage()
		require.NoError(t, err)
		require.NoError(t, b.Publisher().Publish("ledger.segment", msg))
		ids[ev.ID] = true // an event delivered again has one outcome
		require.Eventually(t, func() bool {
			c, _ = st.Counts(ctx, "segments")
			return c.Applied+c.Skipped+c.Dead == int64(len(ids))
		}, 10*time.Second, 10*time.Millisecond)
	}
	// Let a last repeated delivery be handled too.
	require.Eventually(t, func() bool {
		n, err := b.Pending(ctx, pipeline.ConsumerName("segments"))
		return err == nil && n == 0
	}, 10*time.Second, 10*time.Millisecond)
	return c
}

// TestSyncGuardsSegmentChangesPerMembership: a segment change is a delta.
// Delivered late, it still applies to the members no newer change touched,
// and is stale only for the others.
func TestSyncGuardsSegmentChangesPerMembership(t *testing.T) {
	tgt := newTarget()
	c := runSegments(t, pipeline.SyncConfig{}, mapper, tgt,
		segmentEvent("s1", "VIP", 1, []string{"M-1", "M-2", "M-3"}, nil),
		segmentEvent("s3", "VIP", 3, []string{"M-4"}, []string{"M-2"}),
		segmentEvent("s2", "VIP", 2, []string{"M-2"}, []string{"M-1"}),   // late: M-1 leaves; M-2's v2 is older than v3
		segmentEvent("s1", "VIP", 1, []string{"M-1", "M-2", "M-3"}, nil), // delivered again
		segmentEvent("s2b", "VIP", 2, []string{"M-2"}, nil),              // older than v3 for its only member
	)
	assert.Equal(t, store.Counts{Applied: 3, Skipped: 1}, c, "s1 delivered twice has one outcome")
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.ElementsMatch(t, []string{"VIP:M-3", "VIP:M-4"}, slices.Collect(maps.Keys(tgt.records)))
	assert.True(t, tgt.deleted["VIP:M-1"], "the late change's removal of M-1 applies")
	assert.True(t, tgt.deleted["VIP:M-2"], "M-2 left at v3; v2's add is stale")
}

func TestSyncExpandsSegmentMembershipChanges(t *testing.T) {
	tgt := newTarget()
	tgt.retryFirst["VIP:M-2"] = 2 // a passing failure of one membership retries the event
	runSegments(t, pipeline.SyncConfig{}, mapper, tgt)

	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.ElementsMatch(t, []string{"VIP:M-1", "VIP:M-2", "VIP:M-4"}, slices.Collect(maps.Keys(tgt.records)), "members added, M-3 removed")
	assert.True(t, tgt.deleted["VIP:M-3"])
	assert.Zero(t, tgt.retryFirst["VIP:M-2"], "the lock errors were retried")
}

// TestSyncWritesRemovalsWhenAsked: with removals: write, a member leaving a
// segment is mapped (change "removed") and upserted, never deleted.
func TestSyncWritesRemovalsWhenAsked(t *testing.T) {
	tgt := newTarget()
	byChange := func(_ context.Context, ev *event.Event) (map[string]any, error) {
		d := gjson.ParseBytes(ev.Data)
		return map[string]any{"member": d.Get("member_id").String(), "joined": d.Get("change").String() == "added",
			"version": d.Get("version").Int()}, nil
	}
	runSegments(t, pipeline.SyncConfig{Removals: pipeline.RemovalsWrite}, byChange, tgt)

	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	assert.Empty(t, tgt.deleted)
	require.Contains(t, tgt.records, "VIP:M-3")
	assert.Equal(t, false, tgt.records["VIP:M-3"]["joined"], "the leaver is written with change removed")
	assert.Equal(t, true, tgt.records["VIP:M-4"]["joined"])
	assert.Equal(t, true, tgt.records["VIP:M-1"]["joined"])
}

// TestSyncWritesDeletedEntityWhenAsked: with removals: write, a deleted
// member goes through the mapping and is upserted.
func TestSyncWritesDeletedEntityWhenAsked(t *testing.T) {
	h := newHarness(t, pipeline.SyncConfig{Removals: pipeline.RemovalsWrite}, newTarget())
	h.publish(memberEvent("e1", "M-1", 1, "ada"))
	h.waitCounts("members", 1)
	h.publish(memberEvent("e2", "M-1", 2, "-deleted-"))
	h.waitCounts("members", 2)
	h.target.mu.Lock()
	defer h.target.mu.Unlock()
	assert.Empty(t, h.target.deleted)
	assert.Equal(t, "-deleted-", h.target.records["M-1"]["name"])
	assert.Equal(t, []int64{1, 2}, h.target.history["M-1"])
}

package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// runStoreSuite is the conformance suite every Store implementation passes.
// newStore returns a Store on a fresh, empty database, closed by t.Cleanup.
func runStoreSuite(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"GuardTransitions", testGuardTransitions},
		{"OutOfOrderAndDuplicateBatches", testOutOfOrderAndDuplicateBatches},
		{"DuplicateKeysWithinBegin", testDuplicateKeysWithinBegin},
		{"FinishMovesStateOnlyAtSameVersion", testFinishVersionMatch},
		{"OutcomeLogIdempotent", testOutcomeIdempotent},
		{"Xref", testXref},
		{"DeadLettersPaging", testDeadLettersPaging},
		{"Counts", testCounts},
		{"Cursors", testCursors},
		{"Leases", testLeases},
		{"Requeue", testRequeue},
		{"DeadLetterFilters", testDeadLetterFilters},
		{"DeadLetterSummary", testDeadLetterSummary},
		{"DiscardByID", testDiscardByID},
		{"DiscardByFilter", testDiscardByFilter},
		{"DiscardRequeued", testDiscardRequeued},
		{"ResetFrozenKey", testResetFrozenKey},
		{"AuditLog", testAuditLog},
		{"Deliveries", testDeliveries},
		{"FoldKeys", testFoldKeys},
		{"FoldKeysPages", testFoldKeysPages},
		{"Prune", testPrune},
		{"Validation", testValidation},
		{"EmptyBatches", testEmptyBatches},
		{"ConcurrentBegin", func(t *testing.T, s store.Store) { testConcurrent(t, []store.Store{s}) }},
		{"RandomizedAgainstModel", testRandomized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

// runReplicaSuite runs the tests that need several Stores on one database.
// newDB prepares a fresh database and returns a function that opens one more
// Store on it (each closed by t.Cleanup, or earlier by the test).
func runReplicaSuite(t *testing.T, newDB func(t *testing.T) func() store.Store) {
	t.Run("ReopenKeepsEverything", func(t *testing.T) { testReopen(t, newDB(t)) })
	t.Run("ConcurrentBeginTwoReplicas", func(t *testing.T) {
		open := newDB(t)
		testConcurrent(t, []store.Store{open(), open()})
	})
}

// testLogger shows the stores' warnings (e.g. retried deadlocks) in the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

const (
	syncA = "ledger-member-to-crm"
	syncB = "cdp-segment-to-mc"
)

// ops is who the tests' audited changes are made by.
var ops = store.Operator{Name: "test-ops", Role: "operator"}

func begin(t *testing.T, s store.Store, sync string, items ...store.Item) []store.Decision {
	t.Helper()
	d, err := s.Begin(t.Context(), sync, items)
	require.NoError(t, err)
	require.Len(t, d, len(items))
	return d
}

func finish(t *testing.T, s store.Store, sync string, results ...store.Result) {
	t.Helper()
	require.NoError(t, s.Finish(t.Context(), sync, results))
}

func item(key string, v int64) store.Item {
	return store.Item{EventID: fmt.Sprintf("evt-%s-%d", key, v), Key: key, Version: v}
}

func result(it store.Item, o store.Outcome) store.Result {
	return store.Result{Item: it, Outcome: o}
}

func testGuardTransitions(t *testing.T, s store.Store) {
	// Each case runs on its own key: setup begins version 5 and then
	// finishes it as given (or leaves it pending); then version v is begun.
	cases := []struct {
		name  string
		setup store.Outcome // "" leaves 5 pending; "none" has no row at all
		v     int64
		want  store.Decision
		// again is the decision for v begun once more right after.
		again store.Decision
	}{
		{"no row", "none", 5, store.Apply, store.Apply},
		{"newer than pending", "", 6, store.Apply, store.Apply},
		{"newer than applied", store.Applied, 6, store.Apply, store.Apply},
		{"newer than dead", store.Dead, 6, store.Apply, store.Apply},
		{"same as pending", "", 5, store.Apply, store.Apply},
		{"same as applied", store.Applied, 5, store.SkipDuplicate, store.SkipDuplicate},
		{"same as dead", store.Dead, 5, store.SkipDuplicate, store.SkipDuplicate},
		{"older than pending", "", 4, store.SkipStale, store.SkipStale},
		{"older than applied", store.Applied, 4, store.SkipStale, store.SkipStale},
		{"older than dead", store.Dead, 4, store.SkipStale, store.SkipStale},
		{"skipped leaves pending", store.Skipped, 5, store.Apply, store.Apply},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("member-%d", i)
			if tc.setup != "none" {
				base := item(key, 5)
				require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, base))
				if tc.setup != "" {
					finish(t, s, syncA, result(base, tc.setup))
				}
			}
			it := store.Item{EventID: fmt.Sprintf("probe-%s-%d", key, tc.v), Key: key, Version: tc.v}
			assert.Equal(t, []store.Decision{tc.want}, begin(t, s, syncA, it), "first Begin")
			assert.Equal(t, []store.Decision{tc.again}, begin(t, s, syncA, it), "Begin again")
			// Whatever happened, the older version 3 is never applied again,
			// and the same key in another sync is independent.
			assert.Equal(t, []store.Decision{store.SkipStale}, begin(t, s, syncA, item(key, 3)))
			assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncB, item(key, 3)))

			// GuardOf shows the row: the newest version begun, its state.
			g, ok, err := s.GuardOf(t.Context(), syncA, key)
			require.NoError(t, err)
			require.True(t, ok)
			wantVersion, wantState := max(tc.v, 5), store.GuardPending
			switch {
			case tc.setup == "none":
				wantVersion = tc.v
			case tc.v <= 5 && (tc.setup == store.Applied || tc.setup == store.Dead):
				wantState = string(tc.setup)
			}
			assert.Equal(t, wantVersion, g.Version, "GuardOf version")
			assert.Equal(t, wantState, g.State, "GuardOf state")
			assert.NotEmpty(t, g.EventID)
			assert.WithinDuration(t, time.Now(), g.UpdatedAt, time.Hour)
		})
	}
	_, ok, err := s.GuardOf(t.Context(), syncA, "nobody")
	require.NoError(t, err)
	assert.False(t, ok, "a key never begun has no guard row")
}

func testOutOfOrderAndDuplicateBatches(t *testing.T, s store.Store) {
	b1 := []store.Item{item("m1", 3), item("m2", 1)}
	require.Equal(t, []store.Decision{store.Apply, store.Apply}, begin(t, s, syncA, b1...))
	finish(t, s, syncA, result(b1[0], store.Applied), result(b1[1], store.Applied))

	// The same batch redelivered: everything is a duplicate.
	require.Equal(t, []store.Decision{store.SkipDuplicate, store.SkipDuplicate}, begin(t, s, syncA, b1...))

	// An older, a duplicate, a newer and a new key, out of order.
	b2 := []store.Item{item("m1", 2), item("m1", 3), item("m2", 2), item("m3", 1), item("m2", 1)}
	assert.Equal(t,
		[]store.Decision{store.SkipStale, store.SkipDuplicate, store.Apply, store.Apply, store.SkipStale},
		begin(t, s, syncA, b2...))

	// A batch redelivered before it finished: pending versions are Apply again.
	assert.Equal(t,
		[]store.Decision{store.SkipStale, store.SkipDuplicate, store.Apply, store.Apply, store.SkipStale},
		begin(t, s, syncA, b2...))
}

func testDuplicateKeysWithinBegin(t *testing.T, s store.Store) {
	assert.Equal(t, []store.Decision{store.Apply, store.Apply},
		begin(t, s, syncA, item("k", 1), item("k", 2)), "ascending: both apply, in order")
	assert.Equal(t, []store.Decision{store.SkipStale}, begin(t, s, syncA, item("k", 1)), "v2 is pending now")

	assert.Equal(t, []store.Decision{store.Apply, store.SkipStale, store.Apply, store.Apply, store.SkipStale},
		begin(t, s, syncA, item("j", 2), item("j", 1), item("j", 2), item("j", 3), item("j", 2)))

	// Mixed keys with repeats, many rounds.
	assert.Equal(t,
		[]store.Decision{store.Apply, store.Apply, store.SkipStale, store.Apply, store.Apply, store.SkipStale, store.Apply},
		begin(t, s, syncA, item("x", 5), item("y", 1), item("x", 4), item("y", 2), item("x", 6), item("y", 1), item("z", 1)))

	// An applied version followed by itself in one batch is a duplicate both times.
	finish(t, s, syncA, result(item("z", 1), store.Applied))
	assert.Equal(t, []store.Decision{store.SkipDuplicate, store.SkipDuplicate, store.Apply},
		begin(t, s, syncA, item("z", 1), item("z", 1), item("z", 2)))
}

func testFinishVersionMatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1, v2 := item("k", 1), item("k", 2)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, v1))
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, v2))

	// v1's write finishes late: the row holds v2, so nothing moves.
	finish(t, s, syncA, result(v1, store.Applied))
	assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, v2), "v2 still pending")
	finish(t, s, syncA, result(v2, store.Applied))
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, v2), "v2 applied")

	// A dead result only moves a pending row: applied stays applied. Seen
	// through Requeue, which re-arms dead rows only.
	a := item("a", 1)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, a))
	finish(t, s, syncA, result(a, store.Applied))
	other := store.Result{Item: store.Item{EventID: "other-delivery", Key: "a", Version: 1}, Outcome: store.Dead, Reason: "boom"}
	finish(t, s, syncA, other)
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	_, err = s.Requeue(ctx, dls[0].ID, ops)
	require.NoError(t, err)
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, a), "applied row is not re-armed")

	// Whereas a dead row is re-armed.
	d := item("d", 1)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, d))
	finish(t, s, syncA, store.Result{Item: d, Outcome: store.Dead, Reason: "boom"})
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, d), "dead")
	dls, err = s.DeadLetters(ctx, syncA, dls[0].ID, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	_, err = s.Requeue(ctx, dls[0].ID, ops)
	require.NoError(t, err)
	assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, d), "dead row re-armed")

	// An applied result after a dead one at the same version (another
	// delivery succeeded) wins.
	e := item("e", 1)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, e))
	finish(t, s, syncA, store.Result{Item: e, Outcome: store.Dead})
	finish(t, s, syncA, store.Result{Item: store.Item{EventID: "e-again", Key: "e", Version: 1}, Outcome: store.Applied})
	dls, err = s.DeadLetters(ctx, syncA, dls[0].ID, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, e.EventID, dls[0].EventID)
	_, err = s.Requeue(ctx, dls[0].ID, ops)
	require.NoError(t, err)
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, e), "applied, so not re-armed")

	// The same in one call, dead first: applied still wins.
	g := item("g", 1)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, g))
	finish(t, s, syncA,
		store.Result{Item: g, Outcome: store.Dead},
		store.Result{Item: store.Item{EventID: "g-again", Key: "g", Version: 1}, Outcome: store.Applied})
	dls, err = s.DeadLetters(ctx, syncA, dls[0].ID, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, g.EventID, dls[0].EventID)
	_, err = s.Requeue(ctx, dls[0].ID, ops)
	require.NoError(t, err)
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, g), "applied, so not re-armed")

	// A result for a key never begun changes nothing but the log.
	finish(t, s, syncA, result(item("never", 9), store.Applied))
	assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, item("never", 1)))
}

func testOutcomeIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	e1, e2, e3 := item("k1", 1), item("k2", 1), item("k3", 1)
	begin(t, s, syncA, e1, e2, e3)
	finish(t, s, syncA, result(e1, store.Applied), store.Result{Item: e2, Outcome: store.Skipped, Reason: "filtered"})
	// Redelivered: recorded once.
	finish(t, s, syncA, result(e1, store.Applied), store.Result{Item: e2, Outcome: store.Skipped, Reason: "filtered"})
	// A later, different outcome for the same event is ignored too, and
	// writes no dead letter.
	finish(t, s, syncA, store.Result{Item: e2, Outcome: store.Dead, Reason: "late"})
	// The same event twice in one call: the first counts.
	finish(t, s, syncA, store.Result{Item: e3, Outcome: store.Dead, Reason: "first"}, result(e3, store.Applied))

	c, err := s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Applied: 1, Skipped: 1, Dead: 1}, c)
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, e3.EventID, dls[0].EventID)
	assert.Equal(t, "first", dls[0].Reason)
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, e3), "dead")

	// The same event id in another sync is another outcome.
	finish(t, s, syncB, result(e1, store.Applied))
	c, err = s.Counts(ctx, syncB)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Applied: 1}, c)
}

func lookup(t *testing.T, s store.Store, system, object, key string) (string, bool) {
	t.Helper()
	id, ok, err := s.LookupXref(t.Context(), system, object, key)
	require.NoError(t, err)
	return id, ok
}

func applied(it store.Item, system, object, target string) store.Result {
	return store.Result{Item: it, Outcome: store.Applied, System: system, Object: object, TargetID: target}
}

func testXref(t *testing.T, s store.Store) {
	_, ok := lookup(t, s, "salesforce", "Contact", "m1")
	assert.False(t, ok, "empty store")

	finish(t, s, syncA, applied(item("m1", 1), "salesforce", "Contact", "003A"))
	id, ok := lookup(t, s, "salesforce", "Contact", "m1")
	assert.True(t, ok)
	assert.Equal(t, "003A", id)
	_, ok = lookup(t, s, "salesforce", "Account", "m1")
	assert.False(t, ok, "other object")
	_, ok = lookup(t, s, "marketingcloud", "Contact", "m1")
	assert.False(t, ok, "other system")

	// A newer version updates it; an older one arriving late does not.
	finish(t, s, syncA, applied(item("m1", 3), "salesforce", "Contact", "003B"))
	finish(t, s, syncA, applied(item("m1", 2), "salesforce", "Contact", "003OLD"))
	id, _ = lookup(t, s, "salesforce", "Contact", "m1")
	assert.Equal(t, "003B", id)

	// Applied without a target id, or without a system, leaves it alone.
	finish(t, s, syncA, applied(item("m1", 4), "salesforce", "Contact", ""))
	finish(t, s, syncA, applied(item("m1", 5), "", "Contact", "003X"))
	id, _ = lookup(t, s, "salesforce", "Contact", "m1")
	assert.Equal(t, "003B", id)

	// Skipped and dead results do not touch it.
	finish(t, s, syncA, store.Result{Item: item("m1", 6), Outcome: store.Dead, System: "salesforce", Object: "Contact", TargetID: "003D"})
	finish(t, s, syncA, store.Result{Item: item("m1", 7), Outcome: store.Skipped, System: "salesforce", Object: "Contact", TargetID: "003S"})
	id, _ = lookup(t, s, "salesforce", "Contact", "m1")
	assert.Equal(t, "003B", id)

	// A delete removes it, and an older version cannot bring it back.
	finish(t, s, syncA, store.Result{Item: item("m1", 8), Outcome: store.Applied, System: "salesforce", Object: "Contact", Deleted: true})
	_, ok = lookup(t, s, "salesforce", "Contact", "m1")
	assert.False(t, ok, "deleted")
	finish(t, s, syncA, applied(item("m1", 7), "salesforce", "Contact", "003OLD"))
	_, ok = lookup(t, s, "salesforce", "Contact", "m1")
	assert.False(t, ok, "older version after delete")
	// A newer one recreates it.
	finish(t, s, syncA, applied(item("m1", 9), "salesforce", "Contact", "003C"))
	id, ok = lookup(t, s, "salesforce", "Contact", "m1")
	assert.True(t, ok)
	assert.Equal(t, "003C", id)

	// Several keys and repeats in one call: the highest version wins.
	finish(t, s, syncB,
		applied(item("s1", 2), "marketingcloud", "DE_Members", "row-2"),
		applied(item("s2", 1), "marketingcloud", "DE_Members", "row-s2"),
		applied(item("s1", 3), "marketingcloud", "DE_Members", "row-3"),
		applied(item("s1", 1), "marketingcloud", "DE_Members", "row-1"))
	id, _ = lookup(t, s, "marketingcloud", "DE_Members", "s1")
	assert.Equal(t, "row-3", id)
	id, _ = lookup(t, s, "marketingcloud", "DE_Members", "s2")
	assert.Equal(t, "row-s2", id)
}

func testDeadLettersPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	store.SetClock(s, func() time.Time { return at })

	type want struct {
		sync string
		res  store.Result
	}
	var all []want
	for i := range 7 {
		sync := syncA
		if i%3 == 2 {
			sync = syncB
		}
		it := store.Item{EventID: fmt.Sprintf("evt-%d", i), Key: fmt.Sprintf("key-%d", i), Version: int64(100 + i)}
		r := store.Result{
			Item: it, Outcome: store.Dead,
			Reason:   fmt.Sprintf("INVALID_FIELD: No such column 'Tier%d__c'", i),
			Code:     "INVALID_FIELD",
			Attempts: i + 1,
			Event:    json.RawMessage(fmt.Sprintf(`{"id":"evt-%d", "data":{"points": %d, "name":"Zoë"}}`, i, i*10)),
		}
		if i == 4 {
			r.Code, r.Event = "", nil
		}
		begin(t, s, sync, it)
		finish(t, s, sync, r)
		all = append(all, want{sync, r})
	}

	check := func(got store.DeadLetter, w want) {
		t.Helper()
		assert.Equal(t, w.sync, got.Sync)
		assert.Equal(t, w.res.EventID, got.EventID)
		assert.Equal(t, w.res.Key, got.Key)
		assert.Equal(t, w.res.Version, got.Version)
		assert.Equal(t, w.res.Reason, got.Reason)
		assert.Equal(t, w.res.Code, got.Code)
		assert.Equal(t, w.res.Attempts, got.Attempts)
		assert.Equal(t, string(w.res.Event), string(got.Event), "event kept byte for byte")
		assert.True(t, at.Truncate(time.Microsecond).Equal(got.At), "at %v, want %v", got.At, at)
		assert.Equal(t, time.UTC, got.At.Location())
	}

	// All of syncA, two at a time.
	var wantA []want
	for _, w := range all {
		if w.sync == syncA {
			wantA = append(wantA, w)
		}
	}
	var got []store.DeadLetter
	var after int64
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging does not end")
		page, err := s.DeadLetters(ctx, syncA, after, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	require.Len(t, got, len(wantA))
	for i := range got {
		check(got[i], wantA[i])
		if i > 0 {
			assert.Greater(t, got[i].ID, got[i-1].ID, "oldest first")
		}
	}

	// "" lists every sync; limit <= 0 means the default page.
	everything, err := s.DeadLetters(ctx, "", 0, 0)
	require.NoError(t, err)
	require.Len(t, everything, len(all))
	for i := range everything {
		check(everything[i], all[i])
	}
	b, err := s.DeadLetters(ctx, syncB, 0, 100)
	require.NoError(t, err)
	assert.Len(t, b, 2)

	// Past the end: an empty page, not nil (it is JSON-encoded as []).
	empty, err := s.DeadLetters(ctx, "", everything[len(everything)-1].ID, 10)
	require.NoError(t, err)
	assert.NotNil(t, empty)
	assert.Empty(t, empty)
	none, err := s.DeadLetters(ctx, "no-such-sync", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func testCounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, err := s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{}, c)

	var rs []store.Result
	for i := range 10 {
		it := item(fmt.Sprintf("k%d", i), 1)
		switch {
		case i < 5:
			rs = append(rs, result(it, store.Applied))
		case i < 8:
			rs = append(rs, store.Result{Item: it, Outcome: store.Skipped, Reason: "stale"})
		default:
			rs = append(rs, store.Result{Item: it, Outcome: store.Dead, Reason: "x"})
		}
	}
	finish(t, s, syncA, rs...)
	finish(t, s, syncB, result(item("k0", 1), store.Skipped))

	c, err = s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Applied: 5, Skipped: 3, Dead: 2}, c)
	c, err = s.Counts(ctx, syncB)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Skipped: 1}, c)
}

func testCursors(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, ok, err := s.GetCursor(ctx, "ledger.member")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, s.SetCursor(ctx, "ledger.member", "page-token-1"))
	require.NoError(t, s.SetCursor(ctx, "cdp.segment", ""))
	v, ok, err := s.GetCursor(ctx, "ledger.member")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "page-token-1", v)

	require.NoError(t, s.SetCursor(ctx, "ledger.member", "2026-01-01T00:00:00Z#42"))
	v, _, err = s.GetCursor(ctx, "ledger.member")
	require.NoError(t, err)
	assert.Equal(t, "2026-01-01T00:00:00Z#42", v)

	v, ok, err = s.GetCursor(ctx, "cdp.segment")
	require.NoError(t, err)
	assert.True(t, ok, "an empty value is a value")
	assert.Equal(t, "", v)

	assert.ErrorContains(t, s.SetCursor(ctx, "", "x"), "cursor name is empty")
}

func testRequeue(t *testing.T, s store.Store) {
	ctx := t.Context()
	dead := func(it store.Item, reason string, attempts int) store.Result {
		return store.Result{Item: it, Outcome: store.Dead, Reason: reason, Code: "INVALID_FIELD", Attempts: attempts,
			Event: json.RawMessage(`{"id":"` + it.EventID + `"}`)}
	}
	only := func(sync string) store.DeadLetter {
		t.Helper()
		dls, err := s.DeadLetters(ctx, sync, 0, 10)
		require.NoError(t, err)
		require.Len(t, dls, 1)
		return dls[0]
	}
	counts := func() store.Counts {
		t.Helper()
		c, err := s.Counts(ctx, syncA)
		require.NoError(t, err)
		return c
	}

	// Dead, requeued, replayed, applied: the dead letter goes, counts move.
	e := item("m1", 4)
	begin(t, s, syncA, e)
	finish(t, s, syncA, dead(e, "bad picklist", 1))
	dl := only(syncA)
	assert.Equal(t, store.Counts{Dead: 1}, counts())

	got, err := s.Requeue(ctx, dl.ID, ops)
	require.NoError(t, err)
	assert.Equal(t, dl, got, "returns the dead letter")
	_, err = s.Requeue(ctx, dl.ID, ops)
	require.NoError(t, err, "idempotent")
	assert.Equal(t, dl.ID, only(syncA).ID, "still listed until the replay finishes")
	assert.Equal(t, store.Counts{}, counts(), "the dead outcome is forgotten")

	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, e), "the replay is applied")
	finish(t, s, syncA, applied(e, "salesforce", "Contact", "003R"))
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, dls)
	assert.Equal(t, store.Counts{Applied: 1}, counts())
	id, _ := lookup(t, s, "salesforce", "Contact", "m1")
	assert.Equal(t, "003R", id)

	// Dead again after a replay: the same dead letter, updated in place.
	f := item("m2", 1)
	begin(t, s, syncA, f)
	finish(t, s, syncA, dead(f, "first failure", 1))
	dl = only(syncA)
	_, err = s.Requeue(ctx, dl.ID, ops)
	require.NoError(t, err)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, f))
	finish(t, s, syncA, dead(f, "second failure", 3))
	again := only(syncA)
	assert.Equal(t, dl.ID, again.ID)
	assert.Equal(t, "second failure", again.Reason)
	assert.Equal(t, 3, again.Attempts)
	assert.Equal(t, store.Counts{Applied: 1, Dead: 1}, counts())

	// A newer version arrived meanwhile: the replay is stale and skipped,
	// which resolves the dead letter.
	_, err = s.Requeue(ctx, again.ID, ops)
	require.NoError(t, err)
	f2 := item("m2", 2)
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, f2))
	finish(t, s, syncA, result(f2, store.Applied))
	require.Equal(t, []store.Decision{store.SkipStale}, begin(t, s, syncA, f))
	finish(t, s, syncA, store.Result{Item: f, Outcome: store.Skipped, Reason: "stale"})
	dls, err = s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, dls)
	assert.Equal(t, store.Counts{Applied: 2, Skipped: 1}, counts())

	_, err = s.Requeue(ctx, 987654, ops)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&t0)
	store.SetClock(s, func() time.Time { return *now.Load() })

	old1, old2, oldDead := item("o1", 1), item("o2", 1), item("o3", 1)
	begin(t, s, syncA, old1, old2, oldDead)
	finish(t, s, syncA,
		applied(old1, "salesforce", "Contact", "003-o1"),
		store.Result{Item: old2, Outcome: store.Applied, System: "salesforce", Object: "Contact", Deleted: true},
		store.Result{Item: oldDead, Outcome: store.Dead, Reason: "x"})

	t1 := t0.Add(2 * time.Hour)
	now.Store(&t1)
	recent := item("r1", 1)
	begin(t, s, syncA, recent)
	finish(t, s, syncA, result(recent, store.Applied))

	_, err := s.Prune(ctx, 0)
	assert.ErrorContains(t, err, "must be positive")

	n, err := s.Prune(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, int64(4), n, "3 old outcomes and 1 tombstone")
	c, err := s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Applied: 1}, c)

	// Kept: live cross-references, dead letters, the guard.
	id, ok := lookup(t, s, "salesforce", "Contact", "o1")
	assert.True(t, ok)
	assert.Equal(t, "003-o1", id)
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	assert.Len(t, dls, 1)
	assert.Equal(t, []store.Decision{store.SkipDuplicate, store.SkipDuplicate}, begin(t, s, syncA, old1, oldDead))

	// The tombstone is gone: an older version can recreate the entry now.
	finish(t, s, syncA, applied(item("o2", 0), "salesforce", "Contact", "003-o2"))
	_, ok = lookup(t, s, "salesforce", "Contact", "o2")
	assert.True(t, ok)

	n, err = s.Prune(ctx, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing old left")
}

func testValidation(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Begin(ctx, "", []store.Item{item("k", 1)})
	assert.ErrorContains(t, err, "sync name is empty")
	_, err = s.Begin(ctx, syncA, []store.Item{item("k", 1), {EventID: "e", Version: 1}})
	assert.ErrorContains(t, err, "item 1")
	assert.ErrorContains(t, err, "key is empty")
	_, err = s.Begin(ctx, syncA, []store.Item{{Key: "k", Version: 1}})
	assert.ErrorContains(t, err, "event id is empty")
	err = s.Finish(ctx, syncA, []store.Result{{Item: store.Item{Key: "k"}, Outcome: store.Dead}})
	assert.ErrorContains(t, err, "event id is empty")

	err = s.Finish(ctx, syncA, []store.Result{result(item("k", 1), store.Applied), {Item: item("k", 2), Outcome: "done"}})
	assert.ErrorContains(t, err, `outcome "done" is not one of`)
	err = s.Finish(ctx, "", []store.Result{result(item("k", 1), store.Applied)})
	assert.ErrorContains(t, err, "sync name is empty")

	_, err = s.Begin(ctx, syncA, []store.Item{{EventID: "e", Key: "k\xff", Version: 1}})
	assert.ErrorContains(t, err, "is not valid UTF-8")
	_, err = s.Begin(ctx, syncA, []store.Item{{EventID: "e\x00", Key: "k", Version: 1}})
	assert.ErrorContains(t, err, "contains a NUL byte")
	err = s.Finish(ctx, syncA, []store.Result{{Item: item("k", 1), Outcome: store.Applied, System: "s", Object: "o", TargetID: "\xc3"}})
	assert.ErrorContains(t, err, "target id")
	assert.ErrorContains(t, s.SetCursor(ctx, "c", "\xfe\xff"), "base64")

	// Nothing of the rejected calls was written.
	c, err := s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{}, c)
	assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, item("k", 1)))

	// Free text from a target's error is stored, made valid.
	finish(t, s, syncA, store.Result{Item: item("k", 1), Outcome: store.Dead, Reason: "bad \xff body\x00!", Code: "E\x00"})
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, "bad \uFFFD body!", dls[0].Reason)
	assert.Equal(t, "E", dls[0].Code)

	// An undecodable message has no key: Finish takes it (dead letter and
	// log only), byte for byte, and a redelivery is not counted twice.
	raw := []byte("\x00\x01 not json")
	undecodable := store.Result{Item: store.Item{EventID: "msg-uuid-1"}, Outcome: store.Dead,
		Reason: "undecodable message", Code: "DECODE", Attempts: 1, Event: raw}
	finish(t, s, syncA, undecodable)
	finish(t, s, syncA, undecodable)
	dls, err = s.DeadLetters(ctx, syncA, dls[0].ID, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, "msg-uuid-1", dls[0].EventID)
	assert.Equal(t, "", dls[0].Key)
	assert.Equal(t, raw, []byte(dls[0].Event))
	c, err = s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Dead: 2}, c)
}

func testEmptyBatches(t *testing.T, s store.Store) {
	d, err := s.Begin(t.Context(), syncA, nil)
	require.NoError(t, err)
	assert.Empty(t, d)
	require.NoError(t, s.Finish(t.Context(), syncA, nil))
}

// testConcurrent runs Begin (and Finish for what it applies) from many
// goroutines, spread over stores, on a few keys with random versions, and
// checks the guarantee: once a Begin returned Apply for (key, v), every Begin
// that started after that return decides SkipStale for any older version of
// the key. It also checks that the cross-reference ends at the target id of
// the highest version finished as applied.
func testConcurrent(t *testing.T, stores []store.Store) {
	const (
		goroutines = 8
		ops        = 50
		keys       = 4
		maxVersion = 60
	)
	type call struct {
		start, end int64
		items      []store.Item
		decisions  []store.Decision
	}
	var (
		clock  atomic.Int64
		mu     sync.Mutex
		calls  []call
		maxApp = map[string]int64{}
	)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%len(stores)]
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for op := range ops {
				n := 1 + rng.IntN(3)
				items := make([]store.Item, n)
				for i := range items {
					v := int64(1 + rng.IntN(maxVersion))
					k := fmt.Sprintf("key-%d", rng.IntN(keys))
					items[i] = store.Item{EventID: fmt.Sprintf("g%d-op%d-%d", g, op, i), Key: k, Version: v}
				}
				c := call{items: items, start: clock.Add(1)}
				d, err := s.Begin(context.Background(), syncA, items)
				c.end = clock.Add(1)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d op %d: Begin: %w", g, op, err)
					return
				}
				c.decisions = d
				var rs []store.Result
				for i, it := range items {
					if d[i] != store.Apply {
						rs = append(rs, store.Result{Item: it, Outcome: store.Skipped, Reason: d[i].String()})
						continue
					}
					if rng.IntN(10) < 8 {
						rs = append(rs, applied(it, "salesforce", "Contact", fmt.Sprintf("%s@v%d", it.Key, it.Version)))
					} else {
						rs = append(rs, store.Result{Item: it, Outcome: store.Dead, Reason: "injected"})
					}
				}
				if err := s.Finish(context.Background(), syncA, rs); err != nil {
					errs <- fmt.Errorf("goroutine %d op %d: Finish: %w", g, op, err)
					return
				}
				mu.Lock()
				calls = append(calls, c)
				for _, r := range rs {
					if r.Outcome == store.Applied && r.Version > maxApp[r.Key] {
						maxApp[r.Key] = r.Version
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	violations := 0
	applies := 0
	for _, a := range calls {
		for i, ai := range a.items {
			if a.decisions[i] != store.Apply {
				continue
			}
			applies++
			for _, b := range calls {
				if b.start < a.end {
					continue
				}
				for j, bj := range b.items {
					if bj.Key == ai.Key && bj.Version < ai.Version && b.decisions[j] != store.SkipStale {
						violations++
						if violations <= 5 {
							t.Errorf("Apply(%s v%d) returned at %d, yet Begin started at %d decided %s for v%d",
								ai.Key, ai.Version, a.end, b.start, b.decisions[j], bj.Version)
						}
					}
				}
			}
		}
	}
	assert.Zero(t, violations, "older-after-newer decisions")
	assert.Greater(t, applies, keys, "the test made some Apply decisions")

	for k, v := range maxApp {
		id, ok := lookup(t, stores[0], "salesforce", "Contact", k)
		assert.True(t, ok, k)
		assert.Equal(t, fmt.Sprintf("%s@v%d", k, v), id, "cross-reference of %s holds the highest applied version", k)
	}
	c, err := stores[0].Counts(t.Context(), syncA)
	require.NoError(t, err)
	total := 0
	for _, cl := range calls {
		total += len(cl.items)
	}
	assert.Equal(t, int64(total), c.Applied+c.Skipped+c.Dead, "one outcome per event")
}

// guardModel is the version guard table of store.Store's documentation,
// written out plainly.
type guardModel struct {
	rows     map[string]modelRow
	outcomes map[string]store.Outcome
}

type modelRow struct {
	version int64
	state   string
}

func (m *guardModel) begin(items []store.Item) []store.Decision {
	out := make([]store.Decision, len(items))
	for i, it := range items {
		r, ok := m.rows[it.Key]
		switch {
		case !ok || r.version < it.Version:
			m.rows[it.Key] = modelRow{it.Version, "pending"}
			out[i] = store.Apply
		case r.version > it.Version:
			out[i] = store.SkipStale
		case r.state == "pending":
			out[i] = store.Apply
		default:
			out[i] = store.SkipDuplicate
		}
	}
	return out
}

func (m *guardModel) finish(results []store.Result) {
	for _, r := range results {
		if _, done := m.outcomes[r.EventID]; !done {
			m.outcomes[r.EventID] = r.Outcome
		}
		row, ok := m.rows[r.Key]
		if !ok || row.version != r.Version {
			continue
		}
		switch {
		case r.Outcome == store.Applied:
			m.rows[r.Key] = modelRow{r.Version, "applied"}
		case r.Outcome == store.Dead && row.state == "pending":
			m.rows[r.Key] = modelRow{r.Version, "dead"}
		}
	}
}

// testRandomized drives random interleavings of versions, batches and late
// finishes through the store and a model of the guard table, and checks that
// every decision matches and that no key ever gets Apply for a version older
// than one it already got Apply for.
func testRandomized(t *testing.T, s store.Store) {
	for _, seed := range []uint64{1, 2, 3, rand.Uint64()} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			sync := fmt.Sprintf("random-%d", seed)
			m := &guardModel{rows: map[string]modelRow{}, outcomes: map[string]store.Outcome{}}
			highestApply := map[string]int64{}
			seen := map[store.Decision]int{}
			head := map[string]int64{}
			var inflight []store.Item
			for step := range 150 {
				n := 1 + rng.IntN(6)
				items := make([]store.Item, n)
				for i := range items {
					// Each key's versions drift upwards around a moving head,
					// arriving late, early, twice.
					k := string(rune('a' + rng.IntN(3)))
					if rng.IntN(3) == 0 {
						head[k]++
					}
					v := max(1, head[k]-2+int64(rng.IntN(5)))
					// Event ids repeat for the same (key, version) now and
					// then, as redeliveries do.
					items[i] = store.Item{EventID: fmt.Sprintf("%s-%d-%d", k, v, rng.IntN(2)), Key: k, Version: v}
				}
				want := m.begin(items)
				got := begin(t, s, sync, items...)
				require.Equal(t, want, got, "step %d: Begin(%v)", step, items)
				for _, d := range got {
					seen[d]++
				}
				for i, it := range items {
					if got[i] != store.Apply {
						continue
					}
					require.GreaterOrEqual(t, it.Version, highestApply[it.Key],
						"step %d: Apply for %s v%d after Apply for v%d", step, it.Key, it.Version, highestApply[it.Key])
					highestApply[it.Key] = it.Version
					inflight = append(inflight, it)
				}
				// Finish a random part of what is in flight, in random order.
				rng.Shuffle(len(inflight), func(i, j int) { inflight[i], inflight[j] = inflight[j], inflight[i] })
				k := rng.IntN(len(inflight) + 1)
				var rs []store.Result
				for _, it := range inflight[:k] {
					o := []store.Outcome{store.Applied, store.Applied, store.Dead, store.Skipped}[rng.IntN(4)]
					rs = append(rs, store.Result{Item: it, Outcome: o, Reason: "random"})
				}
				inflight = slices.Clone(inflight[k:])
				m.finish(rs)
				finish(t, s, sync, rs...)
			}
			for _, d := range []store.Decision{store.Apply, store.SkipStale, store.SkipDuplicate} {
				assert.Greater(t, seen[d], 10, "the random history exercises %s", d)
			}
			var want store.Counts
			for _, o := range m.outcomes {
				switch o {
				case store.Applied:
					want.Applied++
				case store.Skipped:
					want.Skipped++
				case store.Dead:
					want.Dead++
				}
			}
			c, err := s.Counts(t.Context(), sync)
			require.NoError(t, err)
			assert.Equal(t, want, c)
		})
	}
}

// testReopen writes one of everything, closes the store, opens the same
// database again and reads it all back.
func testReopen(t *testing.T, open func() store.Store) {
	ctx := t.Context()
	s := open()
	a, b := item("m1", 2), item("m2", 1)
	begin(t, s, syncA, a, b)
	finish(t, s, syncA,
		applied(a, "salesforce", "Contact", "003A"),
		store.Result{Item: b, Outcome: store.Dead, Reason: "boom", Event: json.RawMessage(`{"id":"x"}`)})
	pending := item("m3", 7)
	begin(t, s, syncA, pending)
	require.NoError(t, s.SetCursor(ctx, "ledger.member", "cursor-42"))
	require.NoError(t, s.Close())

	s = open()
	assert.Equal(t, []store.Decision{store.SkipDuplicate, store.SkipStale, store.Apply, store.SkipDuplicate},
		begin(t, s, syncA, a, item("m1", 1), pending, b))
	id, ok := lookup(t, s, "salesforce", "Contact", "m1")
	assert.True(t, ok)
	assert.Equal(t, "003A", id)
	c, err := s.Counts(ctx, syncA)
	require.NoError(t, err)
	assert.Equal(t, store.Counts{Applied: 1, Dead: 1}, c)
	dls, err := s.DeadLetters(ctx, syncA, 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.JSONEq(t, `{"id":"x"}`, string(dls[0].Event))
	v, ok, err := s.GetCursor(ctx, "ledger.member")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "cursor-42", v)

	// A third open (the migrations are already there) works too.
	require.NoError(t, s.Close())
	s = open()
	v, _, err = s.GetCursor(ctx, "ledger.member")
	require.NoError(t, err)
	assert.Equal(t, "cursor-42", v)
}

// benchBeginFinish pushes batches of 200 events through Begin and Finish
// (all applied, with cross-references), over a key space of 20,000 keys so
// that most batches update existing rows, and reports events/s.
func benchBeginFinish(b *testing.B, s store.Store) {
	const batch = 200
	ctx := context.Background()
	items := make([]store.Item, batch)
	results := make([]store.Result, batch)
	i := 0
	for ; b.Loop(); i++ {
		for j := range items {
			n := i*batch + j
			items[j] = store.Item{EventID: fmt.Sprintf("evt-%d", n), Key: fmt.Sprintf("member-%05d", n%20000), Version: int64(i + 1)}
		}
		d, err := s.Begin(ctx, "bench", items)
		if err != nil {
			b.Fatal(err)
		}
		for j, it := range items {
			if d[j] != store.Apply {
				b.Fatalf("item %d: %s, want apply", j, d[j])
			}
			results[j] = store.Result{Item: it, Outcome: store.Applied, System: "salesforce", Object: "Contact", TargetID: "003" + it.Key}
		}
		if err := s.Finish(ctx, "bench", results); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i*batch)/b.Elapsed().Seconds(), "events/s")
}

func testLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = 400 * time.Millisecond
	acquire := func(name, holder string) (store.Lease, bool) {
		t.Helper()
		l, ok, err := s.AcquireLease(ctx, name, holder, ttl)
		require.NoError(t, err)
		require.Equal(t, name, l.Name)
		return l, ok
	}

	a, ok := acquire("sync:members", "replica-a")
	require.True(t, ok, "a free lease is taken")
	assert.Equal(t, "replica-a", a.Holder)
	assert.WithinDuration(t, a.AcquiredAt.Add(ttl), a.ExpiresAt, 50*time.Millisecond)

	got, ok, err := s.LeaseOf(ctx, "sync:members")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, a, got, "LeaseOf shows the lease")
	_, ok, err = s.LeaseOf(ctx, "sync:nobody")
	require.NoError(t, err)
	assert.False(t, ok)

	b, ok := acquire("sync:members", "replica-b")
	require.False(t, ok, "a held lease is not taken")
	assert.Equal(t, "replica-a", b.Holder, "the holder is reported")
	_, ok = acquire("sync:vouchers", "replica-b")
	require.True(t, ok, "leases are independent")

	time.Sleep(ttl / 2)
	renewed, ok := acquire("sync:members", "replica-a")
	require.True(t, ok, "the holder renews")
	assert.Equal(t, a.AcquiredAt, renewed.AcquiredAt, "a renewal keeps the acquisition time")
	assert.True(t, renewed.ExpiresAt.After(a.ExpiresAt), "and extends the expiry")

	// replica-a stops renewing: once its time is up, replica-b takes over,
	// and replica-a cannot renew any more.
	time.Sleep(ttl + 100*time.Millisecond)
	b, ok = acquire("sync:members", "replica-b")
	require.True(t, ok, "an expired lease is taken")
	assert.True(t, b.AcquiredAt.After(a.AcquiredAt))
	l, ok := acquire("sync:members", "replica-a")
	require.False(t, ok)
	assert.Equal(t, "replica-b", l.Holder)

	// Release: only the holder's release counts, and frees it at once.
	require.NoError(t, s.ReleaseLease(ctx, "sync:members", "replica-a"))
	_, ok = acquire("sync:members", "replica-a")
	require.False(t, ok, "a non-holder's release does nothing")
	require.NoError(t, s.ReleaseLease(ctx, "sync:members", "replica-b"))
	_, ok = acquire("sync:members", "replica-a")
	require.True(t, ok, "a released lease is taken at once")

	_, ok, err = s.LeaseOf(ctx, "sync:vouchers")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.ReleaseLease(ctx, "sync:vouchers", "replica-b"))
	_, ok, err = s.LeaseOf(ctx, "sync:vouchers")
	require.NoError(t, err)
	assert.False(t, ok, "a released lease is gone")

	_, _, err = s.AcquireLease(ctx, "", "x", ttl)
	require.ErrorContains(t, err, "empty lease name")
	_, _, err = s.AcquireLease(ctx, "n", "", ttl)
	require.ErrorContains(t, err, "empty holder")
	_, _, err = s.AcquireLease(ctx, "n", "x", 0)
	require.ErrorContains(t, err, "must be positive")
}

// deadAt dead-letters it in sync at time at (the store's clock), with code.
func deadAt(t *testing.T, s store.Store, clock *atomic.Pointer[time.Time], at time.Time, sync string, it store.Item, code string) {
	t.Helper()
	clock.Store(&at)
	begin(t, s, sync, it)
	finish(t, s, sync, store.Result{Item: it, Outcome: store.Dead, Reason: code + ": refused", Code: code, Attempts: 1,
		Event: json.RawMessage(`{"id":"` + it.EventID + `","data":{"email":"ada@example.com"}}`)})
}

func settableClock(s store.Store, t0 time.Time) *atomic.Pointer[time.Time] {
	var clock atomic.Pointer[time.Time]
	clock.Store(&t0)
	store.SetClock(s, func() time.Time { return *clock.Load() })
	return &clock
}

func ids(dls []store.DeadLetter) []int64 {
	out := make([]int64, len(dls))
	for i, d := range dls {
		out[i] = d.ID
	}
	return out
}

func eventIDs(dls []store.DeadLetter) []string {
	out := make([]string, len(dls))
	for i, d := range dls {
		out[i] = d.EventID
	}
	return out
}

func query(t *testing.T, s store.Store, f store.DeadLetterFilter) []store.DeadLetter {
	t.Helper()
	var all []store.DeadLetter
	var after int64
	for range 100 {
		page, err := s.QueryDeadLetters(t.Context(), f, after, 2)
		require.NoError(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	t.Fatal("paging does not end")
	return nil
}

func testDeadLetterFilters(t *testing.T, s store.Store) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	deadAt(t, s, clock, t0, syncA, item("k1", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(time.Minute), syncA, item("k2", 1), "DUPLICATE_VALUE")
	deadAt(t, s, clock, t0.Add(2*time.Minute), syncB, item("k1", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(3*time.Minute), syncA, item("k1", 2), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(4*time.Minute), syncA, item("k3", 1), "")

	for _, tc := range []struct {
		name string
		f    store.DeadLetterFilter
		want []string
	}{
		{"all", store.DeadLetterFilter{}, []string{"evt-k1-1", "evt-k2-1", "evt-k1-1", "evt-k1-2", "evt-k3-1"}},
		{"sync", store.DeadLetterFilter{Sync: syncA}, []string{"evt-k1-1", "evt-k2-1", "evt-k1-2", "evt-k3-1"}},
		{"code", store.DeadLetterFilter{Code: "INVALID_FIELD"}, []string{"evt-k1-1", "evt-k1-1", "evt-k1-2"}},
		{"key", store.DeadLetterFilter{Key: "k1"}, []string{"evt-k1-1", "evt-k1-1", "evt-k1-2"}},
		{"sync code key", store.DeadLetterFilter{Sync: syncA, Code: "INVALID_FIELD", Key: "k1"}, []string{"evt-k1-1", "evt-k1-2"}},
		{"since is inclusive", store.DeadLetterFilter{Since: t0.Add(3 * time.Minute)}, []string{"evt-k1-2", "evt-k3-1"}},
		{"until is exclusive", store.DeadLetterFilter{Until: t0.Add(time.Minute)}, []string{"evt-k1-1"}},
		{"since and until", store.DeadLetterFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"evt-k2-1", "evt-k1-1"}},
		{"no code", store.DeadLetterFilter{Sync: syncA, Code: "NOPE"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := query(t, s, tc.f)
			assert.Equal(t, tc.want, append([]string(nil), eventIDs(got)...))
			for _, d := range got {
				assert.False(t, d.Superseded, "nothing is superseded yet")
				assert.NotEmpty(t, d.Event, "listings hold the events")
			}
		})
	}

	// k1 v3 is applied in syncA: both dead letters of k1 there are
	// superseded; k1 in syncB and the others are not.
	v3 := item("k1", 3)
	begin(t, s, syncA, v3)
	finish(t, s, syncA, result(v3, store.Applied))
	// k2 v2 is only pending: k2 v1 is not superseded (the write may fail).
	begin(t, s, syncA, item("k2", 2))
	marks := map[string]bool{}
	for _, d := range query(t, s, store.DeadLetterFilter{}) {
		marks[d.Sync+"/"+d.EventID] = d.Superseded
	}
	assert.Equal(t, map[string]bool{
		syncA + "/evt-k1-1": true, syncA + "/evt-k1-2": true, syncA + "/evt-k2-1": false, syncA + "/evt-k3-1": false,
		syncB + "/evt-k1-1": false,
	}, marks)
	assert.Equal(t, []string{"evt-k1-1", "evt-k1-2"}, eventIDs(query(t, s, store.DeadLetterFilter{Superseded: true})))
	dls, err := s.DeadLetters(t.Context(), syncA, 0, 10)
	require.NoError(t, err)
	require.Len(t, dls, 4)
	assert.True(t, dls[0].Superseded, "DeadLetters marks them too")

	_, err = s.QueryDeadLetters(t.Context(), store.DeadLetterFilter{Since: t0, Until: t0}, 0, 10)
	assert.ErrorIs(t, err, store.ErrInvalid)
	assert.ErrorContains(t, err, "is not after since")
	_, err = s.QueryDeadLetters(t.Context(), store.DeadLetterFilter{Key: "k\x00"}, 0, 10)
	assert.ErrorIs(t, err, store.ErrInvalid)
}

func testDeadLetterSummary(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	groups, err := s.SummarizeDeadLetters(ctx, store.DeadLetterFilter{})
	require.NoError(t, err)
	assert.NotNil(t, groups)
	assert.Empty(t, groups)

	deadAt(t, s, clock, t0, syncA, item("k1", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(time.Minute), syncA, item("k2", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(2*time.Minute), syncA, item("k3", 1), "DUPLICATE_VALUE")
	deadAt(t, s, clock, t0.Add(3*time.Minute), syncB, item("k1", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(4*time.Minute), syncA, item("k4", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0.Add(5*time.Minute), syncA, item("k5", 1), "")
	newer := item("k2", 2)
	begin(t, s, syncA, newer)
	finish(t, s, syncA, result(newer, store.Applied))

	groups, err = s.SummarizeDeadLetters(ctx, store.DeadLetterFilter{})
	require.NoError(t, err)
	assert.Equal(t, []store.DeadLetterGroup{
		{Sync: syncB, Code: "INVALID_FIELD", Count: 1, Oldest: t0.Add(3 * time.Minute), Newest: t0.Add(3 * time.Minute)},
		{Sync: syncA, Code: "", Count: 1, Oldest: t0.Add(5 * time.Minute), Newest: t0.Add(5 * time.Minute)},
		{Sync: syncA, Code: "DUPLICATE_VALUE", Count: 1, Oldest: t0.Add(2 * time.Minute), Newest: t0.Add(2 * time.Minute)},
		{Sync: syncA, Code: "INVALID_FIELD", Count: 3, Superseded: 1, Oldest: t0, Newest: t0.Add(4 * time.Minute)},
	}, groups, "sorted by sync and code")

	groups, err = s.SummarizeDeadLetters(ctx, store.DeadLetterFilter{Sync: syncA, Since: t0.Add(time.Minute), Code: "INVALID_FIELD"})
	require.NoError(t, err)
	assert.Equal(t, []store.DeadLetterGroup{
		{Sync: syncA, Code: "INVALID_FIELD", Count: 2, Superseded: 1, Oldest: t0.Add(time.Minute), Newest: t0.Add(4 * time.Minute)},
	}, groups, "filtered")
}

func audit(t *testing.T, s store.Store) []store.AuditEntry {
	t.Helper()
	var all []store.AuditEntry
	var after int64
	for {
		page, err := s.AuditLog(t.Context(), after, 3)
		require.NoError(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

func counts(t *testing.T, s store.Store, sync string) store.Counts {
	t.Helper()
	c, err := s.Counts(t.Context(), sync)
	require.NoError(t, err)
	return c
}

func guardOf(t *testing.T, s store.Store, sync, key string) (store.Guard, bool) {
	t.Helper()
	g, ok, err := s.GuardOf(t.Context(), sync, key)
	require.NoError(t, err)
	return g, ok
}

func testDiscardByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	deadAt(t, s, clock, t0, syncA, item("k1", 4), "INVALID_FIELD")
	deadAt(t, s, clock, t0, syncA, item("k2", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0, syncB, item("k3", 1), "DUPLICATE_VALUE")
	all := query(t, s, store.DeadLetterFilter{})
	require.Len(t, all, 3)
	before := counts(t, s, syncA)
	g1, _ := guardOf(t, s, syncA, "k1")

	t1 := t0.Add(time.Hour)
	clock.Store(&t1)
	d, err := s.DiscardDeadLetters(ctx, store.Selection{IDs: []int64{all[0].ID, all[2].ID, 999999, all[0].ID}},
		store.Operator{Name: "alice", Role: "operator", Reason: "fixed by hand in the CRM"})
	require.NoError(t, err)
	assert.Equal(t, []int64{all[0].ID, all[2].ID}, ids(d.DeadLetters))
	assert.Empty(t, d.DeadLetters[0].Event, "without their events")
	assert.Equal(t, []int64{999999}, d.NotFound)
	assert.False(t, d.More)
	assert.NotZero(t, d.AuditID)
	assert.Equal(t, []int64{all[1].ID}, ids(query(t, s, store.DeadLetterFilter{})), "the others stay")

	// The outcome stays dead; the guard row (dead at that version) is left
	// as it is: a redelivery is a duplicate, a newer version applies.
	assert.Equal(t, before, counts(t, s, syncA))
	g, ok := guardOf(t, s, syncA, "k1")
	require.True(t, ok)
	assert.Equal(t, g1, g)
	assert.Equal(t, []store.Decision{store.SkipDuplicate, store.SkipStale, store.Apply},
		begin(t, s, syncA, item("k1", 4), item("k1", 3), item("k1", 5)))

	entries := audit(t, s)
	require.Len(t, entries, 1)
	e := entries[0]
	assert.Equal(t, d.AuditID, e.ID)
	assert.True(t, t1.Equal(e.At))
	assert.Equal(t, "alice", e.Actor)
	assert.Equal(t, "operator", e.Role)
	assert.Equal(t, store.AuditDiscard, e.Action)
	assert.Equal(t, "fixed by hand in the CRM", e.Reason)
	assert.Empty(t, e.Sync, "two syncs")
	assert.Nil(t, e.Filter)
	assert.Equal(t, []store.AuditedLetter{
		{ID: all[0].ID, Sync: syncA, EventID: "evt-k1-4", Key: "k1", Version: 4, Code: "INVALID_FIELD"},
		{ID: all[2].ID, Sync: syncB, EventID: "evt-k3-1", Key: "k3", Version: 1, Code: "DUPLICATE_VALUE"},
	}, e.DeadLetters)
	require.Len(t, e.Guards, 2, "the guard rows as they were, by sync and key")
	assert.Equal(t, syncB, e.Guards[0].Sync)
	assert.Equal(t, store.AuditedGuard{Sync: syncA, Key: "k1", Version: 4, State: "dead", EventID: "evt-k1-4", UpdatedAt: g1.UpdatedAt}, e.Guards[1])

	// Nothing left to discard: no audit entry.
	d, err = s.DiscardDeadLetters(ctx, store.Selection{IDs: []int64{all[0].ID}}, ops)
	require.NoError(t, err)
	assert.Empty(t, d.DeadLetters)
	assert.Equal(t, []int64{all[0].ID}, d.NotFound)
	assert.Zero(t, d.AuditID)
	assert.Len(t, audit(t, s), 1)

	// Refused: no selection, no operator, too many ids.
	_, err = s.DiscardDeadLetters(ctx, store.Selection{}, ops)
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.DiscardDeadLetters(ctx, store.Selection{IDs: []int64{1}}, store.Operator{})
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.DiscardDeadLetters(ctx, store.Selection{IDs: make([]int64, store.MaxPageSize+1)}, ops)
	assert.ErrorIs(t, err, store.ErrInvalid)
	assert.Len(t, query(t, s, store.DeadLetterFilter{}), 1)
}

func testDiscardByFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	for i := range 5 {
		deadAt(t, s, clock, t0.Add(time.Duration(i)*time.Minute), syncA, item(fmt.Sprintf("k%d", i), 1), "INVALID_FIELD")
	}
	deadAt(t, s, clock, t0, syncA, item("x", 1), "DUPLICATE_VALUE")
	deadAt(t, s, clock, t0, syncB, item("k0", 1), "INVALID_FIELD")

	// In pages of 2: More says when to call again.
	f := store.DeadLetterFilter{Sync: syncA, Code: "INVALID_FIELD", Since: t0.Add(time.Minute)}
	var got []string
	for calls := 1; ; calls++ {
		require.Less(t, calls, 5)
		d, err := s.DiscardDeadLetters(ctx, store.Selection{Filter: f, Limit: 2}, ops)
		require.NoError(t, err)
		got = append(got, eventIDs(d.DeadLetters)...)
		if !d.More {
			break
		}
		require.Len(t, d.DeadLetters, 2)
	}
	assert.Equal(t, []string{"evt-k1-1", "evt-k2-1", "evt-k3-1", "evt-k4-1"}, got)
	assert.Equal(t, []string{"evt-k0-1", "evt-x-1"}, eventIDs(query(t, s, store.DeadLetterFilter{Sync: syncA})))
	entries := audit(t, s)
	require.Len(t, entries, 2)
	require.NotNil(t, entries[0].Filter)
	assert.Equal(t, f.Code, entries[0].Filter.Code)
	assert.True(t, f.Since.Equal(entries[0].Filter.Since))
	assert.Equal(t, syncA, entries[0].Sync)

	// IDs and a filter: the named ones the filter selects.
	rest := query(t, s, store.DeadLetterFilter{})
	d, err := s.DiscardDeadLetters(ctx, store.Selection{IDs: ids(rest), Filter: store.DeadLetterFilter{Code: "DUPLICATE_VALUE"}}, ops)
	require.NoError(t, err)
	assert.Equal(t, []string{"evt-x-1"}, eventIDs(d.DeadLetters))
	assert.Len(t, d.NotFound, 2)

	// The superseded ones of a sync.
	deadAt(t, s, clock, t0, syncA, item("s1", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0, syncA, item("s2", 1), "INVALID_FIELD")
	deadAt(t, s, clock, t0, syncB, item("s1", 1), "INVALID_FIELD")
	for _, sync := range []string{syncA, syncB} {
		v2 := item("s1", 2)
		begin(t, s, sync, v2)
		finish(t, s, sync, result(v2, store.Applied))
	}
	g, _ := guardOf(t, s, syncA, "s1")
	d, err = s.DiscardDeadLetters(ctx, store.Selection{Filter: store.DeadLetterFilter{Sync: syncA, Superseded: true}}, ops)
	require.NoError(t, err)
	assert.Equal(t, []string{"evt-s1-1"}, eventIDs(d.DeadLetters))
	assert.True(t, d.DeadLetters[0].Superseded)
	after, _ := guardOf(t, s, syncA, "s1")
	assert.Equal(t, g, after, "the newer applied row is untouched")
	assert.Equal(t, []string{"evt-k0-1", "evt-s1-1"}, eventIDs(query(t, s, store.DeadLetterFilter{Sync: syncB})))
	assert.Equal(t, []string{"evt-k0-1", "evt-s2-1"}, eventIDs(query(t, s, store.DeadLetterFilter{Sync: syncA})))

	// Without a limit, a discard by filter takes MaxPageSize at a time.
	var many []store.Item
	for i := range store.MaxPageSize + 5 {
		many = append(many, store.Item{EventID: fmt.Sprintf("m%d", i), Key: fmt.Sprintf("m%d", i), Version: 1})
	}
	var rs []store.Result
	for _, it := range many {
		rs = append(rs, store.Result{Item: it, Outcome: store.Dead, Code: "BULK"})
	}
	finish(t, s, syncB, rs...)
	d, err = s.DiscardDeadLetters(ctx, store.Selection{Filter: store.DeadLetterFilter{Code: "BULK"}}, ops)
	require.NoError(t, err)
	assert.Len(t, d.DeadLetters, store.MaxPageSize)
	assert.True(t, d.More)
	d, err = s.DiscardDeadLetters(ctx, store.Selection{Filter: store.DeadLetterFilter{Code: "BULK"}}, ops)
	require.NoError(t, err)
	assert.Len(t, d.DeadLetters, 5)
	assert.False(t, d.More)
}

// testDiscardRequeued: a dead letter requeued for a replay and then
// discarded gives the event up for good: the replay still in flight is a
// duplicate, the outcome is dead again, a newer version still applies.
func testDiscardRequeued(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	e := item("k", 7)
	deadAt(t, s, clock, t0, syncA, e, "INVALID_FIELD")
	dl := query(t, s, store.DeadLetterFilter{})[0]
	_, err := s.Requeue(ctx, dl.ID, ops)
	require.NoError(t, err)
	g, _ := guardOf(t, s, syncA, "k")
	require.Equal(t, store.GuardPending, g.State, "requeued")
	require.Equal(t, store.Counts{}, counts(t, s, syncA), "the dead outcome is forgotten")

	d, err := s.DiscardDeadLetters(ctx, store.Selection{IDs: []int64{dl.ID}}, ops)
	require.NoError(t, err)
	require.Len(t, d.DeadLetters, 1)
	g, _ = guardOf(t, s, syncA, "k")
	assert.Equal(t, store.GuardDead, g.State, "dead again")
	assert.Equal(t, int64(7), g.Version)
	assert.Equal(t, store.Counts{Dead: 1}, counts(t, s, syncA), "the outcome is dead again")

	// The replay arrives: a duplicate, and it brings no dead letter back.
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, e))
	finish(t, s, syncA, store.Result{Item: e, Outcome: store.Skipped, Reason: "duplicate"})
	assert.Empty(t, query(t, s, store.DeadLetterFilter{}))
	assert.Equal(t, store.Counts{Dead: 1}, counts(t, s, syncA))
	assert.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, item("k", 8)), "a newer version applies")

	entries := audit(t, s)
	require.Len(t, entries, 2)
	assert.Equal(t, store.AuditReplay, entries[0].Action)
	assert.Equal(t, store.AuditDiscard, entries[1].Action)
	require.Len(t, entries[1].Guards, 1)
	assert.Equal(t, store.GuardPending, entries[1].Guards[0].State, "the row as it was before the discard")
}

// testResetFrozenKey: a key whose guard row holds 2^63-1 refuses every later
// event; a reset deletes the row and discards the key's dead letters, and
// then v1 applies.
func testResetFrozenKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	huge := store.Item{EventID: "evt-absurd", Key: "M-1", Version: math.MaxInt64}
	begin(t, s, syncA, huge)
	finish(t, s, syncA, applied(huge, "salesforce", "Contact", "003F"))
	deadAt(t, s, clock, t0.Add(time.Minute), syncA, item("M-1", 1), "INVALID_FIELD") // a dead letter of the key (refused earlier)
	// It is frozen: nothing newer than 2^63-1 exists.
	assert.Equal(t, []store.Decision{store.SkipStale, store.SkipStale}, begin(t, s, syncA, item("M-1", 2), item("M-1", 1<<40)))
	// Other keys and the same key in another sync are not touched.
	other := item("M-2", 3)
	begin(t, s, syncA, other)
	finish(t, s, syncA, result(other, store.Applied))
	begin(t, s, syncB, item("M-1", 5))
	deadAt(t, s, clock, t0, syncB, item("M-1", 5), "INVALID_FIELD")
	before := counts(t, s, syncA)
	frozen, _ := guardOf(t, s, syncA, "M-1")

	_, err := s.ResetKey(ctx, syncA, "M-1", store.Target{}, store.Operator{Name: "alice", Role: "operator"})
	assert.ErrorIs(t, err, store.ErrInvalid, "a reason is required")
	_, err = s.ResetKey(ctx, syncA, "", store.Target{}, store.Operator{Name: "alice", Reason: "x"})
	assert.ErrorIs(t, err, store.ErrInvalid)

	t1 := t0.Add(time.Hour)
	clock.Store(&t1)
	r, err := s.ResetKey(ctx, syncA, "M-1", store.Target{System: "salesforce", Object: "Contact"},
		store.Operator{Name: "alice", Role: "operator", Reason: "version 2^63-1 accepted before ingress bounded versions"})
	require.NoError(t, err)
	assert.Equal(t, syncA, r.Sync)
	assert.Equal(t, "M-1", r.Key)
	require.NotNil(t, r.Guard)
	assert.Equal(t, frozen, *r.Guard, "what the row held")
	assert.Equal(t, []string{"evt-M-1-1"}, eventIDs(r.Discarded))
	assert.NotZero(t, r.AuditID)
	_, ok := guardOf(t, s, syncA, "M-1")
	assert.False(t, ok, "the row is gone")
	assert.Empty(t, query(t, s, store.DeadLetterFilter{Sync: syncA, Key: "M-1"}))
	assert.Equal(t, before, counts(t, s, syncA), "outcomes stay")
	assert.Len(t, query(t, s, store.DeadLetterFilter{Sync: syncB, Key: "M-1"}), 1, "the other sync keeps its own")
	g, _ := guardOf(t, s, syncB, "M-1")
	assert.Equal(t, int64(5), g.Version)
	assert.Equal(t, []store.Decision{store.SkipDuplicate}, begin(t, s, syncA, other))

	// v1 applies now, and writes the cross-reference again.
	v1 := store.Item{EventID: "evt-after-reset", Key: "M-1", Version: 1}
	require.Equal(t, []store.Decision{store.Apply}, begin(t, s, syncA, v1))
	finish(t, s, syncA, applied(v1, "salesforce", "Contact", "003N"))
	assert.Equal(t, []store.Decision{store.SkipDuplicate, store.Apply}, begin(t, s, syncA, v1, item("M-1", 2)))
	id, _ := lookup(t, s, "salesforce", "Contact", "M-1")
	assert.Equal(t, "003N", id, "the cross-reference follows the writes again")

	entries := audit(t, s)
	require.NotEmpty(t, entries)
	e := entries[len(entries)-1]
	assert.Equal(t, r.AuditID, e.ID)
	assert.Equal(t, store.AuditResetKey, e.Action)
	assert.Equal(t, "alice", e.Actor)
	assert.Equal(t, syncA, e.Sync)
	assert.Equal(t, "M-1", e.Key)
	assert.Contains(t, e.Reason, "2^63-1")
	require.Len(t, e.Guards, 1)
	assert.Equal(t, int64(math.MaxInt64), e.Guards[0].Version)
	assert.Equal(t, store.GuardApplied, e.Guards[0].State)
	assert.Len(t, e.DeadLetters, 1)
	require.NotNil(t, e.Xref)
	assert.Equal(t, store.AuditedXref{System: "salesforce", Object: "Contact", Key: "M-1", TargetID: "003F", Version: math.MaxInt64}, *e.Xref)

	// A key with nothing to reset.
	_, err = s.ResetKey(ctx, syncA, "M-nobody", store.Target{}, store.Operator{Name: "alice", Reason: "typo"})
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.Len(t, audit(t, s), len(entries), "no audit entry for it")
}

func testAuditLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	entries, err := s.AuditLog(ctx, 0, 10)
	require.NoError(t, err)
	assert.NotNil(t, entries)
	assert.Empty(t, entries)

	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	for i := range 4 {
		deadAt(t, s, clock, t0, syncA, item(fmt.Sprintf("k%d", i), 1), "INVALID_FIELD")
	}
	dls := query(t, s, store.DeadLetterFilter{})
	for _, d := range dls {
		_, err := s.Requeue(ctx, d.ID, store.Operator{Name: "loopback", Role: "operator", Reason: "bad\x00 reason \xff"})
		require.NoError(t, err)
	}
	_, err = s.Requeue(ctx, dls[0].ID, store.Operator{})
	assert.ErrorIs(t, err, store.ErrInvalid, "a replay needs who asks")

	all := audit(t, s)
	require.Len(t, all, 4, "paged in threes")
	for i, e := range all {
		assert.Equal(t, store.AuditReplay, e.Action)
		assert.Equal(t, "loopback", e.Actor)
		assert.Equal(t, "bad reason \uFFFD", e.Reason, "free text made storable")
		assert.Equal(t, syncA, e.Sync)
		assert.Equal(t, dls[i].Key, e.Key)
		assert.Equal(t, []store.AuditedLetter{{ID: dls[i].ID, Sync: syncA, EventID: dls[i].EventID, Key: dls[i].Key, Version: 1, Code: "INVALID_FIELD"}}, e.DeadLetters)
		require.Len(t, e.Guards, 1)
		assert.Equal(t, store.GuardDead, e.Guards[0].State, "the row before the replay")
		if i > 0 {
			assert.Greater(t, e.ID, all[i-1].ID)
		}
	}
}

func testDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := settableClock(s, t0)
	seen := func(source, id string) (string, bool) {
		t.Helper()
		d, ok, err := s.SeenDelivery(ctx, source, id)
		require.NoError(t, err)
		return d, ok
	}
	_, ok := seen("ledger", "msg_1")
	assert.False(t, ok)

	require.NoError(t, s.RememberDelivery(ctx, "ledger", "msg_1", "sha256:aa", t0.Add(5*time.Minute)))
	d, ok := seen("ledger", "msg_1")
	assert.True(t, ok)
	assert.Equal(t, "sha256:aa", d)
	_, ok = seen("crm", "msg_1")
	assert.False(t, ok, "per source")

	// While remembered, the first digest stays.
	require.NoError(t, s.RememberDelivery(ctx, "ledger", "msg_1", "sha256:bb", t0.Add(time.Hour)))
	d, _ = seen("ledger", "msg_1")
	assert.Equal(t, "sha256:aa", d)

	// Expired: not seen, and replaced by the next one.
	t1 := t0.Add(5 * time.Minute)
	clock.Store(&t1)
	_, ok = seen("ledger", "msg_1")
	assert.False(t, ok, "expired at its until")
	require.NoError(t, s.RememberDelivery(ctx, "ledger", "msg_1", "sha256:cc", t1.Add(time.Minute)))
	d, ok = seen("ledger", "msg_1")
	assert.True(t, ok)
	assert.Equal(t, "sha256:cc", d)

	// Prune removes expired entries (whatever olderThan says).
	for i := range 5 {
		require.NoError(t, s.RememberDelivery(ctx, "ledger", fmt.Sprintf("old-%d", i), "d", t1.Add(time.Second)))
	}
	t2 := t1.Add(10 * time.Minute)
	clock.Store(&t2)
	n, err := s.Prune(ctx, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, int64(6), n, "5 old ones and msg_1")

	// RememberDelivery prunes now and then by itself: after enough calls,
	// expired entries are gone before any Prune.
	for i := range 10 {
		require.NoError(t, s.RememberDelivery(ctx, "ledger", fmt.Sprintf("soon-%d", i), "d", t2.Add(time.Second)))
	}
	t3 := t2.Add(time.Minute)
	clock.Store(&t3)
	for i := range 200 {
		require.NoError(t, s.RememberDelivery(ctx, "ledger", fmt.Sprintf("new-%d", i), "d", t3.Add(time.Hour)))
	}
	n, err = s.Prune(ctx, 24*time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "already pruned")
	_, ok = seen("ledger", "new-199")
	assert.True(t, ok)

	assert.ErrorIs(t, s.RememberDelivery(ctx, "", "x", "d", t3), store.ErrInvalid)
	assert.ErrorIs(t, s.RememberDelivery(ctx, "ledger", "", "d", t3), store.ErrInvalid)
	assert.ErrorIs(t, s.RememberDelivery(ctx, "ledger", "x\x00", "d", t3), store.ErrInvalid)
}

func testFoldKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	const sys, obj = "salesforce", "Contact"
	guard := func(sync string, it store.Item, o store.Outcome) {
		t.Helper()
		begin(t, s, sync, it)
		if o != "" {
			finish(t, s, sync, store.Result{Item: it, Outcome: o, System: sys, Object: obj, TargetID: "id-" + it.EventID, Reason: "r"})
		}
	}
	guard(syncA, item("M-ABC", 3), store.Applied) // moves to m-abc
	guard(syncA, item("K1", 5), store.Applied)    // collides with k1 v3: K1 wins
	guard(syncA, item("k1", 3), store.Applied)    //
	guard(syncA, item("K2", 2), store.Applied)    // collides with k2 v7: k2 stays
	guard(syncA, item("k2", 7), store.Applied)    //
	guard(syncA, item("T1", 4), "")               // a tie at v4: the applied one wins
	guard(syncA, item("t1", 4), store.Applied)    //
	guard(syncA, item("ZOË", 2), store.Applied)   // not ASCII: Go folds it
	guard(syncA, item("lower", 1), store.Applied) // unchanged
	guard(syncB, item("OTHER", 1), store.Applied) // another sync: untouched (its xref entry is folded)
	deadAt(t, s, settableClock(s, time.Now()), time.Now(), syncA, item("DEAD", 1), "INVALID_FIELD")

	n, err := s.FoldKeys(ctx, syncA, sys, obj, strings.ToLower)
	require.NoError(t, err)
	// Guard: M-ABC, K1, K2, T1, ZOË, DEAD (6); dead letter DEAD (1);
	// xref: M-ABC, K1, K2, ZOË, OTHER (T1 has no entry, DEAD neither) (5).
	assert.Equal(t, 12, n)

	for _, tc := range []struct {
		key     string
		version int64
		state   string
	}{
		{"m-abc", 3, store.GuardApplied}, {"k1", 5, store.GuardApplied}, {"k2", 7, store.GuardApplied},
		{"t1", 4, store.GuardApplied}, {"zoë", 2, store.GuardApplied}, {"lower", 1, store.GuardApplied},
		{"dead", 1, store.GuardDead},
	} {
		g, ok := guardOf(t, s, syncA, tc.key)
		if assert.True(t, ok, tc.key) {
			assert.Equal(t, tc.version, g.Version, tc.key)
			assert.Equal(t, tc.state, g.State, tc.key)
		}
	}
	for _, gone := range []string{"M-ABC", "K1", "K2", "T1", "ZOË", "DEAD"} {
		_, ok := guardOf(t, s, syncA, gone)
		assert.False(t, ok, gone)
	}
	_, ok := guardOf(t, s, syncB, "OTHER")
	assert.True(t, ok, "another sync's guard is not folded")

	for key, want := range map[string]string{"m-abc": "id-evt-M-ABC-3", "k1": "id-evt-K1-5", "k2": "id-evt-k2-7", "zoë": "id-evt-ZOË-2", "other": "id-evt-OTHER-1"} {
		id, ok := lookup(t, s, sys, obj, key)
		assert.True(t, ok, key)
		assert.Equal(t, want, id, "%s: the entry of the newest version", key)
	}
	_, ok = lookup(t, s, sys, obj, "K1")
	assert.False(t, ok)
	dls := query(t, s, store.DeadLetterFilter{Sync: syncA, Key: "dead"})
	assert.Len(t, dls, 1, "dead letters are folded too")

	// The pipeline's folded keys now meet their rows.
	assert.Equal(t, []store.Decision{store.SkipStale, store.SkipDuplicate, store.Apply},
		begin(t, s, syncA, item("k1", 4), item("m-abc", 3), item("zoë", 3)))

	n, err = s.FoldKeys(ctx, syncA, sys, obj, strings.ToLower)
	require.NoError(t, err)
	assert.Zero(t, n, "idempotent")

	_, err = s.FoldKeys(ctx, syncA, "", "", func(string) string { return "" })
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.FoldKeys(ctx, "", "", "", strings.ToLower)
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.FoldKeys(ctx, syncA, "", "", nil)
	assert.ErrorIs(t, err, store.ErrInvalid)
}

// testFoldKeysPages folds more rows than one page holds, with collisions
// across pages.
func testFoldKeysPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	const keys = 1300
	var its []store.Item
	var rs []store.Result
	for i := range keys {
		// Upper-case keys sort before their folded forms: each page moves
		// rows past the cursor.
		it := store.Item{EventID: fmt.Sprintf("e%d", i), Key: fmt.Sprintf("KEY-%04d", i), Version: int64(10 + i%3)}
		its = append(its, it)
		rs = append(rs, applied(it, "mc", "DE", fmt.Sprintf("row-%d", i)))
		if i%4 == 0 { // a folded twin, older or newer
			twin := store.Item{EventID: fmt.Sprintf("t%d", i), Key: fmt.Sprintf("key-%04d", i), Version: 11}
			its = append(its, twin)
			rs = append(rs, applied(twin, "mc", "DE", fmt.Sprintf("twin-%d", i)))
		}
	}
	for i := 0; i < len(its); i += 200 {
		j := min(i+200, len(its))
		begin(t, s, syncA, its[i:j]...)
		finish(t, s, syncA, rs[i:j]...)
	}
	n, err := s.FoldKeys(ctx, syncA, "mc", "DE", strings.ToLower)
	require.NoError(t, err)
	assert.Equal(t, 2*keys, n)
	for i := range keys {
		key := fmt.Sprintf("key-%04d", i)
		g, ok := guardOf(t, s, syncA, key)
		require.True(t, ok, key)
		wantV, wantID := int64(10+i%3), fmt.Sprintf("row-%d", i)
		if i%4 == 0 && wantV < 11 {
			wantV, wantID = 11, fmt.Sprintf("twin-%d", i)
		}
		assert.Equal(t, wantV, g.Version, key)
		id, _ := lookup(t, s, "mc", "DE", key)
		if i%4 == 0 && 10+i%3 == 11 {
			assert.Contains(t, []string{wantID, fmt.Sprintf("twin-%d", i)}, id, "a tie keeps either")
		} else {
			assert.Equal(t, wantID, id, key)
		}
		_, ok = guardOf(t, s, syncA, fmt.Sprintf("KEY-%04d", i))
		require.False(t, ok)
	}
	n, err = s.FoldKeys(ctx, syncA, "mc", "DE", strings.ToLower)
	require.NoError(t, err)
	assert.Zero(t, n)
}

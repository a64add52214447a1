package emulator_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
)

func TestNewPlan(t *testing.T) {
	p := emulator.NewPlan(emulator.PlanConfig{Members: 500, Events: 5000, DuplicateRate: 0.1, ReorderRate: 0.1, Seed: 7})
	if p.Distinct != 5000 {
		t.Fatalf("distinct = %d, want 5000", p.Distinct)
	}
	if got, want := len(p.Deliveries), 5000+p.Duplicates; got != want {
		t.Fatalf("deliveries = %d, want %d (every event once plus %d duplicates)", got, want, p.Duplicates)
	}
	if p.Duplicates != 500 {
		t.Errorf("duplicates = %d, want 500", p.Duplicates)
	}
	if p.Reordered < 300 {
		t.Errorf("reordered = %d, want about 10%% of the events that have a newer version", p.Reordered)
	}
	// Every distinct event is delivered; the newest version of each member
	// matches the plan's expectation; some older versions arrive after newer ones.
	seen := map[string]bool{}
	maxSeen := map[string]int64{}
	late := 0
	for _, d := range p.Deliveries {
		seen[d.ID] = true
		if d.Data.Version < maxSeen[d.Subject] {
			late++
		}
		maxSeen[d.Subject] = max(maxSeen[d.Subject], d.Data.Version)
	}
	if len(seen) != 5000 {
		t.Fatalf("distinct ids delivered = %d, want 5000", len(seen))
	}
	if late == 0 {
		t.Fatal("no delivery arrived after a newer version: the plan is not out of order")
	}
	for id, m := range p.Newest {
		if maxSeen[id] != m.Version {
			t.Fatalf("member %s: newest delivered version %d, plan says %d", id, maxSeen[id], m.Version)
		}
	}
	if len(p.Newest) != 500 {
		t.Fatalf("members = %d, want 500", len(p.Newest))
	}
	// Same seed, same plan.
	q := emulator.NewPlan(emulator.PlanConfig{Members: 500, Events: 5000, DuplicateRate: 0.1, ReorderRate: 0.1, Seed: 7})
	for i := range p.Deliveries {
		if p.Deliveries[i].ID != q.Deliveries[i].ID {
			t.Fatalf("plans with one seed differ at delivery %d", i)
		}
	}
}

func TestSegmentsFollowTiers(t *testing.T) {
	at := time.Date(2026, 4, 1, 6, 0, 0, 0, time.UTC)
	var s emulator.Segments
	first := s.Update(map[string]emulator.Member{
		"M-1": {ID: "M-1", Tier: "gold"}, "M-2": {ID: "M-2", Tier: "gold"}, "M-3": {ID: "M-3", Tier: "silver"},
	}, at)
	require.Len(t, first, 2)
	assert.Equal(t, "tier-silver", first[0].Subject)
	assert.Equal(t, []string{"M-3"}, first[0].Data.Added)
	assert.Equal(t, "tier-gold", first[1].Subject)
	assert.Equal(t, emulator.SegmentChange{SegmentID: "tier-gold", Version: 1, Added: []string{"M-1", "M-2"}, Removed: []string{}}, first[1].Data)
	assert.Equal(t, "loyalty.segment.membership.changed", first[1].Type)

	// M-2 moves up to platinum; M-3 is unchanged: silver has no event.
	second := s.Update(map[string]emulator.Member{
		"M-1": {ID: "M-1", Tier: "gold"}, "M-2": {ID: "M-2", Tier: "platinum"}, "M-3": {ID: "M-3", Tier: "silver"},
	}, at.Add(time.Hour))
	require.Len(t, second, 2)
	assert.Equal(t, emulator.SegmentChange{SegmentID: "tier-gold", Version: 2, Added: []string{}, Removed: []string{"M-2"}}, second[0].Data)
	assert.Equal(t, emulator.SegmentChange{SegmentID: "tier-platinum", Version: 2, Added: []string{"M-2"}, Removed: []string{}}, second[1].Data)
	assert.NotEqual(t, first[1].ID, second[0].ID)
}

func TestNewTransactions(t *testing.T) {
	start := time.Date(2026, 4, 1, 6, 0, 0, 0, time.UTC)
	txns := emulator.NewTransactions([]string{"M-2", "M-1"}, 50, 100, 7, start)
	require.Len(t, txns, 50)
	assert.Equal(t, "T-0000100", txns[0].Subject)
	assert.Equal(t, "T-0000149", txns[49].Data.ID)
	for _, tx := range txns {
		assert.Contains(t, []string{"M-1", "M-2"}, tx.Data.MemberID)
		assert.Equal(t, "loyalty.transaction.posted", tx.Type)
		assert.False(t, tx.Data.OccurredAt.Before(start))
		assert.Positive(t, tx.Data.Quantity)
		if tx.Data.Kind == "accrual" {
			assert.Equal(t, int64(tx.Data.Amount), tx.Data.Points)
		}
	}
	assert.Equal(t, txns, emulator.NewTransactions([]string{"M-1", "M-2"}, 50, 100, 7, start), "reproducible")
}

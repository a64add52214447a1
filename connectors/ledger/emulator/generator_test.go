package emulator_test

import (
	"testing"

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

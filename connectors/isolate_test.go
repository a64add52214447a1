package connectors_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// fakeAllOrNothing refuses a call holding any bad record and applies the
// others; it counts calls.
func fakeAllOrNothing(bad map[int]bool, results []connectors.Result, calls *int) func([]int) (*connectors.Refusal, error) {
	return func(idx []int) (*connectors.Refusal, error) {
		*calls++
		if slices.ContainsFunc(idx, func(i int) bool { return bad[i] }) {
			return &connectors.Refusal{Code: "BAD", Message: "a bad record"}, nil
		}
		for _, i := range idx {
			results[i] = connectors.Result{Status: connectors.StatusApplied}
		}
		return nil, nil
	}
}

func TestIsolate(t *testing.T) {
	idx := make([]int, 16)
	for i := range idx {
		idx[i] = i
	}
	for _, tc := range []struct {
		name      string
		bad       []int
		budget    int
		maxCalls  int
		permanent []int
	}{
		{"all good: one call", nil, 24, 1, nil},
		{"one bad: found by halving", []int{5}, 24, 9, []int{5}},
		{"two bad", []int{0, 15}, 24, 17, []int{0, 15}},
		{"every record bad: the budget ends it", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 6, 7, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{"no budget: refused together", []int{3}, 0, 1, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := make([]connectors.Result, len(idx))
			bad := map[int]bool{}
			for _, b := range tc.bad {
				bad[b] = true
			}
			calls := 0
			require.NoError(t, connectors.Isolate(idx, tc.budget, results, fakeAllOrNothing(bad, results, &calls)))
			assert.LessOrEqual(t, calls, tc.maxCalls)
			var permanent []int
			for i, r := range results {
				switch r.Status {
				case connectors.StatusPermanent:
					permanent = append(permanent, i)
					assert.Contains(t, r.Message, "a bad record")
				case connectors.StatusApplied:
				default:
					t.Errorf("record %d has no result", i)
				}
			}
			assert.Equal(t, tc.permanent, permanent)
		})
	}
	// A failure of a whole call ends it at once.
	calls := 0
	err := connectors.Isolate(idx, 24, make([]connectors.Result, len(idx)), func([]int) (*connectors.Refusal, error) {
		calls++
		return nil, errors.New("503")
	})
	assert.EqualError(t, err, "503")
	assert.Equal(t, 1, calls)
}

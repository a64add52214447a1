package pipeline

import "time"

// SetBackfillLeaseCheck sets how often a backfill checks its lease, for a
// test, and returns a function that puts it back.
func SetBackfillLeaseCheck(d time.Duration) func() {
	old := backfillLeaseCheck
	backfillLeaseCheck = d
	return func() { backfillLeaseCheck = old }
}

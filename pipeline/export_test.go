package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SetBackfillLeaseCheck sets how often a backfill checks its lease, for a
// test, and returns a function that puts it back.
func SetBackfillLeaseCheck(d time.Duration) func() {
	old := backfillLeaseCheck
	backfillLeaseCheck = d
	return func() { backfillLeaseCheck = old }
}

// BreakerTransitions is the counter of connector's breaker entering state to.
func (m *Metrics) BreakerTransitions(connector, to string) prometheus.Counter {
	return m.breakerChanges.WithLabelValues(connector, to)
}

package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's Prometheus metrics, labelled by sync.
type Metrics struct {
	received     *prometheus.CounterVec
	outcomes     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	calls        *prometheus.CounterVec
	batchSize    *prometheus.HistogramVec
	batchSeconds *prometheus.HistogramVec
	writeSeconds *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_events_received_total",
			Help: "Event deliveries handed to a sync (redeliveries and retries included).",
		}, []string{"sync"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_outcomes_total",
			Help: "Final outcomes recorded per sync: applied, skipped or dead.",
		}, []string{"sync", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_retries_total",
			Help: "Events answered as retryable (they are tried again).",
		}, []string{"sync"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_target_calls_total",
			Help: "API calls made to the target system.",
		}, []string{"sync"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyaltyhub_sync_batch_events",
			Help:    "Events per processed batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 200, 400},
		}, []string{"sync"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyaltyhub_sync_batch_seconds",
			Help:    "Time to process one batch: guard, map, write, record.",
			Buckets: prometheus.DefBuckets,
		}, []string{"sync"}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyaltyhub_sync_write_seconds",
			Help:    "Time of one write call to the target.",
			Buckets: prometheus.DefBuckets,
		}, []string{"sync"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.outcomes, m.retries, m.calls, m.batchSize, m.batchSeconds, m.writeSeconds)
	}
	return m
}

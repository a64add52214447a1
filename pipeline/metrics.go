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
	requeued     *prometheus.CounterVec
	held         *prometheus.CounterVec

	breakerState   *prometheus.GaugeVec
	breakerChanges *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_events_received_total",
			Help: "Event deliveries handed to a sync (a redelivery by the bus counts again; a retry of the same delivery does not). " +
				"received = outcomes (applied + skipped + dead) + requeued + in flight.",
		}, []string{"sync"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_sync_outcomes_total",
			Help: "How each delivery ended, per sync: applied, skipped or dead (a segment change counts once, however many memberships it carries).",
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
	m.requeued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loyaltyhub_sync_requeued_total",
		Help: "Deliveries handed back to the bus without an outcome (the sync stopped, its lease moved); the bus delivers them again.",
	}, []string{"sync"})
	m.held = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loyaltyhub_sync_held_writes_total",
		Help: "Write calls held and sent again because the target asked to wait (Retry-After) or its circuit breaker was open; no attempt is spent on them.",
	}, []string{"sync"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loyaltyhub_connector_breaker_state",
		Help: "The circuit breaker of each connector: 0 closed, 1 half-open (probing), 2 open (writes held).",
	}, []string{"connector"})
	m.breakerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loyaltyhub_connector_breaker_transitions_total",
		Help: "Circuit breaker state changes per connector, by the state entered.",
	}, []string{"connector", "to"})
	if reg != nil {
		reg.MustRegister(m.received, m.outcomes, m.retries, m.calls, m.batchSize, m.batchSeconds, m.writeSeconds,
			m.requeued, m.held, m.breakerState, m.breakerChanges)
	}
	return m
}

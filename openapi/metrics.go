package openapi

import (
	"errors"
	"fmt"

	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Label values used when the real one is unknown or not to be trusted (it
// would let a client create unbounded series).
const (
	// labelUndeclaredSource is the source label of a request to an undeclared
	// source; it cannot clash with a source name (names start with [a-z0-9]).
	labelUndeclaredSource = "_undeclared"
	// labelUnknownType is the type label of an event whose type is not one of
	// the hub's, and of a request rejected before its events could be read.
	labelUnknownType = "unknown"
)

// Rejection reasons, the "reason" label of loyaltyhub_ingress_events_rejected_total.
const (
	reasonNotAccepting  = "not_accepting"
	reasonUnknownSource = "unknown_source"
	reasonTooLarge      = "too_large"
	reasonUnauthorized  = "unauthorized"
	reasonMediaType     = "unsupported_media_type"
	reasonInvalidJSON   = "invalid_json"
	reasonTooMany       = "too_many_events"
	reasonInvalid       = "invalid"
	reasonPublishFailed = "publish_failed"
	reasonTooBusy       = "too_busy"
	reasonConflict      = "delivery_conflict"
)

type metrics struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
	duration *prometheus.HistogramVec
	replayed *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_ingress_events_accepted_total",
			Help: "Events stored on the bus through POST /v1/events/{source}, by source and event type.",
		}, []string{"source", "type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_ingress_events_rejected_total",
			Help: "Events refused by POST /v1/events/{source}, by source, event type and reason. " +
				"A request refused before its events could be read counts once with type \"unknown\".",
		}, []string{"source", "type", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyaltyhub_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by OpenAPI operation id, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "method", "code"}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyaltyhub_ingress_deliveries_replayed_total",
			Help: "Signed deliveries received again inside their source's tolerance window: answered 202 as before, not published again. By source.",
		}, []string{"source"}),
	}
	var err error
	m.accepted, err = register(reg, m.accepted)
	if err != nil {
		return nil, err
	}
	m.rejected, err = register(reg, m.rejected)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	m.replayed, err = register(reg, m.replayed)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector already
// registered (a second server on the same registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("registering ingress metrics: %w", err)
	}
	return c, nil
}

// typeLabel keeps the type label to the hub's own event types.
func typeLabel(t string) string {
	if _, ok := event.Types[t]; ok {
		return t
	}
	return labelUnknownType
}

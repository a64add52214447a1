package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker"
)

// BreakerConfig configures the circuit breaker of one connector.
type BreakerConfig struct {
	// Failures is how many write calls in a row must fail as a whole with a
	// retryable error (a 5xx, a timeout, a refused connection) before the
	// breaker opens. Default 5.
	Failures int
	// OpenFor is how long the breaker stays open before one write goes
	// through as a probe (half-open); the probe's success closes it, its
	// failure opens it again. Default 10s.
	OpenFor time.Duration
}

func (c *BreakerConfig) setDefaults() {
	if c.Failures <= 0 {
		c.Failures = 5
	}
	if c.OpenFor <= 0 {
		c.OpenFor = 10 * time.Second
	}
}

// Breaker is the circuit breaker of one connector, shared by every sync
// that writes to it. While it is open the syncs hold their writes: the
// records wait in their batches (their attempts are not spent, nothing is
// dead-lettered for the outage) until a probe gets through. A write that
// fails while the breaker opens, or as a failed probe, is held and tried
// again once the breaker lets it, so an outage of any length costs each
// record at most the attempts spent before the breaker opened.
type Breaker struct {
	name    string
	cb      *gobreaker.TwoStepCircuitBreaker
	metrics *Metrics
	logger  *slog.Logger
	// poll is how often a held write asks again whether it may go.
	poll time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each state change
}

// The breaker states, as the metric and the admin API show them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// NewBreaker builds the breaker of connector name. A nil logger discards;
// nil metrics are not exported.
func NewBreaker(name string, cfg BreakerConfig, metrics *Metrics, logger *slog.Logger) *Breaker {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	b := &Breaker{name: name, metrics: metrics, logger: logger.With("connector", name),
		poll: min(cfg.OpenFor/4, 500*time.Millisecond), changed: make(chan struct{})}
	failures := uint32(cfg.Failures)
	b.cb = gobreaker.NewTwoStepCircuitBreaker(gobreaker.Settings{
		Name:        name,
		MaxRequests: 1, // one probe at a time when half-open
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.metrics.breakerState.WithLabelValues(name).Set(float64(to))
			b.metrics.breakerChanges.WithLabelValues(name, stateName(to)).Inc()
			level := slog.LevelInfo
			if to == gobreaker.StateOpen {
				level = slog.LevelWarn
			}
			b.logger.Log(context.Background(), level, "circuit breaker "+stateName(to), "from", stateName(from),
				"writes", map[gobreaker.State]string{gobreaker.StateOpen: "held until a probe succeeds",
					gobreaker.StateHalfOpen: "one probe goes through", gobreaker.StateClosed: "flow again"}[to])
			b.mu.Lock()
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		},
	})
	b.metrics.breakerState.WithLabelValues(name).Set(float64(gobreaker.StateClosed))
	return b
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// State returns closed, half-open or open.
func (b *Breaker) State() string { return stateName(b.cb.State()) }

// errStopped: the wait for the breaker ended because the sync stops.
var errStopped = errors.New("sync stopping")

// acquire waits until the breaker lets one write through and returns the
// function that reports how it went (true: the target answered). It
// returns an error only when ctx ends or stop closes.
func (b *Breaker) acquire(ctx context.Context, stop <-chan struct{}) (func(ok bool), error) {
	for {
		done, err := b.cb.Allow()
		if err == nil {
			return done, nil
		}
		b.mu.Lock()
		changed := b.changed
		b.mu.Unlock()
		t := time.NewTimer(b.poll)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-stop:
			t.Stop()
			return nil, errStopped
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// open reports whether the breaker is open (not closed, not probing).
func (b *Breaker) open() bool { return b.cb.State() == gobreaker.StateOpen }

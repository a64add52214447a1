// Package pipeline carries events from the bus to the targets: one Watermill
// router, one handler per sync, each with retry and dead-letter middleware
// around a batcher that guards versions, maps, writes and records outcomes.
//
// The pipeline knows no vendor: it talks to targets through
// connectors.Writer and never imports a package under connectors/<name>.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// SubscriberFactory returns a subscriber bound to a durable consumer of that
// name that holds at most inflight unacked messages.
type SubscriberFactory func(consumer string, inflight int) (message.Subscriber, error)

// PendingFunc reports how many messages a consumer has not acked yet.
type PendingFunc func(ctx context.Context, consumer string) (int, error)

// HubConfig configures the router.
type HubConfig struct {
	// CloseTimeout bounds how long Close waits for in-flight batches. Default 30s.
	CloseTimeout time.Duration
	// ProgressInterval is how often a progress line is logged; 0 disables.
	ProgressInterval time.Duration
}

// Hub runs the syncs.
type Hub struct {
	cfg       HubConfig
	router    *message.Router
	subscribe SubscriberFactory
	pending   PendingFunc
	logger    *slog.Logger

	mu      sync.Mutex
	syncs   []*Sync
	pollers []*Poller
}

// AddPoller registers a poller; Run runs it until its context ends.
func (h *Hub) AddPoller(p *Poller) {
	h.mu.Lock()
	h.pollers = append(h.pollers, p)
	h.mu.Unlock()
}

// NewHub builds a hub; add syncs, then Run.
func NewHub(cfg HubConfig, subscribe SubscriberFactory, pending PendingFunc, logger *slog.Logger) (*Hub, error) {
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 30 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	router.AddMiddleware(middleware.Recoverer, middleware.CorrelationID)
	return &Hub{cfg: cfg, router: router, subscribe: subscribe, pending: pending, logger: logger}, nil
}

// ConsumerName is the durable consumer of a sync on the bus.
func ConsumerName(sync string) string {
	return "sync_" + strings.NewReplacer(".", "_", " ", "_", "*", "_", ">", "_").Replace(sync)
}

// AddSync registers s as a router handler on its topic.
func (h *Hub) AddSync(s *Sync) error {
	cfg := s.Config()
	sub, err := h.subscribe(ConsumerName(cfg.Name), cfg.Inflight)
	if err != nil {
		return fmt.Errorf("sync %q: subscribing to %s: %w", cfg.Name, cfg.Topic, err)
	}
	handler := h.router.AddConsumerHandler(cfg.Name, cfg.Topic, sub, s.Handle)

	maxRetries := cfg.MaxAttempts - 1
	if cfg.MaxAttempts == 0 {
		maxRetries = math.MaxInt32
	}
	handler.AddMiddleware(
		// Outermost: retryable failures that outlived their attempts become
		// dead letters; anything else unhandled is nacked for redelivery.
		func(next message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				out, err := next(msg)
				switch {
				case err == nil:
					return out, nil
				case !IsRetryable(err) || msg.Context().Err() != nil:
					s.countRequeued() // nacked: the bus delivers it again
					return out, err
				}
				if dlErr := s.DeadLetterExhausted(msg, err); dlErr != nil {
					s.countRequeued()
					return nil, errors.Join(err, dlErr)
				}
				return nil, nil
			}
		},
		middleware.Retry{
			MaxRetries:          maxRetries,
			InitialInterval:     cfg.InitialInterval,
			MaxInterval:         cfg.MaxInterval,
			Multiplier:          cfg.Multiplier,
			RandomizationFactor: 0.3,
			ShouldRetry:         func(p middleware.RetryParams) bool { return IsRetryable(p.Err) },
		}.Middleware,
	)
	h.mu.Lock()
	h.syncs = append(h.syncs, s)
	h.mu.Unlock()
	return nil
}

// Run starts the syncs and the router and blocks until ctx is done or the
// router stops; then it closes the router, waiting for in-flight batches.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	syncs := append([]*Sync(nil), h.syncs...)
	pollers := append([]*Poller(nil), h.pollers...)
	h.mu.Unlock()
	for _, s := range syncs {
		s.Start()
	}
	var polling sync.WaitGroup
	defer polling.Wait()
	pctx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	for _, p := range pollers {
		polling.Add(1)
		go func() {
			defer polling.Done()
			select {
			case <-h.router.Running():
			case <-pctx.Done():
				return
			}
			p.Run(pctx)
		}()
	}
	if h.cfg.ProgressInterval > 0 {
		go h.progress(ctx, syncs)
	}
	err := h.router.Run(ctx)
	for _, s := range syncs {
		s.Stop()
	}
	return err
}

// Sync returns the sync named name.
func (h *Hub) Sync(name string) (*Sync, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.syncs {
		if s.cfg.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Running is closed once every handler is subscribed.
func (h *Hub) Running() chan struct{} { return h.router.Running() }

// Close stops the router: no new deliveries, in-flight ones finish or are nacked.
func (h *Hub) Close() error { return h.router.Close() }

func (h *Hub) progress(ctx context.Context, syncs []*Sync) {
	t := time.NewTicker(h.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range syncs {
			st := s.Stats()
			args := []any{"sync", s.cfg.Name, "received", st.Received, "applied", st.Applied,
				"skipped", st.Skipped, "dead_lettered", st.Dead, "in_flight", st.InFlight, "retries", st.Retries, "target_calls", st.Calls}
			if st.Requeued > 0 {
				args = append(args, "requeued", st.Requeued)
			}
			if b := s.cfg.Breaker; b != nil && b.State() != BreakerClosed {
				args = append(args, "breaker", b.State())
			}
			if h.pending != nil {
				if n, err := h.pending(ctx, ConsumerName(s.cfg.Name)); err == nil {
					args = append(args, "backlog", n)
				}
			}
			h.logger.Info("progress", args...)
		}
	}
}

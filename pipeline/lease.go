package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// Leaser grants leases: store.Store implements it.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// LeaseConfig makes each sync run on one replica at a time.
type LeaseConfig struct {
	// Leaser holds the leases: the state store, which replicas share.
	Leaser Leaser
	// Holder names this replica; stable across restarts, so that a replica
	// that restarts gets its syncs back at once instead of after TTL.
	Holder string
	// TTL is how long a lease lasts unless renewed (every TTL/3): how long
	// a replica that vanished keeps its syncs before another takes them.
	TTL time.Duration
}

// Leased wraps f so that a sync's subscriber consumes only while this
// replica holds the sync's lease ("consumer:<name>" in the Leaser). Two
// replicas sharing a sync's durable consumer would each hold different
// versions of one key at once, and the version guard cannot order two
// writes already in flight; with the lease, one replica runs the sync and
// the others stand by, taking over when it stops renewing.
//
// The lease does not fence: a replica that stalls for longer than TTL
// (a VM pause) may still finish a write after another replica took over.
// The version guard keeps older versions from being decided after newer
// ones even then.
func Leased(f SubscriberFactory, cfg LeaseConfig, logger *slog.Logger) SubscriberFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(consumer string, inflight int) (message.Subscriber, error) {
		return &leasedSubscriber{
			lease:   LeaseName(consumer),
			cfg:     cfg,
			newSub:  func() (message.Subscriber, error) { return f(consumer, inflight) },
			log:     logger.With("lease", LeaseName(consumer), "holder", cfg.Holder),
			closing: make(chan struct{}),
		}, nil
	}
}

// LeaseName is the lease of a durable consumer (see ConsumerName).
func LeaseName(consumer string) string { return "consumer:" + consumer }

// leasedSubscriber subscribes through a new inner subscriber each time it
// gets the lease, and closes it when the lease is lost.
type leasedSubscriber struct {
	lease  string
	cfg    LeaseConfig
	newSub func() (message.Subscriber, error)
	log    *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Subscribe implements message.Subscriber. The channel stays open while
// the lease comes and goes; it closes when ctx ends or on Close.
func (l *leasedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(out)
		defer cancel()
		l.run(ctx, topic, out)
	}()
	return out, nil
}

// Close stops consuming and gives the lease up.
func (l *leasedSubscriber) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	l.wg.Wait()
	return nil
}

func (l *leasedSubscriber) run(ctx context.Context, topic string, out chan<- *message.Message) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.cfg.Leaser.ReleaseLease(rctx, l.lease, l.cfg.Holder); err != nil {
			l.log.Warn("giving the lease up failed; another replica takes it when it expires", "err", err)
		}
	}()
	for ctx.Err() == nil {
		if !l.await(ctx) {
			return
		}
		l.consume(ctx, topic, out)
	}
}

// await returns once this replica holds the lease (true) or ctx ends.
func (l *leasedSubscriber) await(ctx context.Context) bool {
	lastHolder := ""
	for {
		lease, ok, err := l.cfg.Leaser.AcquireLease(ctx, l.lease, l.cfg.Holder, l.cfg.TTL)
		switch {
		case ok:
			l.log.Info("lease acquired: this replica runs the sync", "ttl", l.cfg.TTL)
			return true
		case err != nil && ctx.Err() == nil:
			l.log.Warn("taking the lease failed; retrying", "err", err)
		case err == nil && lease.Holder != lastHolder:
			lastHolder = lease.Holder
			l.log.Info("standing by: another replica runs the sync", "running_on", lease.Holder, "until", lease.ExpiresAt)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(l.cfg.TTL / 3):
		}
	}
}

// consume runs an inner subscriber while the lease holds: it renews the
// lease every TTL/3 and stops when a renewal is refused, or when renewals
// fail for as long as the lease lasts (it may have expired by then).
func (l *leasedSubscriber) consume(ctx context.Context, topic string, out chan<- *message.Message) {
	// (newSub's result is not compared with nil: a typed nil in an
	// interface is not nil.)
	sub, err := l.newSub()
	var in <-chan *message.Message
	if err == nil {
		if in, err = sub.Subscribe(ctx, topic); err != nil {
			_ = sub.Close()
		}
	}
	if err != nil {
		l.log.Error("subscribing failed; retrying", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(l.cfg.TTL / 3):
		}
		return
	}
	defer func() {
		if err := sub.Close(); err != nil {
			l.log.Warn("closing the subscriber", "err", err)
		}
	}()

	lost := make(chan struct{})
	kctx, stopKeeping := context.WithCancel(ctx)
	defer stopKeeping()
	go l.keep(kctx, lost)

	for {
		select {
		case m, ok := <-in:
			if !ok {
				return // the inner subscriber stopped: subscribe again
			}
			select {
			case out <- m:
			case <-lost:
				m.Nack()
				return
			case <-ctx.Done():
				m.Nack()
				return
			}
		case <-lost:
			return
		case <-ctx.Done():
			return
		}
	}
}

// keep renews the lease until ctx ends; it closes lost when the lease is.
func (l *leasedSubscriber) keep(ctx context.Context, lost chan<- struct{}) {
	valid := time.Now().Add(l.cfg.TTL)
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		lease, ok, err := l.cfg.Leaser.AcquireLease(ctx, l.lease, l.cfg.Holder, l.cfg.TTL)
		switch {
		case ok:
			valid = start.Add(l.cfg.TTL)
			continue
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			return
		case err == nil:
			l.log.Warn("lease lost: another replica runs the sync now; standing by", "running_on", lease.Holder)
		case time.Until(valid) > l.cfg.TTL/3:
			l.log.Warn("renewing the lease failed; retrying", "err", err, "valid_for", time.Until(valid).Round(time.Millisecond))
			continue
		default:
			l.log.Error("lease lost: it could not be renewed before it expired; stopping the sync until it is back", "err", err)
		}
		close(lost)
		return
	}
}

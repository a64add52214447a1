package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// History reads the events a topic holds on the bus (bus.Bus implements it).
type History interface {
	// ScanHeaders calls fn with the sequence and metadata of every message
	// stored on topic, in order, up to the last one when the scan starts.
	ScanHeaders(ctx context.Context, topic string, fn func(seq uint64, meta message.Metadata) error) error
	// Message returns the message at a sequence.
	Message(ctx context.Context, seq uint64) (*message.Message, error)
}

// A backfill writes a sync's history to its target again: the newest event
// of every key the bus holds (every change, for a segment sync, as changes
// are deltas), through the sync's own batches, so a large backfill goes
// through the connector's bulk path (Bulk API 2.0) and interleaves safely
// with live events. Unlike a live event, a backfilled one is written even
// when the version guard has its version as applied: that is the point, the
// target lost it (a sandbox refresh, a new field in the mapping). A version
// older than one applied is still skipped, so a backfill never undoes a
// newer live write.
//
// Its outcomes are counted in the backfill's status (with the first 100
// failures and their reasons), not in the outcome log, which keeps each
// event's first outcome; a backfilled event that fails for good is
// dead-lettered only if it had no outcome before.

// BackfillStatus is the progress of a sync's backfill.
type BackfillStatus struct {
	Running    bool      `json:"running"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Error is why the backfill stopped early, if it did.
	Error string `json:"error,omitempty"`
	// Scanned is how many events of the topic the bus holds; Selected how
	// many the backfill writes (the newest per key).
	Scanned  int64 `json:"scanned"`
	Selected int64 `json:"selected"`
	// Applied, Skipped (a newer version is applied, or the mapping filters
	// the record) and Failed (dead-lettered) count the events done.
	Applied int64 `json:"applied"`
	Skipped int64 `json:"skipped"`
	Failed  int64 `json:"failed"`
	// Failures are the first maxBackfillFailures failures.
	Failures []BackfillFailure `json:"failures,omitempty"`
}

// BackfillFailure is one event the backfill could not write.
type BackfillFailure struct {
	EventID string `json:"event_id"`
	Key     string `json:"key"`
	Reason  string `json:"reason"`
}

const maxBackfillFailures = 100

// backfillLeaseCheck is how often a backfill checks that this replica still
// runs the sync; backfillProgressEvery how often it logs its progress.
var (
	backfillLeaseCheck    = time.Second
	backfillProgressEvery = 5 * time.Second
)

// ErrBackfillRunning is returned when a sync's backfill is asked for while
// one runs.
var ErrBackfillRunning = errors.New("a backfill of this sync is running")

// backfillState is a sync's current or last backfill.
type backfillState struct {
	mu     sync.Mutex
	status BackfillStatus
	applied, skipped, failed,
	scanned, selected atomic.Int64
}

// BackfillStatus returns the sync's current or last backfill; false when
// it has had none.
func (s *Sync) BackfillStatus() (BackfillStatus, bool) {
	s.bfMu.Lock()
	b := s.bf
	s.bfMu.Unlock()
	if b == nil {
		return BackfillStatus{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.status
	st.Failures = append([]BackfillFailure(nil), b.status.Failures...)
	st.Scanned, st.Selected = b.scanned.Load(), b.selected.Load()
	st.Applied, st.Skipped, st.Failed = b.applied.Load(), b.skipped.Load(), b.failed.Load()
	return st, true
}

// Backfill writes the sync's history from h to its target again (see
// above) and returns when it is done, ctx ends or the sync stops. The sync
// must be started, and its lease held by this replica (the caller checks):
// only one replica writes a sync at a time.
func (s *Sync) Backfill(ctx context.Context, h History) error {
	b, err := s.beginBackfill()
	if err != nil {
		return err
	}
	return s.runBackfill(ctx, h, b, nil)
}

// StartBackfill is Backfill in the background: it returns once the
// backfill is registered (BackfillStatus shows it running), or
// ErrBackfillRunning. Every second or so it calls holds, which returns an
// error when this replica no longer runs the sync (its lease moved): the
// backfill then stops with that error.
func (s *Sync) StartBackfill(ctx context.Context, h History, holds func(context.Context) error) error {
	b, err := s.beginBackfill()
	if err != nil {
		return err
	}
	go func() { _ = s.runBackfill(ctx, h, b, holds) }()
	return nil
}

func (s *Sync) beginBackfill() (*backfillState, error) {
	b := &backfillState{status: BackfillStatus{Running: true, StartedAt: time.Now().UTC()}}
	s.bfMu.Lock()
	defer s.bfMu.Unlock()
	if s.bf != nil && s.bf.running() {
		return nil, ErrBackfillRunning
	}
	s.bf = b
	return b, nil
}

func (s *Sync) runBackfill(ctx context.Context, h History, b *backfillState, holds func(context.Context) error) error {
	err := s.backfill(ctx, h, b, holds)
	b.mu.Lock()
	b.status.Running = false
	b.status.FinishedAt = time.Now().UTC()
	if err != nil {
		b.status.Error = err.Error()
	}
	b.mu.Unlock()
	s.logger.Info("backfill done", "selected", b.selected.Load(), "applied", b.applied.Load(),
		"skipped", b.skipped.Load(), "failed", b.failed.Load(), "err", err)
	return err
}

func (b *backfillState) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status.Running
}

func (s *Sync) backfill(ctx context.Context, h History, b *backfillState, holds func(context.Context) error) error {
	// 1. Choose: the newest event of each key, or every change of a
	// segment (a delta each); in stream order.
	segments := false
	type pick struct {
		seq     uint64
		version int64
	}
	newest := map[string]pick{}
	var seqs []uint64
	err := h.ScanHeaders(ctx, s.cfg.Topic, func(seq uint64, meta message.Metadata) error {
		b.scanned.Add(1)
		typ := meta.Get(event.MetaType)
		if event.Types[typ] == event.EntitySegment {
			segments = true
			seqs = append(seqs, seq)
			return nil
		}
		key := s.key(meta.Get(event.MetaSubject))
		v, err := strconv.ParseInt(meta.Get(event.MetaVersion), 10, 64)
		if key == "" || err != nil {
			return nil // not an event this hub wrote: the live sync dead-letters it
		}
		if cur, ok := newest[key]; !ok || v >= cur.version {
			newest[key] = pick{seq, v}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the history of %s: %w", s.cfg.Topic, err)
	}
	if !segments {
		seqs = seqs[:0]
		for _, p := range newest {
			seqs = append(seqs, p.seq)
		}
		slices.Sort(seqs)
	}
	b.selected.Store(int64(len(seqs)))
	s.logger.Info("backfill started", "topic", s.cfg.Topic, "scanned", b.scanned.Load(), "selected", len(seqs))
	progressDone := make(chan struct{})
	defer close(progressDone)
	go func() {
		t := time.NewTicker(backfillProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				s.logger.Info("backfill progress", "selected", len(seqs), "applied", b.applied.Load(),
					"skipped", b.skipped.Load(), "failed", b.failed.Load())
			}
		}
	}()

	// 2. Write them through the sync's batches, inflight at a time so that
	// batches fill up.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, s.cfg.Inflight)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	stop := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	checked := time.Now()
	for _, seq := range seqs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if holds != nil && time.Since(checked) >= backfillLeaseCheck {
			checked = time.Now()
			if err := holds(ctx); err != nil {
				<-slots
				stop(fmt.Errorf("stopped: %w", err))
				break
			}
		}
		msg, err := h.Message(ctx, seq)
		if err != nil {
			<-slots
			b.fail(BackfillFailure{Reason: fmt.Sprintf("bus message %d: %v", seq, err)})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := s.backfillOne(ctx, msg, b); err != nil {
				stop(err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// backfillOne writes one event, retrying passing failures like the live
// sync (backoff, at most MaxAttempts) and dead-lettering it after. It
// returns an error only when the backfill must stop (the sync stops).
func (s *Sync) backfillOne(ctx context.Context, msg *message.Message, b *backfillState) error {
	ev, err := event.FromMessage(msg)
	if err != nil {
		b.fail(BackfillFailure{EventID: msg.UUID, Reason: err.Error()})
		return nil
	}
	for attempt := 1; ; attempt++ {
		p := &pending{ctx: ctx, ev: ev, raw: msg.Payload, attempt: attempt, force: true, result: make(chan error, 1)}
		select {
		case s.in <- p:
		case <-s.stop:
			return errors.New("the sync stopped")
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err = <-p.result:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err == nil {
			switch p.outcome {
			case store.Applied:
				b.applied.Add(1)
			case store.Skipped:
				b.skipped.Add(1)
			default:
				reason := p.reason
				if reason == "" {
					reason = "no outcome recorded"
				}
				b.fail(BackfillFailure{EventID: ev.ID, Key: ev.Subject, Reason: reason})
			}
			return nil
		}
		if !IsRetryable(err) || (s.cfg.MaxAttempts > 0 && attempt >= s.cfg.MaxAttempts) {
			reason := fmt.Sprintf("backfill gave up after %d attempts: %v", attempt, err)
			if dlErr := s.deadLetter(ctx, s.itemOf(ev), reason, "RETRIES_EXHAUSTED", attempt, msg.Payload); dlErr != nil {
				reason += "; " + dlErr.Error()
			}
			b.fail(BackfillFailure{EventID: ev.ID, Key: ev.Subject, Reason: reason})
			return nil
		}
		wait := time.Duration(float64(s.cfg.InitialInterval) * math.Pow(s.cfg.Multiplier, float64(attempt-1)))
		select {
		case <-time.After(min(wait, s.cfg.MaxInterval)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *backfillState) fail(f BackfillFailure) {
	b.failed.Add(1)
	b.mu.Lock()
	if len(b.status.Failures) < maxBackfillFailures {
		b.status.Failures = append(b.status.Failures, f)
	}
	b.mu.Unlock()
}

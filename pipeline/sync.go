package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/tidwall/gjson"
	"golang.org/x/time/rate"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// ErrFiltered is returned by a Mapper when the mapping's condition excludes
// the event: it is recorded as skipped ("filtered"), not written.
var ErrFiltered = errors.New("filtered by the mapping's condition")

// ErrRetryLater is wrapped by a Mapper's error when the event cannot be
// mapped yet but may be later (a lookup whose related record is not written
// yet, a cross-reference that cannot be read): the event is retried.
var ErrRetryLater = errors.New("cannot be mapped yet")

// Mapper turns an event into the target record's fields. ErrFiltered skips
// the event, an error wrapping ErrRetryLater retries it, and any other
// error is permanent: the event is dead-lettered with the error as reason.
type Mapper func(ctx context.Context, ev *event.Event) (map[string]any, error)

// SyncConfig is one sync: from a topic, through a mapping, to a target object.
type SyncConfig struct {
	// Name identifies the sync: its durable consumer, its guard rows, its metrics.
	Name string
	// Topic is "<source>.<entity>".
	Topic string
	// System is the target connector's name, for the cross-reference.
	System string
	// Object is the target object.
	Object string
	// Mode is the write operation for upserted events.
	Mode connectors.Operation
	// Removals is how a removal (a deleted entity, a member leaving a
	// segment) is written: RemovalsDelete (the default) deletes the target
	// record; RemovalsWrite maps it and writes it with Mode like any change,
	// for targets that keep a flag rather than delete (Marketing Cloud data
	// extensions). The mapping sees a deleted entity's event as it came (its
	// type ends in .deleted) and a segment leaver with change "removed".
	Removals string
	// ExternalIDField is the target field holding the entity id (upsert, delete).
	ExternalIDField string
	// BatchSize is the most records per write call. Default 200.
	BatchSize int
	// BatchWindow is how long a batch waits to fill up. Default 100ms.
	BatchWindow time.Duration
	// Inflight is how many events the sync holds unacked at once. Default 2 × BatchSize.
	Inflight int
	// MaxAttempts is how many times a retryable failure is tried before the
	// event is dead-lettered; 0 means retry until it succeeds. Default 10.
	MaxAttempts int
	// InitialInterval, MaxInterval and Multiplier shape the retry backoff
	// (with ±30 % jitter). Defaults 500ms, 1m, 2.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Multiplier      float64
	// RateLimit caps write calls per second to the target; 0 is unlimited.
	RateLimit float64
	// Keys is how the target compares record keys (the connector's
	// Description.Keys): the version guard, the batch's de-duplication and
	// the cross-reference fold keys the same way, so two spellings of one
	// target record are one key. Default KeysExact.
	Keys connectors.KeyMatch
	// Breaker is the target connector's circuit breaker, shared with the
	// other syncs writing to it. Nil: none (failures are only retried).
	Breaker *Breaker
}

// The ways a sync writes removals (SyncConfig.Removals).
const (
	RemovalsDelete = "delete"
	RemovalsWrite  = "write"
)

func (c *SyncConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.Removals == "" {
		c.Removals = RemovalsDelete
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = 100 * time.Millisecond
	}
	if c.Inflight <= 0 {
		c.Inflight = 2 * c.BatchSize
	}
	if c.MaxAttempts < 0 {
		c.MaxAttempts = 0
	}
	if c.InitialInterval <= 0 {
		c.InitialInterval = 500 * time.Millisecond
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = time.Minute
	}
	if c.Multiplier < 1 {
		c.Multiplier = 2
	}
}

// Validate reports every problem of c at once.
func (c *SyncConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("sync name is empty"))
	}
	if c.Topic == "" {
		errs = append(errs, fmt.Errorf("sync %q: topic is empty", c.Name))
	}
	if c.Object == "" {
		errs = append(errs, fmt.Errorf("sync %q: object is empty", c.Name))
	}
	if !c.Mode.Valid() {
		errs = append(errs, fmt.Errorf("sync %q: mode %q is not one of upsert, insert, update, delete", c.Name, c.Mode))
	}
	if c.Mode == connectors.Upsert && c.ExternalIDField == "" {
		errs = append(errs, fmt.Errorf("sync %q: external id field is required when mode is upsert", c.Name))
	}
	if c.Removals != RemovalsDelete && c.Removals != RemovalsWrite {
		errs = append(errs, fmt.Errorf("sync %q: removals %q is not one of delete, write", c.Name, c.Removals))
	}
	return errors.Join(errs...)
}

// Sync runs one configured sync: it batches the events its router handler
// receives, guards versions, maps, writes and records every outcome before
// the handler acks.
type Sync struct {
	bfMu sync.Mutex
	bf   *backfillState // the current or last backfill

	cfg     SyncConfig
	mapper  Mapper
	writer  connectors.Writer
	store   store.Store
	logger  *slog.Logger
	metrics *Metrics
	limiter *rate.Limiter

	in       chan *pending
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	mu         sync.Mutex
	pauseUntil time.Time

	nReceived, nApplied, nSkipped, nDead, nRequeued, nRetries, nCalls atomic.Int64
}

// Stats are a sync's counters since the process started, per delivery: a
// delivery is one event handed over by the bus (a redelivery after a crash
// or a nack is another delivery; a retry of the same delivery is not). Every
// delivery received ends in exactly one of applied, skipped, dead or
// requeued (handed back to the bus without an outcome, as when the sync
// stops), or is still in flight:
//
//	Received = Applied + Skipped + Dead + Requeued + InFlight
//
// A segment change counts once, however many memberships it carries. The
// store's Counts are per event instead (a redelivered event counts once).
type Stats struct {
	Received, Applied, Skipped, Dead, Requeued, InFlight int64
	// Retries are the retryable answers given (each retry of a delivery
	// counts); Calls the write calls made to the target.
	Retries, Calls int64
}

// Stats returns the sync's counters since the process started.
func (s *Sync) Stats() Stats {
	// Outcomes first, then received: a delivery counted as ended is always
	// counted as received, so InFlight is never negative.
	st := Stats{Applied: s.nApplied.Load(), Skipped: s.nSkipped.Load(), Dead: s.nDead.Load(),
		Requeued: s.nRequeued.Load(), Retries: s.nRetries.Load(), Calls: s.nCalls.Load()}
	st.Received = s.nReceived.Load()
	st.InFlight = st.Received - st.Applied - st.Skipped - st.Dead - st.Requeued
	return st
}

// countReceived counts a new delivery.
func (s *Sync) countReceived() {
	s.metrics.received.WithLabelValues(s.cfg.Name).Inc()
	s.nReceived.Add(1)
}

// countRequeued counts a delivery handed back to the bus without an outcome.
func (s *Sync) countRequeued() {
	s.metrics.requeued.WithLabelValues(s.cfg.Name).Inc()
	s.nRequeued.Add(1)
}

// countOutcome counts how one delivery ended.
func (s *Sync) countOutcome(o store.Outcome) {
	s.metrics.outcomes.WithLabelValues(s.cfg.Name, string(o)).Inc()
	switch o {
	case store.Applied:
		s.nApplied.Add(1)
	case store.Skipped:
		s.nSkipped.Add(1)
	case store.Dead:
		s.nDead.Add(1)
	}
}

// pending is one event waiting in the batcher for its outcome.
type pending struct {
	ctx context.Context
	ev  *event.Event
	raw []byte
	// attempt is 1 for the first try of this delivery.
	attempt int
	// force writes the event even when its version is already applied (a
	// backfill rewrites what the target lost); stale versions stay skipped.
	// A forced event is a backfill's, not a delivery: the sync's counters
	// leave it out (the backfill counts its own).
	force  bool
	result chan error
	// outcome is the stored outcome, set before result is sent.
	outcome store.Outcome
	reason  string
}

// NewSync builds a sync; Start must be called before its handler is used.
func NewSync(cfg SyncConfig, mapper Mapper, writer connectors.Writer, st store.Store, metrics *Metrics, logger *slog.Logger) (*Sync, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mapper == nil || writer == nil || st == nil {
		return nil, fmt.Errorf("sync %q: mapper, writer and store are required", cfg.Name)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	s := &Sync{
		cfg:     cfg,
		mapper:  mapper,
		writer:  writer,
		store:   st,
		logger:  logger.With("sync", cfg.Name),
		metrics: metrics,
		in:      make(chan *pending),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.RateLimit > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), 1)
	}
	return s, nil
}

// Config returns the sync's config with defaults applied.
func (s *Sync) Config() SyncConfig { return s.cfg }

// Start runs the batcher until Stop.
func (s *Sync) Start() { go s.loop() }

// Stop ends the batcher after the batch in progress; events still waiting
// get an error (and are nacked by their handler).
func (s *Sync) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// errRetry marks a retryable outcome for the retry middleware.
type errRetry struct{ reason string }

func (e *errRetry) Error() string { return "retryable: " + e.reason }

// IsRetryable reports whether err from a sync handler is worth retrying.
func IsRetryable(err error) bool {
	var r *errRetry
	return errors.As(err, &r)
}

// Handle is the router handler: it waits for the event's batch outcome.
// It returns nil once the outcome (applied, skipped, dead) is stored, a
// retryable error to be retried, or another error to nack.
func (s *Sync) Handle(msg *message.Message) error {
	attempt := nextAttempt(msg)
	if attempt == 1 {
		s.countReceived()
	}
	ev, err := event.FromMessage(msg)
	if err != nil {
		// Undecodable: nothing to retry. Record it as dead with the raw payload.
		if err := s.deadLetter(msg.Context(), store.Item{EventID: msg.UUID}, fmt.Sprintf("undecodable message: %v", err), "DECODE", 1, msg.Payload); err != nil {
			return err
		}
		s.countOutcome(store.Dead)
		return nil
	}
	p := &pending{ctx: msg.Context(), ev: ev, raw: msg.Payload, attempt: attempt, result: make(chan error, 1)}
	select {
	case s.in <- p:
	case <-s.stop:
		return errors.New("sync stopping")
	case <-msg.Context().Done():
		return msg.Context().Err()
	}
	select {
	case err := <-p.result:
		return err
	case <-msg.Context().Done():
		return msg.Context().Err()
	}
}

// DeadLetterExhausted records an event whose retries ran out.
func (s *Sync) DeadLetterExhausted(msg *message.Message, cause error) error {
	ev, err := event.FromMessage(msg)
	item := store.Item{EventID: msg.UUID}
	if err == nil {
		item = s.itemOf(ev)
	}
	attempts := attemptsSoFar(msg)
	if err := s.deadLetter(msg.Context(), item, fmt.Sprintf("gave up after %d attempts: %v", attempts, cause), "RETRIES_EXHAUSTED", attempts, msg.Payload); err != nil {
		return err
	}
	s.countOutcome(store.Dead)
	return nil
}

func (s *Sync) deadLetter(ctx context.Context, item store.Item, reason, code string, attempts int, raw []byte) error {
	err := s.store.Finish(ctx, s.cfg.Name, []store.Result{{
		Item: item, Outcome: store.Dead, System: s.cfg.System, Object: s.cfg.Object,
		Reason: reason, Code: code, Attempts: attempts, Event: raw,
	}})
	if err != nil {
		return fmt.Errorf("recording dead letter for event %s: %w", item.EventID, err)
	}
	s.logger.Warn("event dead-lettered", "event", item.EventID, "key", item.Key, "version", item.Version, "code", code, "reason", reason)
	return nil
}

func (s *Sync) loop() {
	defer close(s.done)
	var batch []*pending
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.stop:
			for _, p := range batch {
				p.result <- errors.New("sync stopping")
			}
			return
		case p := <-s.in:
			batch = append(batch, p)
			if len(batch) == 1 {
				timer.Reset(s.cfg.BatchWindow)
			}
			if len(batch) < s.cfg.BatchSize {
				continue
			}
			timer.Stop()
		case <-timer.C:
		}
		if len(batch) > 0 {
			s.process(batch)
			batch = nil
		}
	}
}

// process handles one batch end to end and answers every waiter.
func (s *Sync) process(batch []*pending) {
	ctx := context.Background()
	start := time.Now()
	s.metrics.batchSize.WithLabelValues(s.cfg.Name).Observe(float64(len(batch)))

	answers := make(map[*pending]error, len(batch))
	var finals []store.Result
	final := func(p *pending, r store.Result) {
		finals = append(finals, r)
		answers[p] = nil
		p.outcome, p.reason = r.Outcome, r.Reason
	}
	retry := func(p *pending, reason string) { answers[p] = &errRetry{reason: reason} }

	// 1. Within the batch, only the newest version of a key goes on; older
	// ones are stale, same-version copies are duplicates. A segment change
	// is a delta, guarded per membership (step 2): each goes on.
	batchKey := func(p *pending) string {
		if p.ev.Entity() == event.EntitySegment {
			return "\x00event:" + p.ev.ID
		}
		return s.key(p.ev.Subject)
	}
	newest := map[string]*pending{}
	for _, p := range batch {
		cur, ok := newest[batchKey(p)]
		// Of two deliveries of one event, a backfill's goes on: it is
		// written even if the version is applied.
		if !ok || p.ev.Version > cur.ev.Version || (p.ev.ID == cur.ev.ID && p.force && !cur.force) {
			newest[batchKey(p)] = p
		}
	}
	var candidates []*pending
	copies := map[*pending]*pending{} // a second delivery of an event → the delivery that goes on
	for _, p := range batch {
		n := newest[batchKey(p)]
		switch {
		case n == p:
			candidates = append(candidates, p)
		case p.ev.ID == n.ev.ID:
			// The same event delivered twice: one outcome, shared.
			copies[p] = n
		case p.ev.Version < n.ev.Version:
			final(p, s.skipped(p, "stale"))
		default:
			final(p, s.skipped(p, "duplicate"))
		}
	}

	// 2. The version guard: per entity key, or per membership
	// (SEGMENT:MEMBER) for a segment change, so that a change delivered
	// late still applies to the members no newer change has touched.
	items := make([]store.Item, 0, len(candidates))
	var forced []bool // by item: a backfill's
	members := make(map[*pending]*memberships)
	for _, p := range candidates {
		if p.ev.Entity() != event.EntitySegment {
			items, forced = append(items, s.itemOf(p.ev)), append(forced, p.force)
			continue
		}
		members[p] = s.parseMemberships(p.ev)
		for _, m := range members[p].changes {
			items = append(items, store.Item{EventID: p.ev.ID, Key: m.key, Version: p.ev.Version})
			forced = append(forced, p.force)
		}
	}
	decisions, err := s.guard(ctx, items, forced)
	if err != nil {
		s.logger.Error("version guard failed; the batch will be retried", "err", err)
		for _, p := range batch {
			retry(p, "state store: "+err.Error())
		}
		s.answer(batch, answers, copies)
		return
	}

	// 3. Map, and sort into writes. Most events are one record; a segment
	// membership change is one record per member added or removed.
	var upserts, deletes []owned
	var written []*pending
	tallies := map[*pending]*tally{}
	for _, p := range candidates {
		decision := store.Apply
		if ms := members[p]; ms != nil {
			decision = ms.decide(decisions[:len(ms.changes)])
			decisions = decisions[len(ms.changes):]
		} else {
			decision, decisions = decisions[0], decisions[1:]
		}
		switch decision {
		case store.SkipStale:
			final(p, s.skipped(p, "stale"))
			continue
		case store.SkipDuplicate:
			final(p, s.skipped(p, "duplicate"))
			continue
		}
		ups, dels, err := s.records(ctx, p, members[p])
		switch {
		case errors.Is(err, ErrFiltered):
			final(p, s.skipped(p, "filtered"))
			continue
		case errors.Is(err, errNoTarget):
			final(p, s.dead(p, err.Error(), "NO_TARGET_RECORD"))
			continue
		case errors.Is(err, errKeyMismatch):
			final(p, s.dead(p, err.Error(), "KEY_MISMATCH"))
			continue
		case isRetry(err):
			retry(p, err.Error())
			continue
		case err != nil:
			final(p, s.dead(p, "mapping: "+err.Error(), "MAPPING_ERROR"))
			continue
		}
		if len(ups)+len(dels) == 0 {
			final(p, s.skipped(p, "no records"))
			continue
		}
		tallies[p] = &tally{records: len(ups) + len(dels)}
		written = append(written, p)
		upserts = append(upserts, ups...)
		deletes = append(deletes, dels...)
	}

	// 4. Write, then settle each event from its records' results: retry if
	// any record must be retried, dead if any was refused, else applied.
	s.write(ctx, s.cfg.Mode, upserts, tallies)
	s.write(ctx, connectors.Delete, deletes, tallies)
	for _, p := range written {
		t := tallies[p]
		switch {
		case t.retry != "":
			retry(p, t.retry)
		case t.dead != "":
			final(p, s.dead(p, t.dead, t.deadCode))
		default:
			res := store.Result{Item: s.itemOf(p.ev), Outcome: store.Applied, System: s.cfg.System, Object: s.cfg.Object}
			if t.records == 1 && !p.ev.Deleted() {
				res.TargetID = t.targetID // the cross-reference of a one-record event
			}
			res.Deleted = p.ev.Deleted()
			final(p, res)
			// The guard rows of the memberships written. (A dead-lettered
			// change leaves them pending: its replay writes them again.)
			if ms := members[p]; ms != nil {
				for _, m := range ms.changes {
					if m.apply {
						finals = append(finals, store.Result{Item: store.Item{EventID: p.ev.ID, Key: m.key, Version: p.ev.Version}, Outcome: store.Applied})
					}
				}
			}
		}
	}

	// 5. Store every final outcome, then answer: nothing is acked before
	// its outcome is stored.
	if len(finals) > 0 {
		if err := s.store.Finish(ctx, s.cfg.Name, finals); err != nil {
			s.logger.Error("recording outcomes failed; the batch will be retried", "err", err)
			for _, p := range batch {
				retry(p, "state store: "+err.Error())
			}
			s.answer(batch, answers, copies)
			return
		}
		s.logDead(finals)
	}
	s.metrics.batchSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(start).Seconds())
	s.answer(batch, answers, copies)
}

// owned is one record to write and the event it comes from.
type owned struct {
	p   *pending
	rec connectors.Record
}

// tally collects the results of an event's records.
type tally struct {
	records  int
	targetID string
	retry    string
	dead     string
	deadCode string
}

// errNoTarget: mode update, and the target record is not known.
var errNoTarget = errors.New("no target record")

// errKeyMismatch: the mapping writes an external id that is not the
// event's key, so the guard would order one record and the write change
// another.
var errKeyMismatch = errors.New("the mapped external id is not the record key")

// retryable wraps a passing failure met while building records.
type retryable struct{ error }

func isRetry(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

// records builds the records of one event: upserts (or inserts, updates)
// and deletes. ms are a segment change's memberships.
func (s *Sync) records(ctx context.Context, p *pending, ms *memberships) (ups, dels []owned, err error) {
	if ms != nil {
		return s.membershipRecords(ctx, p, ms)
	}
	if p.ev.Deleted() && s.cfg.Removals == RemovalsDelete {
		targetID, _, err := s.store.LookupXref(ctx, s.cfg.System, s.cfg.Object, s.key(p.ev.Subject))
		if err != nil {
			return nil, nil, retryable{fmt.Errorf("cross-reference lookup: %w", err)}
		}
		return nil, []owned{{p, connectors.Record{Key: p.ev.Subject, TargetID: targetID}}}, nil
	}
	fields, err := s.mapper(p.ctx, p.ev)
	if errors.Is(err, ErrRetryLater) {
		return nil, nil, retryable{err}
	}
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkKey(fields, p.ev.Subject); err != nil {
		return nil, nil, err
	}
	rec := connectors.Record{Key: p.ev.Subject, Fields: fields}
	// A backfill does not trust the cross-reference for an upsert: the
	// target may have lost the record it names (a sandbox refresh).
	if s.cfg.Mode == connectors.Update || (s.cfg.Mode == connectors.Upsert && !p.force) {
		// The target id tells the connector the record exists (an upsert
		// then leaves out fields that can only be set on create).
		targetID, ok, err := s.store.LookupXref(ctx, s.cfg.System, s.cfg.Object, s.key(p.ev.Subject))
		if err != nil {
			return nil, nil, retryable{fmt.Errorf("cross-reference lookup: %w", err)}
		}
		if !ok && s.cfg.Mode == connectors.Update {
			return nil, nil, fmt.Errorf("%w: mode is update but %s has no %s record for key %q yet", errNoTarget, s.cfg.System, s.cfg.Object, p.ev.Subject)
		}
		rec.TargetID = targetID
	}
	return []owned{{p, rec}}, nil, nil
}

// memberships are the members a segment change adds and removes, and what
// the version guard said of each.
type memberships struct {
	segment string
	changes []membershipChange
}

type membershipChange struct {
	member, change string // change: "added" or "removed"
	key            string // SEGMENT:MEMBER
	apply          bool   // the guard said Apply
}

// parseMemberships reads a segment change: {"segment_id", "added": [...],
// "removed": [...]} (the segment defaults to the event's subject). A member
// both added and removed counts once, as added; so does a member listed
// twice, or in two spellings of one key.
func (s *Sync) parseMemberships(ev *event.Event) *memberships {
	data := gjson.ParseBytes(ev.Data)
	ms := &memberships{segment: data.Get("segment_id").String()}
	if ms.segment == "" {
		ms.segment = ev.Subject
	}
	seen := map[string]bool{}
	for _, change := range []string{"added", "removed"} {
		for _, m := range data.Get(change).Array() {
			member := m.String()
			key := s.key(ms.segment + ":" + member)
			if member == "" || seen[key] {
				continue
			}
			seen[key] = true
			ms.changes = append(ms.changes, membershipChange{member: member, change: change, key: key})
		}
	}
	return ms
}

// decide takes the guard's decisions for ms.changes, in order: the event
// applies if any membership does, else it is a duplicate if every
// membership is, else stale. An event without members applies (and is
// then skipped for having no records).
func (ms *memberships) decide(ds []store.Decision) store.Decision {
	applies, dups := false, 0
	for i, d := range ds {
		ms.changes[i].apply = d == store.Apply
		applies = applies || d == store.Apply
		if d == store.SkipDuplicate {
			dups++
		}
	}
	switch {
	case applies || len(ds) == 0:
		return store.Apply
	case dups == len(ds):
		return store.SkipDuplicate
	}
	return store.SkipStale
}

// guard runs the version guard over items. Several items of one key (the
// memberships of segment changes in one batch) are settled here: only the
// newest version goes to the store, older ones are stale and a second item
// of the same version a duplicate. A forced item (a backfill's) applies
// where the guard says duplicate: it is written again; stale stays stale.
func (s *Sync) guard(ctx context.Context, items []store.Item, forced []bool) ([]store.Decision, error) {
	out := make([]store.Decision, len(items))
	newest := make(map[string]int, len(items))
	for i, it := range items {
		if j, ok := newest[it.Key]; !ok || it.Version > items[j].Version {
			newest[it.Key] = i
		}
	}
	var ask []store.Item
	var at []int
	for i, it := range items {
		switch j := newest[it.Key]; {
		case j == i:
			ask = append(ask, it)
			at = append(at, i)
		case it.Version < items[j].Version:
			out[i] = store.SkipStale
		default:
			out[i] = store.SkipDuplicate
		}
	}
	ds, err := s.store.Begin(ctx, s.cfg.Name, ask)
	if err != nil {
		return nil, err
	}
	for k, d := range ds {
		if d == store.SkipDuplicate && forced[at[k]] {
			d = store.Apply
		}
		out[at[k]] = d
	}
	return out, nil
}

// membershipRecords builds one record per membership the guard let through:
// "SEGMENT:MEMBER" keys, added members written with the sync's mode,
// removed ones deleted (or written, with removals: write). The mapping sees
// each membership as {"segment_id", "member_id", "version", "change":
// "added"|"removed"}.
func (s *Sync) membershipRecords(ctx context.Context, p *pending, ms *memberships) (ups, dels []owned, err error) {
	for _, m := range ms.changes {
		if !m.apply {
			continue
		}
		recKey := ms.segment + ":" + m.member // as the event spells it; m.key is folded
		if m.change == "removed" && s.cfg.Removals == RemovalsDelete {
			dels = append(dels, owned{p, connectors.Record{Key: recKey}})
			continue
		}
		one := *p.ev
		one.Subject = recKey
		one.Data, _ = json.Marshal(map[string]any{"segment_id": ms.segment, "member_id": m.member,
			"version": p.ev.Version, "change": m.change})
		fields, err := s.mapper(ctx, &one)
		if errors.Is(err, ErrFiltered) {
			continue
		}
		if errors.Is(err, ErrRetryLater) {
			return nil, nil, retryable{fmt.Errorf("member %s: %w", m.member, err)}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", m.member, err)
		}
		if err := s.checkKey(fields, recKey); err != nil {
			return nil, nil, err
		}
		ups = append(ups, owned{p, connectors.Record{Key: recKey, Fields: fields}})
	}
	return ups, dels, nil
}

// write sends recs in chunks of at most BatchSize and tallies the results.
func (s *Sync) write(ctx context.Context, op connectors.Operation, recs []owned, tallies map[*pending]*tally) {
	for start := 0; start < len(recs); start += s.cfg.BatchSize {
		end := min(start+s.cfg.BatchSize, len(recs))
		chunk := make([]connectors.Record, 0, end-start)
		for _, o := range recs[start:end] {
			chunk = append(chunk, o.rec)
		}
		req := connectors.WriteRequest{Object: s.cfg.Object, Operation: op, ExternalIDField: s.cfg.ExternalIDField, Records: chunk}
		resp, err := s.send(ctx, req)
		if err != nil {
			kind := connectors.KindOf(err)
			for _, o := range recs[start:end] {
				t := tallies[o.p]
				if kind == connectors.Permanent {
					t.dead, t.deadCode = err.Error(), "REQUEST_REJECTED"
				} else {
					t.retry = err.Error()
				}
			}
			s.logger.Warn("write failed", "records", len(chunk), "kind", kind, "err", err)
			continue
		}
		for i, r := range resp.Results {
			t := tallies[recs[start+i].p]
			switch r.Status {
			case connectors.StatusApplied:
				t.targetID = r.TargetID
			case connectors.StatusPermanent:
				if t.dead == "" {
					t.dead, t.deadCode = reasonOf(r), r.Code
				}
			default:
				s.pauseFor(r.RetryAfter)
				t.retry = reasonOf(r)
			}
		}
	}
}

// send makes one write call and holds it while the target cannot take it:
// a call refused as a whole with a Retry-After (throttling), or while the
// connector's circuit breaker is open (an outage), is sent again once the
// target may be called, without spending the records' attempts. Other
// failures are returned for the records to be retried or dead-lettered. A
// stopping sync stops holding and returns the last failure.
func (s *Sync) send(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	for held := 0; ; held++ {
		if held > 0 {
			select {
			case <-s.stop:
				return connectors.WriteResponse{}, connectors.E("pipeline.write", connectors.Transient, errors.New("held write abandoned: the sync stops"))
			default:
			}
		}
		s.waitForTarget(ctx)
		var done func(ok bool)
		if b := s.cfg.Breaker; b != nil {
			var err error
			if done, err = b.acquire(ctx, s.stop); err != nil {
				return connectors.WriteResponse{}, connectors.E("pipeline.write", connectors.Transient,
					fmt.Errorf("held while connector %s's circuit breaker is open: %w", s.cfg.System, err))
			}
		}
		t0 := time.Now()
		resp, err := s.writer.Write(ctx, req)
		s.metrics.writeSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(t0).Seconds())
		s.metrics.calls.WithLabelValues(s.cfg.Name).Add(float64(max(resp.Calls, 1)))
		s.nCalls.Add(int64(max(resp.Calls, 1)))
		if err == nil && len(resp.Results) != len(req.Records) {
			err = connectors.E("pipeline.write", connectors.Transient,
				fmt.Errorf("connector answered %d results for %d records", len(resp.Results), len(req.Records)))
		}
		wait := connectors.RetryAfterOf(err)
		// An outage: the call failed as a whole, for a reason that passes.
		// A throttled call (Retry-After) shows the target is up.
		outage := err != nil && connectors.KindOf(err) != connectors.Permanent && wait <= 0
		if done != nil {
			done(!outage)
		}
		if err == nil || connectors.KindOf(err) == connectors.Permanent {
			return resp, err
		}
		s.pauseFor(wait)
		if wait <= 0 && (s.cfg.Breaker == nil || !s.cfg.Breaker.open()) {
			return resp, err
		}
		s.metrics.held.WithLabelValues(s.cfg.Name).Inc()
		s.logger.Debug("write held until the target can take it", "records", len(req.Records), "retry_after", wait, "err", err)
	}
}

// pauseFor holds further writes to the target for d (a Retry-After).
func (s *Sync) pauseFor(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	if until := time.Now().Add(d); until.After(s.pauseUntil) {
		s.pauseUntil = until
	}
	s.mu.Unlock()
}

func (s *Sync) waitForTarget(ctx context.Context) {
	s.mu.Lock()
	wait := time.Until(s.pauseUntil)
	s.mu.Unlock()
	if wait > 0 {
		s.logger.Debug("target asked to wait", "wait", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-s.stop:
		}
	}
	if s.limiter != nil {
		_ = s.limiter.Wait(ctx)
	}
}

// answer gives each event of the batch its outcome; a second delivery of an
// event gets the outcome of the delivery that went on.
func (s *Sync) answer(batch []*pending, answers map[*pending]error, copies map[*pending]*pending) {
	retries := 0
	for _, p := range batch {
		err := answers[p]
		if n, ok := copies[p]; ok {
			err = answers[n]
			p.outcome, p.reason = n.outcome, n.reason
		}
		if err != nil {
			retries++
		} else if !p.force {
			s.countOutcome(p.outcome)
		}
		p.result <- err
	}
	if retries > 0 {
		s.metrics.retries.WithLabelValues(s.cfg.Name).Add(float64(retries))
		s.nRetries.Add(int64(retries))
	}
}

func (s *Sync) skipped(p *pending, reason string) store.Result {
	return store.Result{Item: s.itemOf(p.ev), Outcome: store.Skipped, Reason: reason}
}

// reasonOf is a result's message, prefixed by its code unless it already is.
func reasonOf(r connectors.Result) string {
	if r.Code == "" || strings.HasPrefix(r.Message, r.Code) {
		return r.Message
	}
	return r.Code + ": " + r.Message
}

func (s *Sync) dead(p *pending, reason, code string) store.Result {
	return store.Result{Item: s.itemOf(p.ev), Outcome: store.Dead, System: s.cfg.System, Object: s.cfg.Object,
		Reason: reason, Code: code, Attempts: p.attempt, Event: p.raw}
}

// logDead logs a batch's dead letters, one line per error code with an example.
func (s *Sync) logDead(results []store.Result) {
	type group struct {
		n       int
		example store.Result
	}
	groups := map[string]*group{}
	var codes []string
	for _, r := range results {
		if r.Outcome != store.Dead {
			continue
		}
		g := groups[r.Code]
		if g == nil {
			g = &group{example: r}
			groups[r.Code] = g
			codes = append(codes, r.Code)
		}
		g.n++
	}
	for _, code := range codes {
		g := groups[code]
		s.logger.Warn("events dead-lettered", "count", g.n, "code", code, "example_event", g.example.EventID,
			"example_key", g.example.Key, "reason", g.example.Reason)
	}
}

// key is a record key as the target compares it (SyncConfig.Keys): the
// form the guard, the batch and the cross-reference use.
func (s *Sync) key(k string) string { return s.cfg.Keys.Fold(k) }

// itemOf names an event for the guard, by its key as the target compares it.
func (s *Sync) itemOf(ev *event.Event) store.Item {
	return store.Item{EventID: ev.ID, Key: s.key(ev.Subject), Version: ev.Version}
}

// checkKey refuses a record whose mapped external id is not its key: the
// guard orders versions of the key, the target matches the external id,
// so the two must name one record.
func (s *Sync) checkKey(fields map[string]any, key string) error {
	if s.cfg.ExternalIDField == "" {
		return nil
	}
	v, ok := fields[s.cfg.ExternalIDField]
	if !ok || v == nil {
		return nil // the target's required-field check names it
	}
	var got string
	switch v := v.(type) {
	case string:
		got = v
	default:
		got = fmt.Sprint(v)
	}
	if s.key(got) != s.key(key) {
		return fmt.Errorf("%w: the mapping writes %s = %q, but the event's key (its subject) is %q; map the external id from the key (data.id equals subject), so that the version guard and the target name one record",
			errKeyMismatch, s.cfg.ExternalIDField, got, key)
	}
	return nil
}

// attempts are counted on the message: the retry middleware calls the
// handler again with the same message.
const metaAttempts = "lh_attempts"

func nextAttempt(msg *message.Message) int {
	n := attemptsSoFar(msg) + 1
	msg.Metadata.Set(metaAttempts, fmt.Sprint(n))
	return n
}

func attemptsSoFar(msg *message.Message) int {
	var n int
	_, _ = fmt.Sscan(msg.Metadata.Get(metaAttempts), &n)
	return n
}

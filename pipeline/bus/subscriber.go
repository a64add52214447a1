package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait is how long one pull request waits for messages before the
// subscriber asks again. It bounds nothing the user sees: a message is handed
// out as soon as it arrives; closing cancels the pull at once.
const fetchWait = 5 * time.Second

// Subscriber reads a topic through one durable JetStream consumer. It
// implements message.Subscriber and is safe for concurrent use.
type Subscriber struct {
	b        *Bus
	name     string
	inflight int

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	runs    sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

func newSubscriber(b *Bus, name string, inflight int) *Subscriber {
	return &Subscriber{b: b, name: name, inflight: inflight, closing: make(chan struct{})}
}

// Subscribe creates the durable consumer if it does not exist (reading topic
// from the start of the stream, explicit acks, unlimited redeliveries) and
// returns a channel of its messages. Up to inflight messages are out at once:
// the next one is pulled from the server only when one of them is acked or
// nacked, so no message waits in a client buffer while its AckWait runs.
//
// Ack stores the ack on the server (confirmed) before the slot is reused. Nack
// asks the server to redeliver after NakDelay, doubled for every earlier
// delivery, at most MaxNakDelay. Delivered messages carry metadata
// MetaDelivered and MetaSequence; their context is cancelled when they are
// acked, nacked or abandoned at close.
//
// topic may use the wildcards '*' (one token) and '>' (the rest). A consumer
// reads one topic for its whole life: subscribing it to another topic is an
// error. When ctx is cancelled or the Subscriber is closed, the channel is
// closed after the handlers have acked or nacked what they hold, or after
// CloseTimeout.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := checkSubject(topic, true); err != nil {
		return nil, fmt.Errorf("bus: consumer %q: topic %q: %w", s.name, topic, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.runs.Add(1)
	s.mu.Unlock()

	subject := s.b.Subject(topic)
	cons, err := s.ensureConsumer(ctx, subject)
	if err != nil {
		s.runs.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	go s.run(ctx, cons, subject, out)
	return out, nil
}

func (s *Subscriber) consumerConfig(subject string) jetstream.ConsumerConfig {
	c := s.b.cfg
	return jetstream.ConsumerConfig{
		Durable:       s.name,
		Description:   "loyaltyhub subscriber for " + subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		FilterSubject: subject,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		// A subscriber may hold inflight messages unacked: the consumer
		// must let it.
		MaxAckPending: max(c.MaxAckPending, s.inflight),
	}
}

// ensureConsumer creates the durable consumer or updates its settings; it
// refuses to move an existing consumer to another subject.
func (s *Subscriber) ensureConsumer(ctx context.Context, subject string) (jetstream.Consumer, error) {
	existing, err := s.b.stream.Consumer(ctx, s.name)
	switch {
	case err == nil:
		cfg := existing.CachedInfo().Config
		if cfg.FilterSubject != subject || len(cfg.FilterSubjects) > 0 {
			have := cfg.FilterSubject
			if have == "" {
				have = fmt.Sprint(cfg.FilterSubjects)
			}
			return nil, fmt.Errorf("bus: consumer %q already reads subject %q in stream %q, not %q: a consumer keeps its topic; use another consumer name for the new topic (or delete the consumer to start over)",
				s.name, have, s.b.cfg.Stream, subject)
		}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	default:
		return nil, fmt.Errorf("bus: looking up consumer %q in stream %q: %w", s.name, s.b.cfg.Stream, err)
	}
	cons, err := s.b.stream.CreateOrUpdateConsumer(ctx, s.consumerConfig(subject))
	if err != nil {
		return nil, fmt.Errorf("bus: creating or updating consumer %q on subject %q in stream %q: %w", s.name, subject, s.b.cfg.Stream, err)
	}
	return cons, nil
}

// run pulls messages while there are free slots and hands each to a
// delivery goroutine, until ctx is cancelled or the Subscriber closes.
func (s *Subscriber) run(ctx context.Context, cons jetstream.Consumer, subject string, out chan *message.Message) {
	defer s.runs.Done()
	defer close(out)
	log := s.b.log.With("consumer", s.name, "subject", subject)

	stopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		case <-stopCtx.Done():
		}
		stop()
	}()
	abandon := make(chan struct{})
	slots := make(chan struct{}, s.inflight)
	var deliveries sync.WaitGroup
	backoff := 100 * time.Millisecond

	for stopCtx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-stopCtx.Done():
			continue
		}
		n := 1
	fill:
		for n < s.inflight {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		fctx, cancel := context.WithTimeout(stopCtx, fetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for jm := range batch.Messages() {
				got++
				deliveries.Add(1)
				go s.deliver(ctx, jm, out, slots, stopCtx.Done(), abandon, &deliveries)
			}
			err = batch.Error()
		}
		cancel()
		for ; got < n; got++ {
			<-slots
		}
		if err == nil || stopCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			backoff = 100 * time.Millisecond
			continue
		}
		log.Warn("pulling messages failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-stopCtx.Done():
			continue
		}
		backoff = min(2*backoff, 10*time.Second)
		if c, err := s.ensureConsumer(stopCtx, subject); err == nil {
			cons = c
		} else if stopCtx.Err() == nil {
			log.Warn("checking the consumer failed", "err", err)
		}
	}

	t := time.AfterFunc(s.b.cfg.CloseTimeout, func() { close(abandon) })
	deliveries.Wait()
	t.Stop()
}

// deliver hands one message to the handler and waits for its ack or nack,
// telling the server it is still in progress meanwhile.
func (s *Subscriber) deliver(ctx context.Context, jm jetstream.Msg, out chan<- *message.Message, slots chan struct{},
	stop <-chan struct{}, abandon <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	defer func() { <-slots }()
	cfg := s.b.cfg

	var numDelivered uint64 = 1
	var seq uint64
	if md, err := jm.Metadata(); err == nil {
		numDelivered, seq = md.NumDelivered, md.Sequence.Stream
	}
	msg, err := unmarshal(&nats.Msg{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers()})
	if err != nil {
		// Only a foreign publisher can write this; redelivering cannot help.
		s.b.log.Error("message cannot be decoded as a Watermill message; terminating its delivery (it stays in the stream until MaxAge)",
			"consumer", s.name, "subject", jm.Subject(), "seq", seq, "err", err)
		if err := jm.Term(); err != nil {
			s.b.log.Warn("terminating undecodable message failed", "consumer", s.name, "seq", seq, "err", err)
		}
		return
	}
	msg.Metadata.Set(MetaDelivered, strconv.FormatUint(numDelivered, 10))
	msg.Metadata.Set(MetaSequence, strconv.FormatUint(seq, 10))
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(mctx)

	select {
	case out <- msg:
	case <-stop:
		// Not handed out: give it back for immediate redelivery.
		if err := jm.Nak(); err != nil {
			s.b.log.Debug("returning an undelivered message at close failed; it is redelivered after AckWait", "consumer", s.name, "seq", seq, "err", err)
		}
		return
	}

	tick := time.NewTicker(cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-msg.Acked():
			actx, cancel := context.WithTimeout(context.Background(), cfg.PublishTimeout)
			err := jm.DoubleAck(actx)
			cancel()
			if err != nil {
				s.b.log.Warn("ack not confirmed by the server; the message may be delivered again",
					"consumer", s.name, "uuid", msg.UUID, "seq", seq, "err", err)
			}
			return
		case <-msg.Nacked():
			delay := s.nakDelay(numDelivered)
			if err := jm.NakWithDelay(delay); err != nil {
				s.b.log.Warn("nack failed; the message is redelivered after AckWait",
					"consumer", s.name, "uuid", msg.UUID, "seq", seq, "err", err)
			}
			return
		case <-tick.C:
			if err := jm.InProgress(); err != nil {
				s.b.log.Debug("in-progress signal failed", "consumer", s.name, "seq", seq, "err", err)
			}
		case <-abandon:
			s.b.log.Warn("closing: a handler still holds a message after CloseTimeout; it is redelivered after AckWait",
				"consumer", s.name, "uuid", msg.UUID, "seq", seq, "close_timeout", cfg.CloseTimeout)
			return
		}
	}
}

// nakDelay is NakDelay doubled per earlier delivery, capped at MaxNakDelay.
func (s *Subscriber) nakDelay(delivered uint64) time.Duration {
	d := s.b.cfg.NakDelay
	for i := uint64(1); i < delivered && d < s.b.cfg.MaxNakDelay; i++ {
		d *= 2
	}
	return min(d, s.b.cfg.MaxNakDelay)
}

// Close stops pulling messages, returns those not yet handed out, waits up to
// CloseTimeout for handlers to ack or nack what they hold, and closes every
// channel returned by Subscribe. The durable consumer stays on the server.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.runs.Wait()
	s.b.forget(s)
	return nil
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoMessage is returned by Latest when no stored message matches.
var ErrNoMessage = errors.New("no such message in the stream")

// Lookup windows: Latest reads the stream backwards in windows of stream
// sequences, each twice the last, so a recent message is found after
// reading little and an old one after O(log n) consumers.
const (
	lookupFirstWindow = 1 << 10
	lookupMaxWindow   = 1 << 17
	lookupBatch       = 1 << 9
)

// Latest returns the newest message stored on topic whose metadata key
// equals value and that accept takes (nil accepts all). It is meant for
// tools (the admin API's "latest event of an entity"), not for the data
// path: topics are stored on one subject each, not one per entity, so
// Latest reads the topic's headers backwards until it finds one, fetching
// a message's payload only when its header matches. A message that the
// stream no longer holds (bus.max_age, bus.max_bytes) is not found:
// ErrNoMessage.
func (b *Bus) Latest(ctx context.Context, topic, key, value string, accept func(*message.Message) bool) (*message.Message, error) {
	if err := checkSubject(topic, false); err != nil {
		return nil, fmt.Errorf("bus: topic %q: %w", topic, err)
	}
	subject := b.Subject(topic)
	info, err := b.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: stream %q: %w", b.cfg.Stream, err)
	}
	first, end := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, ErrNoMessage
	}
	window := uint64(lookupFirstWindow)
	for end >= first && end > 0 {
		start := first
		if end-first+1 > window {
			start = end - window + 1
		}
		seqs, err := b.matchingHeaders(ctx, subject, key, value, start, end)
		if err != nil {
			return nil, err
		}
		for _, seq := range slices.Backward(seqs) {
			raw, err := b.stream.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // removed by the limits since its header was read
			}
			if err != nil {
				return nil, fmt.Errorf("bus: reading message %d of stream %q: %w", seq, b.cfg.Stream, err)
			}
			m, err := unmarshal(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
			if err != nil {
				continue // not a message this bus wrote; the subscriber dead-letters those
			}
			if accept == nil || accept(m) {
				return m, nil
			}
		}
		if start == first {
			break
		}
		end = start - 1
		window = min(window*2, lookupMaxWindow)
	}
	return nil, ErrNoMessage
}

// matchingHeaders returns, in stream order, the sequences in [start, end]
// of the messages on subject whose header key decodes to value.
func (b *Bus) matchingHeaders(ctx context.Context, subject, key, value string, start, end uint64) ([]uint64, error) {
	var seqs []uint64
	err := b.scanHeaders(ctx, subject, start, end, func(seq uint64, h nats.Header) error {
		if decodeHeader(h.Get(key)) == value {
			seqs = append(seqs, seq)
		}
		return nil
	})
	return seqs, err
}

// ScanHeaders calls fn, in stream order, with the sequence and metadata of
// every message stored on topic up to the stream's last message when the
// scan starts (messages published later are not seen). It reads headers
// only; Message fetches a payload. An error from fn ends the scan.
func (b *Bus) ScanHeaders(ctx context.Context, topic string, fn func(seq uint64, meta message.Metadata) error) error {
	if err := checkSubject(topic, false); err != nil {
		return fmt.Errorf("bus: topic %q: %w", topic, err)
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("bus: stream %q: %w", b.cfg.Stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	return b.scanHeaders(ctx, b.Subject(topic), info.State.FirstSeq, info.State.LastSeq, func(seq uint64, h nats.Header) error {
		meta := make(message.Metadata, len(h))
		for k := range h {
			meta[k] = decodeHeader(h.Get(k))
		}
		return fn(seq, meta)
	})
}

// Message returns the message stored at stream sequence seq; ErrNoMessage
// when the stream no longer holds it.
func (b *Bus) Message(ctx context.Context, seq uint64) (*message.Message, error) {
	raw, err := b.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, fmt.Errorf("bus: reading message %d of stream %q: %w", seq, b.cfg.Stream, err)
	}
	return unmarshal(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
}

// scanHeaders calls fn with the sequence and headers of the messages on
// subject in [start, end], in stream order, through a short-lived
// headers-only consumer that it deletes.
func (b *Bus) scanHeaders(ctx context.Context, subject string, start, end uint64, fn func(seq uint64, h nats.Header) error) error {
	cons, err := b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "loyaltyhub lookup (deleted when done)",
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("bus: lookup consumer on %q in stream %q: %w", subject, b.cfg.Stream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = b.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	for {
		batch, err := cons.FetchNoWait(lookupBatch)
		if err != nil {
			return fmt.Errorf("bus: lookup on %q in stream %q: %w", subject, b.cfg.Stream, err)
		}
		n := 0
		done := false
		var fnErr error
		for jm := range batch.Messages() {
			n++
			md, err := jm.Metadata()
			if err != nil || done || fnErr != nil {
				continue
			}
			seq := md.Sequence.Stream
			if seq > end {
				done = true
				continue
			}
			fnErr = fn(seq, jm.Headers())
			if seq == end || md.NumPending == 0 {
				done = true
			}
		}
		if fnErr != nil {
			return fnErr
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("bus: lookup on %q in stream %q: %w", subject, b.cfg.Stream, err)
		}
		if done || n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

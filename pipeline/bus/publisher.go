package bus

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metadata set by the Subscriber on every delivered message. The Publisher
// does not store them (a forwarded message gets fresh values).
const (
	// MetaDelivered is how many times this message has been delivered to the
	// consumer, "1" the first time.
	MetaDelivered = "bus_delivered"
	// MetaSequence is the message's sequence number in the stream.
	MetaSequence = "bus_seq"
)

var marshaler = &wmnats.NATSMarshaler{}

// Publisher publishes Watermill messages to the bus's stream. It implements
// message.Publisher and is safe for concurrent use.
type Publisher struct {
	b *Bus
}

var _ message.Publisher = (*Publisher)(nil)

// PublishError reports the messages of one Publish call that JetStream did
// not confirm. The others are stored. A message listed here may be stored
// too (its confirmation was lost): publishing it again can make a duplicate.
type PublishError struct {
	Topic string
	// Failed holds the UUIDs of the unconfirmed messages, in publish order.
	Failed []string
	// Errs holds the error of each failed message, in the same order.
	Errs  []error
	Total int
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("bus: publishing to topic %q: %d of %d messages not confirmed by JetStream (first: message %s: %v)",
		e.Topic, len(e.Failed), e.Total, e.Failed[0], e.Errs[0])
}

// Unwrap returns the per-message errors.
func (e *PublishError) Unwrap() []error { return e.Errs }

// Publish stores msgs on topic (subject "<SubjectPrefix>.<topic>") and returns
// once JetStream has confirmed every one of them as stored. The messages are
// sent without waiting for each other's confirmation, then all confirmations
// are awaited. On failure it returns a *PublishError (or, when a message is
// invalid, an error before anything is sent).
//
// The message UUID travels in header "_watermill_message_uuid" and each
// metadata entry in a header of the same name (watermill-nats's
// NATSMarshaler format). Metadata keys must be valid NATS header keys
// (printable ASCII without spaces or "()/,:;<=>?@[\]{}); any value arrives
// exactly (see marshal). Metadata "Nats-Msg-Id" opts the message into the
// server's dedup window.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := checkSubject(topic, false); err != nil {
		return fmt.Errorf("bus: topic %q: %w", topic, err)
	}
	if len(msgs) == 0 {
		return nil
	}
	p.b.mu.Lock()
	closed := p.b.isClosed
	p.b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	subject := p.b.Subject(topic)
	nms := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		nm, err := marshal(subject, m)
		if err != nil {
			return fmt.Errorf("bus: topic %q: %w", topic, err)
		}
		nms[i] = nm
	}

	pe := &PublishError{Topic: topic, Total: len(msgs)}
	fail := func(i int, err error) {
		pe.Failed = append(pe.Failed, msgs[i].UUID)
		pe.Errs = append(pe.Errs, err)
	}
	timeout := p.b.cfg.PublishTimeout
	futures := make([]jetstream.PubAckFuture, len(nms))
	for i, nm := range nms {
		f, err := p.b.js.PublishMsgAsync(nm, jetstream.WithStallWait(timeout))
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}
	// The client times every future out after PublishTimeout; the timer is a
	// guard against a future that is never resolved.
	guard := time.NewTimer(timeout + 5*time.Second)
	defer guard.Stop()
	expired := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		var ack *jetstream.PubAck
		var err error
		if !expired {
			select {
			case ack = <-f.Ok():
			case err = <-f.Err():
			case <-guard.C:
				expired = true
			}
		}
		if expired && ack == nil && err == nil {
			select {
			case ack = <-f.Ok():
			case err = <-f.Err():
			default:
				err = jetstream.ErrAsyncPublishTimeout
			}
		}
		if err != nil {
			fail(i, err)
		} else if ack.Duplicate {
			p.b.log.Debug("duplicate dropped by the stream's dedup window", "topic", topic, "uuid", msgs[i].UUID, "seq", ack.Sequence)
		}
	}
	if len(pe.Failed) > 0 {
		return pe
	}
	return nil
}

// Close does nothing: the publisher belongs to the Bus, which closes it. A
// router closing its handlers' publishers leaves it usable.
func (p *Publisher) Close() error { return nil }

// marshal encodes m with watermill-nats's NATSMarshaler. Keys must be valid
// NATS header keys; values that a NATS header would alter (line breaks and
// other control characters, leading or trailing spaces) are sent as an
// RFC 2047 encoded word, which unmarshal decodes, so metadata arrives exactly.
func marshal(subject string, m *message.Message) (*nats.Msg, error) {
	for k := range m.Metadata {
		if !validHeaderKey(k) {
			return nil, fmt.Errorf("message %s: metadata key %q cannot be a NATS header: use printable ASCII without spaces or any of %s", m.UUID, k, forbiddenKeyChars)
		}
		if k == wmnats.WatermillUUIDHdr {
			return nil, fmt.Errorf("message %s: metadata key %q is reserved for the message UUID", m.UUID, k)
		}
	}
	nm, err := marshaler.Marshal(subject, m)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", m.UUID, err)
	}
	for k, v := range m.Metadata {
		if needsEncoding(v) {
			nm.Header.Set(k, encodedPrefix+base64.StdEncoding.EncodeToString([]byte(v))+encodedSuffix)
		}
	}
	nm.Header.Del(MetaDelivered)
	nm.Header.Del(MetaSequence)
	return nm, nil
}

// unmarshal decodes what marshal encoded.
func unmarshal(nm *nats.Msg) (*message.Message, error) {
	m, err := marshaler.Unmarshal(nm)
	if err != nil {
		return nil, err
	}
	for k, v := range m.Metadata {
		if isEncoded(v) {
			raw, err := base64.StdEncoding.DecodeString(v[len(encodedPrefix) : len(v)-len(encodedSuffix)])
			if err != nil {
				return nil, fmt.Errorf("metadata %q: bad encoded value: %w", k, err)
			}
			m.Metadata[k] = string(raw)
		}
	}
	return m, nil
}

func isEncoded(v string) bool {
	return strings.HasPrefix(v, encodedPrefix) && strings.HasSuffix(v, encodedSuffix) && len(v) >= len(encodedPrefix)+len(encodedSuffix)
}

// decodeHeader returns a header value as marshal had it in the metadata;
// a badly encoded value is returned as it is.
func decodeHeader(v string) string {
	if !isEncoded(v) {
		return v
	}
	raw, err := base64.StdEncoding.DecodeString(v[len(encodedPrefix) : len(v)-len(encodedSuffix)])
	if err != nil {
		return v
	}
	return string(raw)
}

const (
	encodedPrefix     = "=?utf-8?b?"
	encodedSuffix     = "?="
	forbiddenKeyChars = `"()/,:;<=>?@[\]{}`
)

// validHeaderKey follows nats.go's rule: printable ASCII except forbiddenKeyChars.
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 33 || c > 126 || strings.IndexByte(forbiddenKeyChars, c) >= 0 {
			return false
		}
	}
	return true
}

// needsEncoding reports whether a NATS header would not carry v verbatim
// (nats.go trims it and turns CR and LF into spaces), or v looks encoded.
func needsEncoding(v string) bool {
	if v == "" {
		return false
	}
	if strings.HasPrefix(v, encodedPrefix) || v != strings.TrimSpace(v) {
		return true
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return true
		}
	}
	return false
}

// Package event defines the hub's envelope: one CloudEvent as it travels on
// the bus, with the attributes the pipeline needs lifted into message metadata
// so that routing and the version guard never parse the payload.
package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// The event types the hub accepts. Type names are "loyalty.<entity>.<verb>".
const (
	TypeMemberUpserted    = "loyalty.member.upserted"
	TypeMemberDeleted     = "loyalty.member.deleted"
	TypeTransactionPosted = "loyalty.transaction.posted"
	TypeVoucherUpserted   = "loyalty.voucher.upserted"
	TypeSegmentChanged    = "loyalty.segment.membership.changed"
)

// Entities are the canonical entities; a topic is "<source>.<entity>".
const (
	EntityMember      = "member"
	EntityTransaction = "transaction"
	EntityVoucher     = "voucher"
	EntitySegment     = "segment"
)

// Types maps every accepted event type to its entity.
var Types = map[string]string{
	TypeMemberUpserted:    EntityMember,
	TypeMemberDeleted:     EntityMember,
	TypeTransactionPosted: EntityTransaction,
	TypeVoucherUpserted:   EntityVoucher,
	TypeSegmentChanged:    EntitySegment,
}

// Limits every event meets, however it entered the hub (webhook ingress,
// a polled connector): the same rules, so no path lets in a key or a version
// another would refuse.
const (
	// MaxKeyBytes bounds an event's id, source and subject, in bytes: 255 is
	// Salesforce's external id limit, and each travels in a message header.
	MaxKeyBytes = 255
	// MaxVersion is the largest version: 2^53-1, the largest integer every
	// JSON reader carries exactly.
	MaxVersion = 1<<53 - 1
)

// Metadata keys set on every bus message.
const (
	MetaType    = "ce_type"
	MetaSource  = "ce_source"
	MetaSubject = "ce_subject"
	MetaTime    = "ce_time"
	MetaVersion = "lh_version"
	MetaOrigin  = "lh_origin" // the hub source name the event came in through ({source} in the URL)
)

// Event is one CloudEvent 1.0 accepted by the hub.
type Event struct {
	// ID is the CloudEvents id: unique per source, the idempotency key.
	ID string `json:"id"`
	// Source is the CloudEvents source attribute (a URI-reference).
	Source string `json:"source"`
	// SpecVersion is always "1.0".
	SpecVersion string `json:"specversion"`
	// Type is one of the Type* constants.
	Type string `json:"type"`
	// Subject is the entity id (member id, transaction id, segment id).
	Subject string `json:"subject"`
	// Time is when the change happened at the source.
	Time time.Time `json:"time,omitzero"`
	// DataContentType is "application/json".
	DataContentType string `json:"datacontenttype,omitempty"`
	// Data is the entity's full state; it carries an integer "version".
	Data json.RawMessage `json:"data"`

	// Origin is the hub-side source name ({source} in the ingress URL); it
	// picks the topic. Not part of the CloudEvent.
	Origin string `json:"-"`
	// Version is data.version, lifted out at ingress.
	Version int64 `json:"-"`
}

// Entity returns the canonical entity of e's type, "" if the type is unknown.
func (e *Event) Entity() string { return Types[e.Type] }

// Deleted reports whether the event removes the entity.
func (e *Event) Deleted() bool { return strings.HasSuffix(e.Type, ".deleted") }

// Topic is the bus topic for e: "<origin>.<entity>".
func (e *Event) Topic() string { return Topic(e.Origin, e.Entity()) }

// Topic builds a topic name from a source name and an entity.
func Topic(origin, entity string) string { return origin + "." + entity }

// ToMessage encodes e as a Watermill message: the payload is the structured
// CloudEvent JSON, the message UUID is the event id.
func (e *Event) ToMessage() (*message.Message, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding event %q: %w", e.ID, err)
	}
	m := message.NewMessage(e.ID, payload)
	m.Metadata.Set(MetaType, e.Type)
	m.Metadata.Set(MetaSource, e.Source)
	m.Metadata.Set(MetaSubject, e.Subject)
	m.Metadata.Set(MetaOrigin, e.Origin)
	m.Metadata.Set(MetaVersion, strconv.FormatInt(e.Version, 10))
	if !e.Time.IsZero() {
		m.Metadata.Set(MetaTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	return m, nil
}

// FromMessage decodes a message made by ToMessage.
func FromMessage(m *message.Message) (*Event, error) {
	var e Event
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		return nil, fmt.Errorf("decoding event from message %s: %w", m.UUID, err)
	}
	e.Origin = m.Metadata.Get(MetaOrigin)
	v, err := strconv.ParseInt(m.Metadata.Get(MetaVersion), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("message %s: metadata %s %q is not an integer", m.UUID, MetaVersion, m.Metadata.Get(MetaVersion))
	}
	e.Version = v
	return &e, nil
}

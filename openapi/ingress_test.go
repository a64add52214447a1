package openapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// received collects what a gochannel subscriber got on topic, waiting for n messages.
func received(t *testing.T, ch <-chan *message.Message, n int) []*message.Message {
	t.Helper()
	var out []*message.Message
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			m.Ack()
			out = append(out, m)
		case <-timeout:
			t.Fatalf("got %d messages, want %d", len(out), n)
		}
	}
	select {
	case m := <-ch:
		t.Fatalf("unexpected extra message %s: %s", m.UUID, m.Payload)
	case <-time.After(50 * time.Millisecond):
	}
	return out
}

func TestIngressAcceptsEveryMode(t *testing.T) {
	goch := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = goch.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	subscribe := func(topic string) <-chan *message.Message {
		ch, err := goch.Subscribe(ctx, topic)
		require.NoError(t, err)
		return ch
	}
	pub := &recordingPublisher{next: goch}
	ts := newTestServer(t, pub, nil)

	t.Run("structured", func(t *testing.T) {
		ch := subscribe("crm.member")
		body := []byte(`{"specversion":"1.0","id":"s-1","source":"/crm","type":"loyalty.member.upserted",` +
			`"subject":"M-1","time":"2026-03-01T10:00:00.5+01:00","data":{"version":9007199254740991,"tier":"gold"},"traceparent":"00-x"}`)
		res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents+json; charset=utf-8", body: body,
			header: map[string]string{"X-Request-Id": "req-structured"}})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		var acc openapi.Accepted
		require.NoError(t, json.Unmarshal(res.body, &acc))
		assert.Equal(t, openapi.Accepted{Accepted: 1, IDs: []string{"s-1"}}, acc)
		assert.Equal(t, "req-structured", res.header.Get("X-Request-Id"))

		msgs := received(t, ch, 1)
		m := msgs[0]
		assert.Equal(t, "s-1", m.UUID)
		assert.Equal(t, "loyalty.member.upserted", m.Metadata.Get(event.MetaType))
		assert.Equal(t, "crm", m.Metadata.Get(event.MetaOrigin))
		assert.Equal(t, "M-1", m.Metadata.Get(event.MetaSubject))
		assert.Equal(t, "/crm", m.Metadata.Get(event.MetaSource))
		// 2^53-1, the largest accepted, survives exactly.
		assert.Equal(t, "9007199254740991", m.Metadata.Get(event.MetaVersion))
		assert.Equal(t, "2026-03-01T09:00:00.5Z", m.Metadata.Get(event.MetaTime))
		assert.Equal(t, "req-structured", middleware.MessageCorrelationID(m))
		got, err := event.FromMessage(m)
		require.NoError(t, err)
		assert.Equal(t, int64(9007199254740991), got.Version)
		assert.Equal(t, "crm", got.Origin)
		assert.JSONEq(t, `{"version":9007199254740991,"tier":"gold"}`, string(got.Data))
	})

	t.Run("batch over several topics", func(t *testing.T) {
		members, txs, segs := subscribe("cdp.member"), subscribe("cdp.transaction"), subscribe("cdp.segment")
		batch := []any{
			member("b-0", 1),
			ev("b-1", "loyalty.transaction.posted", "T-1", map[string]any{"version": 0, "points": 50}),
			ev("b-2", "loyalty.member.deleted", "M-b-0", map[string]any{"version": 2}),
			ev("b-3", "loyalty.segment.membership.changed", "SEG-1",
				map[string]any{"version": 4, "segment_id": "SEG-1", "added": []string{"M-1", "M-2"}, "removed": []string{"M-3"}}),
			member("b-4", 3),
		}
		res := ts.do(t, request{path: "/v1/events/cdp", contentType: "application/cloudevents-batch+json", body: mustJSON(t, batch)})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		var acc openapi.Accepted
		require.NoError(t, json.Unmarshal(res.body, &acc))
		assert.Equal(t, openapi.Accepted{Accepted: 5, IDs: []string{"b-0", "b-1", "b-2", "b-3", "b-4"}}, acc)

		// gochannel does not keep order between a call's messages: sort by id.
		m := received(t, members, 3)
		slices.SortFunc(m, func(a, b *message.Message) int { return strings.Compare(a.UUID, b.UUID) })
		assert.Equal(t, []string{"b-0", "b-2", "b-4"}, []string{m[0].UUID, m[1].UUID, m[2].UUID})
		assert.Equal(t, []string{"1", "2", "3"}, []string{
			m[0].Metadata.Get(event.MetaVersion), m[1].Metadata.Get(event.MetaVersion), m[2].Metadata.Get(event.MetaVersion)})
		assert.Equal(t, "loyalty.member.deleted", m[1].Metadata.Get(event.MetaType))
		tx := received(t, txs, 1)
		assert.Equal(t, "b-1", tx[0].UUID)
		assert.Equal(t, "0", tx[0].Metadata.Get(event.MetaVersion))
		seg := received(t, segs, 1)
		got, err := event.FromMessage(seg[0])
		require.NoError(t, err)
		assert.Equal(t, "SEG-1", got.Subject)
		assert.JSONEq(t, `{"version":4,"segment_id":"SEG-1","added":["M-1","M-2"],"removed":["M-3"]}`, string(got.Data))

		// One Publish per topic, in order of first appearance, each with its
		// events in request order.
		var topics []string
		var ids [][]string
		for _, c := range pub.Calls() {
			if strings.HasPrefix(c.topic, "cdp.") {
				topics = append(topics, c.topic)
				var call []string
				for _, msg := range c.msgs {
					call = append(call, msg.UUID)
				}
				ids = append(ids, call)
			}
		}
		assert.Equal(t, []string{"cdp.member", "cdp.transaction", "cdp.segment"}, topics)
		assert.Equal(t, [][]string{{"b-0", "b-2", "b-4"}, {"b-1"}, {"b-3"}}, ids)
	})

	t.Run("binary", func(t *testing.T) {
		ch := subscribe("crm.voucher")
		res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/json", body: []byte(`{"version": 12, "code": "SPRING"}`),
			header: map[string]string{
				"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "/crm/vouchers",
				"ce-type": "loyalty.voucher.upserted", "ce-subject": "V%20100%25", "ce-time": "2026-03-01T10:00:00Z",
			}})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		m := received(t, ch, 1)[0]
		assert.Equal(t, "bin-1", m.UUID)
		assert.Equal(t, "V 100%", m.Metadata.Get(event.MetaSubject), "ce- header values are percent-decoded")
		assert.Equal(t, "12", m.Metadata.Get(event.MetaVersion))
		got, err := event.FromMessage(m)
		require.NoError(t, err)
		assert.Equal(t, "application/json", got.DataContentType)
		assert.JSONEq(t, `{"version":12,"code":"SPRING"}`, string(got.Data))
		assert.NotEmpty(t, middleware.MessageCorrelationID(m), "a request id is made when the client sends none")
	})

	t.Run("signed", func(t *testing.T) {
		ch := subscribe("ledger.member")
		body := mustJSON(t, member("sig-1", 5))
		res := ts.do(t, request{path: "/v1/events/ledger", contentType: "application/cloudevents+json", body: body, header: sign(ledgerSecret, body)})
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
		assert.Equal(t, "sig-1", received(t, ch, 1)[0].UUID)
	})

	assert.Equal(t, 1.0, counter(t, ts, "loyaltyhub_ingress_events_accepted_total", "crm", "loyalty.member.upserted"))
	assert.Equal(t, 2.0, counter(t, ts, "loyaltyhub_ingress_events_accepted_total", "cdp", "loyalty.member.upserted"))
	assert.Equal(t, 1.0, counter(t, ts, "loyaltyhub_ingress_events_accepted_total", "cdp", "loyalty.segment.membership.changed"))
}

// rejectCase is one request the hub must refuse without publishing anything.
type rejectCase struct {
	name        string
	source      string // default "crm"
	contentType string // default structured
	body        []byte
	header      map[string]string
	chunked     bool
	status      int
	// want lists the expected faults; rule is matched as a substring.
	want []FieldErrorWant
	// exact requires want to be all the faults.
	exact bool
}

type FieldErrorWant struct {
	event *int
	id    string
	field string
	rule  string
}

func batchWithBadAt(t *testing.T, n int, bad map[int]func(map[string]any)) []byte {
	var batch []any
	for i := range n {
		e := member(fmt.Sprintf("e%d", i), i)
		if f := bad[i]; f != nil {
			f(e)
		}
		batch = append(batch, e)
	}
	return mustJSON(t, batch)
}

func TestIngressRejects(t *testing.T) {
	structured := "application/cloudevents+json"
	batchCT := "application/cloudevents-batch+json"
	withData := func(k string, v any) func(map[string]any) {
		return func(e map[string]any) { e["data"].(map[string]any)[k] = v }
	}
	without := func(k string) func(map[string]any) { return func(e map[string]any) { delete(e, k) } }
	set := func(k string, v any) func(map[string]any) { return func(e map[string]any) { e[k] = v } }
	m := func(id string, mods ...func(map[string]any)) []byte {
		e := member(id, 1)
		for _, f := range mods {
			f(e)
		}
		b, _ := json.Marshal(e)
		return b
	}
	segment := func(data map[string]any, mods ...func(map[string]any)) []byte {
		b, _ := json.Marshal(ev("seg-1", "loyalty.segment.membership.changed", "SEG-1", data, mods...))
		return b
	}
	binHeaders := func(mod func(map[string]string)) map[string]string {
		h := map[string]string{"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "/crm",
			"ce-type": "loyalty.member.upserted", "ce-subject": "M-1"}
		if mod != nil {
			mod(h)
		}
		return h
	}
	zero := intp(0)

	cases := []rejectCase{
		{name: "invalid JSON", body: []byte(`{"specversion": "1.0", "id": x}`), status: 400,
			want: []FieldErrorWant{{field: "body", rule: "invalid character 'x' looking for beginning of value at byte offset 29"}}, exact: true},
		{name: "truncated JSON", body: []byte(`{"specversion": "1.0"`), status: 400,
			want: []FieldErrorWant{{field: "body", rule: "unexpected end of JSON at byte offset 21"}}},
		{name: "data after the JSON value", body: []byte(`{"a":1} {"b":2}`), status: 400,
			want: []FieldErrorWant{{field: "body", rule: "unexpected data after the JSON value at byte offset 8"}}},
		{name: "empty body", body: nil, status: 400, want: []FieldErrorWant{{field: "body", rule: "the body is empty"}}},
		{name: "missing subject", body: m("e1", without("subject")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "subject", rule: "is required"}}, exact: true},
		{name: "empty subject", body: m("e1", set("subject", "")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "subject", rule: "must not be empty"}}, exact: true},
		{name: "version as a string", body: m("e1", withData("version", "7")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "must be an integer"}}, exact: true},
		{name: "version missing", body: m("e1", func(e map[string]any) { delete(e["data"].(map[string]any), "version") }), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "is required"}}, exact: true},
		{name: "version with a fraction", body: m("e1", withData("version", 1.5)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "must be an integer"}}, exact: true},
		{name: "negative version", body: m("e1", withData("version", -1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "must be at least 0"}}, exact: true},
		{name: "version beyond int64", body: []byte(strings.Replace(string(m("e1")), `"version":1`, `"version":9223372036854775808`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "9007199254740991"}}, exact: true},
		{name: "version with an exponent", body: []byte(strings.Replace(string(m("e1")), `"version":1`, `"version":1e3`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data.version", rule: "without fraction or exponent"}}, exact: true},
		{name: "data not an object", body: m("e1", set("data", []int{1})), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "data", rule: "must be an object"}}, exact: true},
		{name: "unknown type", body: m("e1", set("type", "loyalty.member.exploded")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "type", rule: `must be one of "loyalty.member.deleted"`}}, exact: true},
		{name: "type missing", body: m("e1", without("type")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "type", rule: "is required"}}},
		{name: "wrong specversion", body: m("e1", set("specversion", "0.3")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "specversion", rule: `must be one of "1.0"`}}, exact: true},
		{name: "time not a date-time", body: m("e1", set("time", "yesterday")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "time", rule: "RFC 3339"}}, exact: true},
		{name: "control character in subject", body: m("e1", set("subject", "M-1\r\nX-Evil: 1")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "e1", field: "subject", rule: "must not contain control characters"}}, exact: true},
		{name: "several faults in one event", body: m("e1", without("subject"), without("source"), withData("version", "x")), status: 422,
			want: []FieldErrorWant{
				{event: zero, id: "e1", field: "data.version", rule: "must be an integer"},
				{event: zero, id: "e1", field: "source", rule: "is required"},
				{event: zero, id: "e1", field: "subject", rule: "is required"},
			}, exact: true},
		{name: "event not an object", body: []byte(`[1]`), status: 422,
			want: []FieldErrorWant{{event: zero, field: "event", rule: "must be an object"}}},
		{name: "segment without added", body: segment(map[string]any{"version": 1, "segment_id": "SEG-1", "removed": []string{}}), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "data.added", rule: "is required"}}, exact: true},
		{name: "segment member id not a string", body: segment(map[string]any{"version": 1, "segment_id": "SEG-1", "added": []any{"M-1", 7}, "removed": []string{}}), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "data.added[1]", rule: "must be a string"}}, exact: true},
		{name: "segment id differs from subject", body: segment(map[string]any{"version": 1, "segment_id": "SEG-2", "added": []string{}, "removed": []string{}}), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "data.segment_id", rule: "must equal subject"}}, exact: true},
		{name: "segment member added and removed", body: segment(map[string]any{"version": 1, "segment_id": "SEG-1", "added": []string{"M-1", "M-2"}, "removed": []string{"M-2"}}), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "data.removed[0]", rule: "must not also be in data.added"}}, exact: true},

		{name: "body over the size limit", body: batchWithBadAt(t, 20, nil), contentType: batchCT, status: 413,
			want: []FieldErrorWant{{field: "body", rule: "must be at most 2048 bytes"}}, exact: true},
		{name: "body over the size limit without Content-Length", body: batchWithBadAt(t, 20, nil), contentType: batchCT, chunked: true, status: 413,
			want: []FieldErrorWant{{field: "body", rule: "must be at most 2048 bytes"}}, exact: true},
		{name: "too many events", body: batchWithBadAt(t, 6, nil), contentType: batchCT, status: 413,
			want: []FieldErrorWant{{field: "body", rule: "must hold at most 5 events"}}, exact: true},
		{name: "empty batch", body: []byte(`[]`), contentType: batchCT, status: 422,
			want: []FieldErrorWant{{field: "body", rule: "must hold at least 1 item"}}, exact: true},
		{name: "batch not an array", body: m("e1"), contentType: batchCT, status: 422,
			want: []FieldErrorWant{{field: "body", rule: "must be an array"}}, exact: true},
		{name: "one bad event among good ones", contentType: batchCT, status: 422,
			body: batchWithBadAt(t, 5, map[int]func(map[string]any){3: withData("version", "3")}),
			want: []FieldErrorWant{{event: intp(3), id: "e3", field: "data.version", rule: "must be an integer"}}, exact: true},
		{name: "every bad event of a batch", contentType: batchCT, status: 422,
			body: batchWithBadAt(t, 5, map[int]func(map[string]any){
				1: without("subject"),
				4: func(e map[string]any) { delete(e, "id"); e["specversion"] = "2.0" },
			}),
			want: []FieldErrorWant{
				{event: intp(1), id: "e1", field: "subject", rule: "is required"},
				{event: intp(4), field: "id", rule: "is required"},
				{event: intp(4), field: "specversion", rule: `must be one of "1.0"`},
			}, exact: true},
		{name: "one id on different content in a batch", contentType: batchCT, status: 422,
			body: batchWithBadAt(t, 4, map[int]func(map[string]any){2: set("id", "e0")}),
			want: []FieldErrorWant{{event: intp(2), id: "e0", field: "id", rule: "must identify one event: event 0 has the same id with different content"}}, exact: true},

		{name: "unknown source", source: "erp", body: m("e1"), status: 404,
			want: []FieldErrorWant{{field: "source", rule: "cdp, crm, ledger"}}, exact: true},
		{name: "bad content type", contentType: "text/plain", body: m("e1"), status: 415,
			want: []FieldErrorWant{{field: "Content-Type", rule: "application/cloudevents+json, application/cloudevents-batch+json, application/json"}}, exact: true},
		{name: "no content type", contentType: "-", body: m("e1"), status: 415,
			want: []FieldErrorWant{{field: "Content-Type", rule: "must be one of"}}, exact: true},
		{name: "missing signature", source: "ledger", body: m("e1"), status: 401,
			want: []FieldErrorWant{{field: "webhook-id", rule: "is required"}, {field: "webhook-timestamp", rule: "is required"},
				{field: "webhook-signature", rule: "is required"}}, exact: true},
		{name: "wrong signature", source: "ledger", body: m("e1"), status: 401,
			header: sign("another-key-16-bytes", m("e1")),
			want:   []FieldErrorWant{{field: "webhook-signature", rule: "made with one of the source's keys"}}, exact: true},
		{name: "signature of another body", source: "ledger", body: m("e1"), status: 401,
			header: sign(ledgerSecret, m("e2")),
			want:   []FieldErrorWant{{field: "webhook-signature", rule: "made with one of the source's keys"}}, exact: true},
		{name: "malformed signature", source: "ledger", body: m("e1"), status: 401,
			header: func() map[string]string {
				h := sign(ledgerSecret, m("e1"))
				h["webhook-signature"] = "sha256=zz"
				return h
			}(),
			want: []FieldErrorWant{{field: "webhook-signature", rule: "made with one of the source's keys"}}, exact: true},

		{name: "binary without ce-subject", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { delete(h, "ce-subject") }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "ce-subject", rule: "is required"}}, exact: true},
		{name: "binary with a wrong ce-specversion", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-specversion"] = "0.3" }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "ce-specversion", rule: `must be one of "1.0"`}}, exact: true},
		{name: "binary with an unknown ce-type", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-type"] = "loyalty.tier.changed" }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "ce-type", rule: "must be one of"}}, exact: true},
		{name: "binary with a bad ce-time", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-time"] = "2026-13-01" }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "ce-time", rule: "RFC 3339"}}, exact: true},
		{name: "binary with bad percent-encoding", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-subject"] = "M%zz" }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "ce-subject", rule: "percent-encoded UTF-8"}}, exact: true},
		{name: "binary with a line break in ce-id", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-id"] = "bin%0A1" }),
			want:   []FieldErrorWant{{event: zero, id: "bin\n1", field: "ce-id", rule: "must not contain control characters"}}, exact: true},
		{name: "binary with version as a string", contentType: "application/json", body: []byte(`{"version":"1"}`), status: 422,
			header: binHeaders(nil),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "data.version", rule: "must be an integer"}}, exact: true},
		{name: "binary segment without segment_id", contentType: "application/json", body: []byte(`{"version":1,"added":[],"removed":[]}`), status: 422,
			header: binHeaders(func(h map[string]string) { h["ce-type"] = "loyalty.segment.membership.changed" }),
			want:   []FieldErrorWant{{event: zero, id: "bin-1", field: "data.segment_id", rule: "is required"}}, exact: true},
		{name: "binary without any ce- header", contentType: "application/json", body: []byte(`{"version":1}`), status: 422,
			want: []FieldErrorWant{{event: zero, field: "ce-type", rule: "is required"}}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil, func(c *openapi.ServerConfig) {
				c.MaxBodyBytes = 2048
				c.MaxBatchEvents = 5
			})
			source := tc.source
			if source == "" {
				source = "crm"
			}
			ct := tc.contentType
			switch ct {
			case "":
				ct = structured
			case "-":
				ct = ""
			}
			res := ts.do(t, request{path: "/v1/events/" + source, contentType: ct, body: tc.body, header: tc.header, chunked: tc.chunked})
			require.Equal(t, tc.status, res.status, "body: %s", res.body)
			p := res.problem(t)
			assert.NotEmpty(t, p.Detail)
			assert.Equal(t, res.header.Get("X-Request-Id"), p.Instance)
			for _, w := range tc.want {
				assert.True(t, hasFault(p.Errors, w), "no fault %+v (event %v) in %s", w, deref(w.event), res.body)
			}
			if tc.exact {
				assert.Len(t, p.Errors, len(tc.want), "faults: %s", res.body)
			}
			assert.Empty(t, ts.pub.Calls(), "nothing of a rejected request is published")
			if tc.status == 400 {
				require.NotNil(t, p.Offset)
				assert.Contains(t, p.Detail, fmt.Sprintf("byte offset %d", *p.Offset))
			}
			if tc.status == 413 {
				assert.Contains(t, []int64{2048, 5}, p.Limit)
			}
			if tc.status == 401 {
				assert.NotEmpty(t, res.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func hasFault(errs []openapi.FieldError, w FieldErrorWant) bool {
	for _, e := range errs {
		if (w.event == nil) != (e.Event == nil) || (w.event != nil && *w.event != *e.Event) {
			continue
		}
		if w.id != "" && (e.ID == nil || *e.ID != w.id) {
			continue
		}
		if w.id == "" && w.event == nil && e.ID != nil {
			continue
		}
		if e.Field == w.field && strings.Contains(e.Rule, w.rule) {
			return true
		}
	}
	return false
}

func TestIngressPublishFailureAnswers503(t *testing.T) {
	pub := &recordingPublisher{err: errors.New("jetstream: no responders")}
	ts := newTestServer(t, pub, func(c *openapi.ServerConfig) { c.RetryAfter = 1500 * time.Millisecond })
	body := mustJSON(t, []any{member("p-1", 1), ev("p-2", "loyalty.voucher.upserted", "V-1", map[string]any{"version": 1})})
	res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents-batch+json", body: body})
	require.Equal(t, http.StatusServiceUnavailable, res.status, "%s", res.body)
	assert.Equal(t, "2", res.header.Get("Retry-After"), "1.5s rounds up to 2 seconds")
	p := res.problem(t)
	assert.Contains(t, p.Detail, "send the same request again")
	assert.NotContains(t, p.Detail, "no responders", "internal errors are logged, not shown")
	calls := pub.Calls()
	require.Len(t, calls, 1, "publishing stops at the first failed topic")
	assert.Equal(t, "crm.member", calls[0].topic)
	assert.Equal(t, 1.0, rejected(t, ts, "crm", "loyalty.member.upserted", "publish_failed"))
	assert.Equal(t, 1.0, rejected(t, ts, "crm", "loyalty.voucher.upserted", "publish_failed"))
	assert.Zero(t, seriesCount(t, ts, "loyaltyhub_ingress_events_accepted_total"))
}

func TestIngressNotAccepting(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	ts.srv.SetAccepting(false)
	res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents+json", body: mustJSON(t, member("n-1", 1))})
	require.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "5", res.header.Get("Retry-After"))
	res.problem(t)
	assert.Empty(t, ts.pub.Calls())

	ts.srv.SetAccepting(true)
	res = ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents+json", body: mustJSON(t, member("n-1", 1))})
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	assert.Len(t, ts.pub.Calls(), 1)
}

func TestIngressRejectionMetrics(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	body := batchWithBadAt(t, 4, map[int]func(map[string]any){1: func(e map[string]any) { e["type"] = "nope" }})
	res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents-batch+json", body: body})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	assert.Equal(t, 3.0, rejected(t, ts, "crm", "loyalty.member.upserted", "invalid"), "good events of a rejected batch are rejected too")
	assert.Equal(t, 1.0, rejected(t, ts, "crm", "unknown", "invalid"))

	ts.do(t, request{path: "/v1/events/" + strings.Repeat("x", 40), contentType: "application/cloudevents+json", body: body})
	assert.Equal(t, 1.0, rejected(t, ts, "_undeclared", "unknown", "unknown_source"), "undeclared names never become label values")
	ts.do(t, request{path: "/v1/events/ledger", contentType: "application/cloudevents+json", body: body})
	assert.Equal(t, 1.0, rejected(t, ts, "ledger", "unknown", "unauthorized"))
}

func counter(t *testing.T, ts *testServer, name, source, typ string) float64 {
	t.Helper()
	return metricValue(t, ts, name, map[string]string{"source": source, "type": typ})
}

func rejected(t *testing.T, ts *testServer, source, typ, reason string) float64 {
	t.Helper()
	return metricValue(t, ts, "loyaltyhub_ingress_events_rejected_total", map[string]string{"source": source, "type": typ, "reason": reason})
}

func TestIngressCollapsesExactCopiesInABatch(t *testing.T) {
	// An at-least-once relay may put the same event twice in one batch:
	// the copy is accepted and published once.
	ts := newTestServer(t, nil, nil)
	body := mustJSON(t, []any{member("c-1", 1), member("c-2", 2), member("c-1", 1)})
	res := ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents-batch+json", body: body})
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	calls := ts.pub.Calls()
	require.Len(t, calls, 1)
	var ids []string
	for _, m := range calls[0].msgs {
		ids = append(ids, m.UUID)
	}
	assert.Equal(t, []string{"c-1", "c-2"}, ids)
}

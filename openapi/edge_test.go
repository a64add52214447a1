package openapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/openapi"
)

// The holes of the edge issue, each as it was reproduced: these requests
// changed members before the fix.

const structuredCT = "application/cloudevents+json"

// post sends body to source's ingress with headers and returns the answer.
func (ts *testServer) post(t *testing.T, source, ct string, body []byte, header map[string]string) response {
	t.Helper()
	return ts.do(t, request{path: "/v1/events/" + source, contentType: ct, body: body, header: header})
}

func TestEdgeSignedBinaryRequestCannotBeRetargeted(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	body := []byte(`{"id":"M-1","version":9,"tier":"gold"}`)
	h := sign(ledgerSecret, body)
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "evt-9", "ce-source": "/ledger",
		"ce-type": "loyalty.member.deleted", "ce-subject": "M-2"} {
		h[k] = v
	}
	res := ts.post(t, "ledger", "application/json", body, h)
	require.Equal(t, http.StatusUnsupportedMediaType, res.status, "%s", res.body)
	assert.Contains(t, res.problem(t).Detail, "binary mode's ce-* headers would go unsigned")
	assert.Empty(t, ts.pub.Calls())
}

func TestEdgeSignatureCoversEveryAttribute(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	body := mustJSON(t, member("e1", 3))
	h := sign(ledgerSecret, body)
	// The same signature on a body whose type and subject were changed.
	forged := bytes.Replace(bytes.Replace(body, []byte("loyalty.member.upserted"), []byte("loyalty.member.deleted"), 1),
		[]byte(`"M-e1"`), []byte(`"M-other"`), 1)
	res := ts.post(t, "ledger", structuredCT, forged, h)
	require.Equal(t, http.StatusUnauthorized, res.status)
	assert.Empty(t, ts.pub.Calls())
	res = ts.post(t, "ledger", structuredCT, body, h)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
}

func TestEdgeReplaysAreNotPublishedAgain(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	body := mustJSON(t, []any{member("r1", 1), member("r2", 1)})
	h := sign(ledgerSecret, body, "msg_replayed")
	first := ts.post(t, "ledger", "application/cloudevents-batch+json", body, h)
	require.Equal(t, http.StatusAccepted, first.status, "%s", first.body)
	for range 30 {
		again := ts.post(t, "ledger", "application/cloudevents-batch+json", body, h)
		require.Equal(t, http.StatusAccepted, again.status, "%s", again.body)
		var a openapi.Accepted
		require.NoError(t, json.Unmarshal(again.body, &a))
		assert.True(t, a.Replayed)
		assert.Equal(t, []string{"r1", "r2"}, a.IDs, "answered as the first time")
	}
	assert.Len(t, ts.pub.Calls(), 1, "30 replays published nothing more")
	assert.Equal(t, 30.0, metricValue(t, ts, "loyaltyhub_ingress_deliveries_replayed_total", map[string]string{"source": "ledger"}))

	// A relay's retry: same id, new timestamp and signature, same body.
	retry := ts.post(t, "ledger", "application/cloudevents-batch+json", body, signAt(ledgerSecret, body, time.Now().Add(time.Second), "msg_replayed"))
	require.Equal(t, http.StatusAccepted, retry.status)
	assert.Len(t, ts.pub.Calls(), 1)

	// The same id with another body, even signed: a conflict, not a replay.
	other := mustJSON(t, []any{member("r1", 2)})
	res := ts.post(t, "ledger", "application/cloudevents-batch+json", other, sign(ledgerSecret, other, "msg_replayed"))
	require.Equal(t, http.StatusConflict, res.status, "%s", res.body)
	assert.Len(t, ts.pub.Calls(), 1)
}

func TestEdgeStaleAndFutureSignaturesAreRefused(t *testing.T) {
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) {
		src := c.Sources["ledger"]
		src.Tolerance = time.Minute
		c.Sources["ledger"] = src
	})
	body := mustJSON(t, member("s1", 1))
	for _, at := range []time.Time{time.Now().Add(-2 * time.Minute), time.Now().Add(2 * time.Minute)} {
		res := ts.post(t, "ledger", structuredCT, body, signAt(ledgerSecret, body, at))
		require.Equal(t, http.StatusUnauthorized, res.status)
		p := res.problem(t)
		require.Len(t, p.Errors, 1)
		assert.Equal(t, "webhook-timestamp", p.Errors[0].Field)
		assert.Contains(t, p.Errors[0].Rule, "within 1m0s (sources.ledger.tolerance)")
	}
	res := ts.post(t, "ledger", structuredCT, body, signAt(ledgerSecret, body, time.Now().Add(-50*time.Second)))
	require.Equal(t, http.StatusAccepted, res.status, "inside the window: %s", res.body)
	res = ts.post(t, "ledger", structuredCT, body, map[string]string{"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"})
	require.Equal(t, http.StatusUnauthorized, res.status)
	assert.Contains(t, res.problem(t).Errors[0].Rule, "Unix time in whole seconds")
}

func TestEdgeKeyRotation(t *testing.T) {
	const oldKey, newKey = "the-old-ledger-key", "the-new-ledger-key"
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) {
		c.Sources["ledger"] = openapi.SourceConfig{Keys: [][]byte{[]byte(oldKey), []byte(newKey)}}
	})
	body := mustJSON(t, member("k1", 1))
	for _, key := range []string{oldKey, newKey} {
		res := ts.post(t, "ledger", structuredCT, body, sign(key, body))
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	}
	// A sender mid-rotation signs with both: one of them is enough.
	h := sign("a-key-the-hub-does-not-know", body, "msg_both")
	h["webhook-signature"] += " " + signAt(newKey, body, time.Now(), "msg_both")["webhook-signature"]
	res := ts.post(t, "ledger", structuredCT, body, h)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	res = ts.post(t, "ledger", structuredCT, body, sign("a-key-the-hub-does-not-know", body))
	require.Equal(t, http.StatusUnauthorized, res.status)
}

func TestEdgeKeyIntegrity(t *testing.T) {
	zero := intp(0)
	mem := func(mod func(map[string]any)) []byte {
		e := member("k1", 5)
		mod(e)
		b, _ := json.Marshal(e)
		return b
	}
	data := func(k string, v any) func(map[string]any) {
		return func(e map[string]any) { e["data"].(map[string]any)[k] = v }
	}
	long := strings.Repeat("x", 256)
	wide := strings.Repeat("é", 200) // 200 characters, 400 bytes
	cases := []rejectCase{
		{name: "subject and data.id differ", body: mem(data("id", "M-other")), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.id", rule: `subject is "M-k1", data.id is "M-other"`}}, exact: true},
		{name: "data.id not a string", body: mem(data("id", 7)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.id", rule: "must be a string"}}},
		{name: "a repeated version", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"version":5`, `"version":1,"version":50`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.version", rule: "must appear once"}}, exact: true},
		{name: "a repeated key spelled with an escape", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"version":5`, `"version":5,"ver\u0073ion":50`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.version", rule: "must appear once"}}, exact: true},
		{name: "a repeated subject", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"subject":"M-k1"`, `"subject":"M-k1","subject":"M-k2"`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "subject", rule: "must appear once"}}, exact: true},
		{name: "a case variant of data", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"data":`, `"Data":{"version":99},"data":`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "Data", rule: "is not a CloudEvents attribute name"}}, exact: true},
		{name: "version 2^53", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"version":5`, `"version":9007199254740992`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.version", rule: "9007199254740991"}}, exact: true},
		{name: "version 2^63-1", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"version":5`, `"version":9223372036854775807`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.version", rule: "9007199254740991"}}, exact: true},
		{name: "id of 256 bytes", body: mem(func(e map[string]any) { e["id"] = long }), status: 422,
			want: []FieldErrorWant{{event: zero, field: "id", rule: "255"}}},
		{name: "subject of 64 KiB", body: mem(func(e map[string]any) { e["subject"] = strings.Repeat("s", 64<<10) }), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "subject", rule: "255"}}},
		{name: "subject of 400 bytes in 200 characters", body: mem(func(e map[string]any) { e["subject"] = wide }), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "subject", rule: "at most 255 bytes"}}, exact: true},
		{name: "source of 256 bytes", body: mem(func(e map[string]any) { e["source"] = long }), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "source", rule: "255"}}},
		{name: "a lone surrogate", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"gold"`, `"g\ud800ld"`, 1)), status: 422,
			want: []FieldErrorWant{{event: zero, id: "k1", field: "data.tier", rule: "lone UTF-16 surrogate"}}, exact: true},
		{name: "invalid UTF-8", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"gold"`, "\"g\xffld\"", 1)), status: 400,
			want: []FieldErrorWant{{field: "body", rule: "not valid UTF-8"}}, exact: true},
		{name: "nesting 100 deep", body: []byte(strings.Replace(string(mem(func(map[string]any) {})), `"gold"`, strings.Repeat("[", 100)+strings.Repeat("]", 100), 1)), status: 400,
			want: []FieldErrorWant{{field: "body", rule: "nests deeper than 64 levels"}}, exact: true},
		{name: "a segment id with a colon", body: mustJSON(t, ev("seg-1", "loyalty.segment.membership.changed", "tier:gold",
			map[string]any{"version": 1, "segment_id": "tier:gold", "added": []string{"M-1"}, "removed": []string{}})), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "subject", rule: "must not contain ':'"}}, exact: true},
		{name: "a member id of 256 bytes", body: mustJSON(t, ev("seg-1", "loyalty.segment.membership.changed", "gold",
			map[string]any{"version": 1, "segment_id": "gold", "added": []string{long}, "removed": []string{}})), status: 422,
			want: []FieldErrorWant{{event: zero, id: "seg-1", field: "data.added[0]", rule: "255"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.MaxBodyBytes = 1 << 20 })
			res := ts.post(t, "crm", structuredCT, tc.body, nil)
			require.Equal(t, tc.status, res.status, "body: %s", res.body)
			p := res.problem(t)
			for _, w := range tc.want {
				assert.True(t, hasFault(p.Errors, w), "no fault %+v in %s", w, res.body)
			}
			if tc.exact {
				assert.Len(t, p.Errors, len(tc.want), "faults: %s", res.body)
			}
			assert.Empty(t, ts.pub.Calls())
			assert.Less(t, len(res.body), 8<<10, "the answer does not echo a long value whole")
		})
	}

	t.Run("the largest version and longest key are accepted", func(t *testing.T) {
		ts := newTestServer(t, nil, nil)
		key := strings.Repeat("k", 255)
		body := mustJSON(t, ev("ok-1", "loyalty.member.upserted", key, map[string]any{"id": key, "version": int64(1<<53 - 1)}))
		res := ts.post(t, "crm", structuredCT, body, nil)
		require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	})
}

func TestEdgeEventLargerThanTheBusTakes(t *testing.T) {
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.MaxEventBytes = 4096 })
	big := mustJSON(t, []any{member("small", 1), ev("big", "loyalty.member.upserted", "M-big",
		map[string]any{"version": 1, "notes": strings.Repeat("n", 5000)})})
	res := ts.post(t, "crm", "application/cloudevents-batch+json", big, nil)
	require.Equal(t, http.StatusUnprocessableEntity, res.status, "refused for good, not 503 forever: %s", res.body)
	assert.True(t, hasFault(res.problem(t).Errors, FieldErrorWant{event: intp(1), id: "big", field: "event", rule: "at most 4096 bytes"}))
	assert.Empty(t, ts.pub.Calls())
}

func TestEdgeConcurrentIngressIsCapped(t *testing.T) {
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.MaxConcurrentIngress = 2 })
	srv := httptest.NewServer(ts.h)
	t.Cleanup(srv.Close)
	// Two requests whose bodies stall after a few bytes hold both slots.
	for range 2 {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		_, err = fmt.Fprintf(conn, "POST /v1/events/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: 1000\r\n\r\n[{\"specversion\"")
		require.NoError(t, err)
	}
	// The next request is told to wait, before its body is read.
	var resp *http.Response
	require.Eventually(t, func() bool {
		r, err := http.Post(srv.URL+"/v1/events/crm", structuredCT, bytes.NewReader(mustJSON(t, member("c1", 1))))
		if err != nil {
			return false
		}
		if r.StatusCode != http.StatusTooManyRequests {
			r.Body.Close()
			return false
		}
		resp = r
		return true
	}, 5*time.Second, 20*time.Millisecond)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, string(body), "max_concurrent_ingress")
	assert.GreaterOrEqual(t, rejected(t, ts, "crm", "unknown", "too_busy"), 1.0, "counted")
}

func TestEdgeSlotsComeBack(t *testing.T) {
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.MaxConcurrentIngress = 1 })
	srv := httptest.NewServer(ts.h)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "POST /v1/events/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: 1000\r\n\r\n[{")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := http.Post(srv.URL+"/v1/events/crm", structuredCT, bytes.NewReader(mustJSON(t, member("c1", 1))))
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusTooManyRequests
	}, 5*time.Second, 20*time.Millisecond)
	conn.Close() // the stalled client goes away: its slot comes back
	require.Eventually(t, func() bool {
		r, err := http.Post(srv.URL+"/v1/events/crm", structuredCT, bytes.NewReader(mustJSON(t, member("c2", 1))))
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusAccepted
	}, 5*time.Second, 20*time.Millisecond)
}

func TestEdgeSourcesMustBeSignedOrInsecure(t *testing.T) {
	_, err := openapi.NewServer(openapi.ServerConfig{Sources: map[string]openapi.SourceConfig{"ledger": {}}},
		&recordingPublisher{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"ledger" has no signing keys`)
	_, err = openapi.NewServer(openapi.ServerConfig{Sources: map[string]openapi.SourceConfig{"ledger": {Keys: [][]byte{[]byte("k")}, Insecure: true}}},
		&recordingPublisher{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "choose one")
}

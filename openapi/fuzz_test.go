package openapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// The ingress fuzz targets drive the real handler, one per CloudEvents mode,
// against an insecure source ("crm") and a signed one ("ledger", whose body
// the fuzzer may change after it was signed). Beyond "no panic", every
// answer must keep the contract of openapi/hub.yaml:
//
//   - never 5xx (the publisher always succeeds);
//   - every answer matches hub.yaml (status, headers, body schema);
//   - every 4xx is application/problem+json, publishes nothing, and lists at
//     least one fault, each naming a field and a rule, in an event of the
//     request;
//   - a body changed after it was signed is 401; a signed binary request is
//     415;
//   - every 202 publishes exactly the accepted events, and each published
//     message agrees with itself and with the request: see checkFuzzPublished;
//   - a request accepted once is accepted again, with the same answer and
//     the same messages (a signed one sent again as it was is a replay:
//     202, replayed, nothing published).
//
// Run one with: go test -run '^$' -fuzz '^FuzzIngressBatch$' -fuzztime 5m ./openapi/

// fuzzKey signs the "ledger" source's requests.
const fuzzKey = "fuzz-ledger-signing-key-0123456789"

// Limits of the fuzzed server, small so the fuzzer reaches them.
const (
	fuzzMaxBody    = 64 << 10
	fuzzMaxBatch   = 16
	fuzzMaxEvent   = 4096
	fuzzMaxDepth   = openapi.MaxJSONDepth
	fuzzMaxIDLen   = openapi.MaxIDBytes
	fuzzMaxVersion = openapi.MaxVersion
)

type fuzzMode int

const (
	fuzzStructured fuzzMode = iota
	fuzzBatch
	fuzzBinary
)

var fuzzContentType = map[fuzzMode]string{
	fuzzStructured: openapi.ContentTypeStructured,
	fuzzBatch:      openapi.ContentTypeBatch,
	fuzzBinary:     openapi.ContentTypeBinary,
}

// fuzzServer is one Server for a whole fuzz run (each fuzz worker process
// builds its own), with a router on hub.yaml to check its answers.
type fuzzServer struct {
	h      http.Handler
	pub    *recordingPublisher
	router routers.Router
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	pub := &recordingPublisher{}
	srv, err := openapi.NewServer(openapi.ServerConfig{
		Sources: map[string]openapi.SourceConfig{
			"crm":    {Insecure: true},
			"ledger": {Keys: [][]byte{[]byte(fuzzKey)}},
		},
		Metrics:        prometheus.NewRegistry(),
		MaxBodyBytes:   fuzzMaxBody,
		MaxBatchEvents: fuzzMaxBatch,
		MaxEventBytes:  fuzzMaxEvent,
	}, pub, nil)
	if err != nil {
		f.Fatal(err)
	}
	doc, err := openapi.Spec()
	if err != nil {
		f.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{h: srv.Handler(), pub: pub, router: router}
}

// fuzzRequest is one POST /v1/events/{source}.
type fuzzRequest struct {
	mode   fuzzMode
	source string
	body   []byte
	header http.Header
}

// fuzzAnswer is the handler's answer and what it published.
type fuzzAnswer struct {
	status int
	header http.Header
	body   []byte
	calls  []publishCall
}

func (a fuzzAnswer) String() string {
	return fmt.Sprintf("%d %s", a.status, a.body)
}

// send serves req and checks the answer against hub.yaml.
func (s *fuzzServer) send(t *testing.T, req fuzzRequest) fuzzAnswer {
	t.Helper()
	s.pub.mu.Lock()
	s.pub.calls = nil
	s.pub.mu.Unlock()
	r := httptest.NewRequest(http.MethodPost, "/v1/events/"+req.source, bytes.NewReader(req.body))
	r.Header.Set("Content-Type", fuzzContentType[req.mode])
	for k, v := range req.header {
		r.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	ans := fuzzAnswer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes(), calls: s.pub.Calls()}
	if ans.status >= 500 {
		t.Fatalf("5xx answer: %s", ans)
	}

	vr := httptest.NewRequest(http.MethodPost, r.URL.Path, bytes.NewReader(req.body))
	route, params, err := s.router.FindRoute(vr)
	if err != nil {
		t.Fatalf("hub.yaml has no route for %s: %v", vr.URL.Path, err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts},
		Status:                 ans.status,
		Header:                 ans.header,
		Body:                   io.NopCloser(bytes.NewReader(ans.body)),
		Options:                opts,
	})
	if err != nil {
		t.Fatalf("the answer does not match hub.yaml: %v\nanswer: %s", err, ans)
	}
	return ans
}

var fuzzDeliveryIDs atomic.Int64

// fuzzSign adds a fresh Standard Webhooks delivery of body to h.
func fuzzSign(h http.Header, body []byte) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for k, v := range signAt(fuzzKey, body, time.Now(), fmt.Sprintf("msg_fuzz_%d", fuzzDeliveryIDs.Add(1))) {
		out.Set(k, v)
	}
	return out
}

// fuzzTamper is body with tamper written over it: tamper's first two bytes
// pick an offset, the rest replace body's bytes from there (extending it).
func fuzzTamper(body, tamper []byte) []byte {
	if len(tamper) < 2 {
		return body
	}
	off := int(binary.BigEndian.Uint16(tamper)) % (len(body) + 1)
	patch := tamper[2:]
	out := append(append([]byte(nil), body[:off]...), patch...)
	if end := off + len(patch); end < len(body) {
		out = append(out, body[end:]...)
	}
	return out
}

// ingress sends body (with header) once, checks the answer, and sends an
// accepted request again. sign sends it to the signed source, signed
// before tamper changes it.
func (s *fuzzServer) ingress(t *testing.T, mode fuzzMode, body []byte, header http.Header, sign bool, tamper []byte) {
	t.Helper()
	req := fuzzRequest{mode: mode, source: "crm", body: body, header: header}
	if !sign {
		ans := s.send(t, req)
		acc := checkFuzzAnswer(t, req, ans)
		if acc == nil {
			return
		}
		again := s.send(t, req)
		if again.status != http.StatusAccepted {
			t.Fatalf("accepted once, then %s", again)
		}
		fuzzSameAcceptance(t, ans, again, false)
		return
	}

	req.source = "ledger"
	req.header = fuzzSign(header, body)
	req.body = fuzzTamper(body, tamper)
	ans := s.send(t, req)
	checkFuzzAnswer(t, req, ans)
	switch {
	case !bytes.Equal(req.body, body):
		if ans.status != http.StatusUnauthorized {
			t.Fatalf("a body changed after it was signed: want 401, got %s", ans)
		}
		return
	case mode == fuzzBinary:
		if ans.status != http.StatusUnsupportedMediaType {
			t.Fatalf("binary mode to a signed source: want 415, got %s", ans)
		}
		return
	case ans.status != http.StatusAccepted:
		return
	}
	// The same delivery again is a replay; the same body in a new delivery
	// is accepted and published again.
	replay := s.send(t, req)
	if replay.status != http.StatusAccepted {
		t.Fatalf("a signed delivery accepted once, sent again: want 202 (replayed), got %s", replay)
	}
	fuzzSameAcceptance(t, ans, replay, true)
	req.header = fuzzSign(header, body)
	again := s.send(t, req)
	if again.status != http.StatusAccepted {
		t.Fatalf("a signed body accepted once, in a new delivery: want 202, got %s", again)
	}
	fuzzSameAcceptance(t, ans, again, false)
}

// fuzzSameAcceptance checks that again answers like first: the same ids and,
// unless it is a replay (which publishes nothing), the same messages.
func fuzzSameAcceptance(t *testing.T, first, again fuzzAnswer, replay bool) {
	t.Helper()
	var a, b openapi.Accepted
	if err := json.Unmarshal(first.body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Replayed != replay {
		t.Fatalf("sent again: replayed is %v, want %v: %s", b.Replayed, replay, again.body)
	}
	if a.Accepted != b.Accepted || !slices.Equal(a.IDs, b.IDs) {
		t.Fatalf("sent again, answered differently:\nfirst: %s\nagain: %s", first.body, again.body)
	}
	if replay {
		if len(again.calls) > 0 {
			t.Fatalf("a replayed delivery was published again: %d calls", len(again.calls))
		}
		return
	}
	if len(first.calls) != len(again.calls) {
		t.Fatalf("sent again: %d publish calls, first %d", len(again.calls), len(first.calls))
	}
	for i := range first.calls {
		c1, c2 := first.calls[i], again.calls[i]
		if c1.topic != c2.topic || len(c1.msgs) != len(c2.msgs) {
			t.Fatalf("sent again: call %d is %s with %d messages, first %s with %d", i, c2.topic, len(c2.msgs), c1.topic, len(c1.msgs))
		}
		for j := range c1.msgs {
			m1, m2 := c1.msgs[j], c2.msgs[j]
			if m1.UUID != m2.UUID || !bytes.Equal(m1.Payload, m2.Payload) || !maps.Equal(fuzzStableMetadata(m1), fuzzStableMetadata(m2)) {
				t.Fatalf("sent again: message %d of %s differs:\nfirst %s %v %s\nagain %s %v %s", j, c1.topic,
					m1.UUID, m1.Metadata, m1.Payload, m2.UUID, m2.Metadata, m2.Payload)
			}
		}
	}
}

// fuzzStableMetadata is a message's metadata less the correlation id, which is
// each request's own.
func fuzzStableMetadata(m *message.Message) map[string]string {
	md := maps.Clone(map[string]string(m.Metadata))
	delete(md, middleware.CorrelationIDMetadataKey)
	return md
}

// checkFuzzAnswer checks the properties every answer has, and those of a 202;
// it returns the acceptance of a 202, nil otherwise.
func checkFuzzAnswer(t *testing.T, req fuzzRequest, ans fuzzAnswer) *openapi.Accepted {
	t.Helper()
	switch {
	case ans.status == http.StatusAccepted:
		var acc openapi.Accepted
		if err := json.Unmarshal(ans.body, &acc); err != nil {
			t.Fatalf("202 body is not an acceptance: %v: %s", err, ans.body)
		}
		checkFuzzPublished(t, req, acc, ans.calls)
		return &acc
	case ans.status >= 400:
		checkFuzzProblem(t, req, ans)
		return nil
	}
	t.Fatalf("unexpected status: %s", ans)
	return nil
}

// checkFuzzProblem checks a 4xx: a problem document listing faults, each
// naming a field and a rule, in the request's events; nothing published.
func checkFuzzProblem(t *testing.T, req fuzzRequest, ans fuzzAnswer) {
	t.Helper()
	if ct := ans.header.Get("Content-Type"); ct != openapi.ProblemContentType {
		t.Fatalf("a %d answer has Content-Type %q, want %s: %s", ans.status, ct, openapi.ProblemContentType, ans.body)
	}
	var p openapi.Problem
	if err := json.Unmarshal(ans.body, &p); err != nil {
		t.Fatalf("a %d answer is not a problem: %v: %s", ans.status, err, ans.body)
	}
	if p.Status != ans.status {
		t.Fatalf("problem status %d in a %d answer", p.Status, ans.status)
	}
	if len(p.Errors) == 0 {
		t.Fatalf("a %d answer lists no fault: %s", ans.status, ans.body)
	}
	events := 1
	if req.mode == fuzzBatch {
		events = len(gjson.ParseBytes(req.body).Array()) // the faults' indexes are of a valid array only
	}
	for i, e := range p.Errors {
		if e.Field == "" || e.Rule == "" {
			t.Fatalf("fault %d names no field or no rule: %+v in %s", i, e, ans.body)
		}
		if e.Event != nil && (*e.Event < 0 || *e.Event >= events) {
			t.Fatalf("fault %d is in event %d of a request with %d: %s", i, *e.Event, events, ans.body)
		}
	}
	if n := len(ans.calls); n > 0 {
		t.Fatalf("a %d answer published %d calls", ans.status, n)
	}
}

// fuzzSentEvent is one event as the request sent it.
type fuzzSentEvent struct {
	id, typ, subject, source, time string
	hasTime                        bool
	data                           []byte
	attrs                          []string // top-level attribute names (structured and batched modes)
	raw                            []byte   // the whole event (structured and batched modes)
}

// fuzzSentEvents reads the events of an accepted request.
func fuzzSentEvents(t *testing.T, req fuzzRequest) []fuzzSentEvent {
	t.Helper()
	fromJSON := func(e gjson.Result) fuzzSentEvent {
		ev := fuzzSentEvent{
			id: e.Get("id").Str, typ: e.Get("type").Str, subject: e.Get("subject").Str,
			source: e.Get("source").Str, data: []byte(e.Get("data").Raw), raw: []byte(e.Raw),
		}
		if tm := e.Get("time"); tm.Exists() {
			ev.time, ev.hasTime = tm.Str, true
		}
		e.ForEach(func(k, _ gjson.Result) bool {
			ev.attrs = append(ev.attrs, k.Str)
			return true
		})
		return ev
	}
	switch req.mode {
	case fuzzStructured:
		return []fuzzSentEvent{fromJSON(gjson.ParseBytes(req.body))}
	case fuzzBatch:
		var out []fuzzSentEvent
		for _, e := range gjson.ParseBytes(req.body).Array() {
			out = append(out, fromJSON(e))
		}
		return out
	}
	attr := func(name string) (string, bool) {
		v, ok := req.header[http.CanonicalHeaderKey("ce-"+name)]
		if !ok {
			return "", false
		}
		d, err := url.PathUnescape(v[0])
		if err != nil {
			t.Fatalf("accepted with ce-%s %q, which does not percent-decode: %v", name, v[0], err)
		}
		return d, true
	}
	ev := fuzzSentEvent{data: req.body, raw: req.body}
	ev.id, _ = attr("id")
	ev.typ, _ = attr("type")
	ev.subject, _ = attr("subject")
	ev.source, _ = attr("source")
	ev.time, ev.hasTime = attr("time")
	return []fuzzSentEvent{ev}
}

var (
	fuzzAttributeName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	fuzzPlainInteger  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
)

// checkFuzzPublished checks a 202: the published messages are the accepted
// events, and each one agrees with itself and with the request.
func checkFuzzPublished(t *testing.T, req fuzzRequest, acc openapi.Accepted, calls []publishCall) {
	t.Helper()
	if acc.Replayed {
		t.Fatalf("replayed on a first delivery: %+v", acc)
	}
	// The body as a whole: valid UTF-8, no key twice in an object, no lone
	// surrogate, nesting within the limit.
	if !utf8.Valid(req.body) {
		t.Fatalf("accepted a body that is not UTF-8: %q", req.body)
	}
	if err := fuzzJSONOnce(req.body); err != nil {
		t.Fatalf("accepted a body with %v: %s", err, req.body)
	}

	sent := fuzzSentEvents(t, req)
	var ids []string
	first := map[string]fuzzSentEvent{}
	for _, e := range sent {
		f, dup := first[e.id]
		if !dup {
			first[e.id] = e
			ids = append(ids, e.id)
			continue
		}
		// One id, one event: a copy is accepted only when it is exact.
		if !reflect.DeepEqual(fuzzDecode(t, f.raw), fuzzDecode(t, e.raw)) {
			t.Fatalf("accepted two events with id %q and different content:\n%s\n%s", e.id, f.raw, e.raw)
		}
	}
	if !slices.Equal(acc.IDs, ids) {
		t.Fatalf("accepted ids %q; the request's ids, once each, in order, are %q", acc.IDs, ids)
	}
	if acc.Accepted != len(acc.IDs) {
		t.Fatalf("accepted %d with %d ids", acc.Accepted, len(acc.IDs))
	}
	if req.mode == fuzzBatch && len(sent) > fuzzMaxBatch {
		t.Fatalf("accepted a batch of %d events; the limit is %d", len(sent), fuzzMaxBatch)
	}

	byID := map[string]*message.Message{}
	topics := map[string]bool{}
	n := 0
	for _, c := range calls {
		if topics[c.topic] {
			t.Fatalf("topic %s published in two calls", c.topic)
		}
		topics[c.topic] = true
		for _, m := range c.msgs {
			n++
			if _, dup := byID[m.UUID]; dup {
				t.Fatalf("event %q published twice", m.UUID)
			}
			byID[m.UUID] = m
			ev := checkFuzzMessage(t, m)
			if size := fuzzMessageSize(m); size > fuzzMaxEvent {
				t.Fatalf("event %q takes %d bytes on the bus (payload, UUID and every header); the bus takes at most %d", m.UUID, size, fuzzMaxEvent)
			}
			if want := event.Topic(req.source, ev.Entity()); c.topic != want {
				t.Fatalf("event %q of type %s published to %s, want %s", ev.ID, ev.Type, c.topic, want)
			}
		}
	}
	if n != acc.Accepted {
		t.Fatalf("accepted %d events, published %d", acc.Accepted, n)
	}
	for _, id := range ids {
		m := byID[id]
		if m == nil {
			t.Fatalf("accepted event %q was not published", id)
		}
		ev, _ := event.FromMessage(m)
		checkFuzzAsSent(t, req, first[id], ev)
	}
}

// checkFuzzMessage checks that a published message agrees with itself, and
// returns its event.
func checkFuzzMessage(t *testing.T, m *message.Message) *event.Event {
	t.Helper()
	ev, err := event.FromMessage(m)
	if err != nil {
		t.Fatalf("a published message does not decode: %v: %v %s", err, m.Metadata, m.Payload)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("event %q: %s\nmetadata: %v\npayload: %s", ev.ID, fmt.Sprintf(format, args...), m.Metadata, m.Payload)
	}
	if ev.ID != m.UUID {
		fail("message UUID %q", m.UUID)
	}
	for k, v := range map[string]string{event.MetaType: ev.Type, event.MetaSource: ev.Source, event.MetaSubject: ev.Subject, event.MetaOrigin: ev.Origin} {
		if m.Metadata.Get(k) != v {
			fail("metadata %s is %q, the event says %q", k, m.Metadata.Get(k), v)
		}
	}
	if _, ok := event.Types[ev.Type]; !ok {
		fail("unknown type %q", ev.Type)
	}
	if ev.SpecVersion != "1.0" {
		fail("specversion %q", ev.SpecVersion)
	}
	for name, v := range map[string]string{"id": ev.ID, "source": ev.Source, "subject": ev.Subject} {
		if v == "" || len(v) > fuzzMaxIDLen || fuzzHasControl(v) {
			fail("%s %q: must be 1 to %d bytes without control characters", name, v, fuzzMaxIDLen)
		}
	}
	if at := m.Metadata.Get(event.MetaTime); ev.Time.IsZero() != (at == "") || (at != "" && at != ev.Time.UTC().Format(time.RFC3339Nano)) {
		fail("metadata %s %q for time %v", event.MetaTime, at, ev.Time)
	}

	// data: an object holding every key once, and an integer version that
	// the metadata carries.
	if err := fuzzJSONOnce(ev.Data); err != nil {
		fail("data with %v", err)
	}
	data := gjson.ParseBytes(ev.Data)
	if !data.IsObject() {
		fail("data is not an object")
	}
	version := data.Get("version")
	if version.Type != gjson.Number || !fuzzPlainInteger.MatchString(version.Raw) {
		fail("data.version %s is not a plain integer", version.Raw)
	}
	v, err := strconv.ParseInt(version.Raw, 10, 64)
	if err != nil || v < 0 || v > fuzzMaxVersion {
		fail("data.version %s: must be 0 to 2^53-1", version.Raw)
	}
	if meta := m.Metadata.Get(event.MetaVersion); meta != strconv.FormatInt(v, 10) || ev.Version != v {
		fail("metadata version %q, event version %d; data.version is %s", meta, ev.Version, version.Raw)
	}
	if id := data.Get("id"); id.Exists() && (id.Type != gjson.String || id.Str != ev.Subject) {
		fail("data.id %s is not the subject %q", id.Raw, ev.Subject)
	}
	if ev.Type == event.TypeSegmentChanged {
		if seg := data.Get("segment_id"); seg.Type != gjson.String || seg.Str != ev.Subject {
			fail("data.segment_id %s is not the subject %q", seg.Raw, ev.Subject)
		}
		if strings.Contains(ev.Subject, ":") {
			fail("a segment subject holds ':'")
		}
		added := map[string]bool{}
		for _, list := range []string{"added", "removed"} {
			members := data.Get(list)
			if !members.IsArray() {
				fail("data.%s is not an array", list)
			}
			for _, mem := range members.Array() {
				if mem.Type != gjson.String || len(mem.Str) > fuzzMaxIDLen || fuzzHasControl(mem.Str) {
					fail("data.%s member %s: must be a string of at most %d bytes without control characters", list, mem.Raw, fuzzMaxIDLen)
				}
				if list == "added" {
					added[mem.Str] = true
				} else if added[mem.Str] {
					fail("member %q both added and removed", mem.Str)
				}
			}
		}
	}
	return ev
}

// checkFuzzAsSent checks that a published event is the event the request sent.
func checkFuzzAsSent(t *testing.T, req fuzzRequest, sent fuzzSentEvent, ev *event.Event) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("event %q: %s\nrequest: %q %s", ev.ID, fmt.Sprintf(format, args...), req.header, req.body)
	}
	if ev.Origin != req.source {
		fail("origin %q, sent to %q", ev.Origin, req.source)
	}
	if ev.Type != sent.typ || ev.Subject != sent.subject || ev.Source != sent.source {
		fail("published as type %q subject %q source %q; sent as %q %q %q", ev.Type, ev.Subject, ev.Source, sent.typ, sent.subject, sent.source)
	}
	for _, a := range sent.attrs {
		if !fuzzAttributeName.MatchString(a) {
			fail("accepted with the attribute %q: not a CloudEvents attribute name", a)
		}
	}
	if sent.hasTime {
		at, err := time.Parse(time.RFC3339Nano, sent.time)
		if err != nil {
			fail("accepted with time %q: %v", sent.time, err)
		}
		if !at.Equal(ev.Time) {
			fail("time %v, sent %q", ev.Time, sent.time)
		}
	} else if !ev.Time.IsZero() {
		fail("time %v, sent none", ev.Time)
	}
	if got, want := fuzzDecode(t, ev.Data), fuzzDecode(t, sent.data); !reflect.DeepEqual(got, want) {
		fail("data %s, sent %s", ev.Data, sent.data)
	}
}

func fuzzDecode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// fuzzJSONOnce walks b's tokens and reports a key repeated in one object,
// nesting deeper than MaxJSONDepth, or a string decoded to U+FFFD where b
// spells none (a lone surrogate escape).
func fuzzJSONOnce(b []byte) error {
	type frame struct {
		keys      map[string]bool // nil in an array
		expectKey bool
	}
	spellsFFFD := bytes.Contains(b, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`))
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) && !spellsFFFD {
			return fmt.Errorf("string %q decoded from a lone surrogate or invalid UTF-8", s)
		}
		top := (*frame)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.keys != nil && top.expectKey {
			if top.keys[key] {
				return fmt.Errorf("key %q repeated", key)
			}
			top.keys[key] = true
			top.expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= fuzzMaxDepth {
				return fmt.Errorf("nesting deeper than %d", fuzzMaxDepth)
			}
			f := &frame{}
			if tok == json.Delim('{') {
				f.keys, f.expectKey = map[string]bool{}, true
			}
			stack = append(stack, f)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// fuzzMessageSize is what a message takes on the bus as the server counts
// it (ServerConfig.MaxEventBytes): payload, UUID, a 64-byte allowance, and
// each header with 4 bytes of framing.
func fuzzMessageSize(m *message.Message) int {
	n := len(m.Payload) + len(m.UUID) + 64
	for k, v := range m.Metadata {
		n += len(k) + len(v) + 4
	}
	return n
}

// fuzzEventOfSize is a valid member event that takes exactly size bytes on
// the bus without its correlation id, which the server adds after it
// compared the size with MaxEventBytes.
func fuzzEventOfSize(size int) map[string]any {
	sized := func(n int) (map[string]any, int) {
		e := ev("sized", event.TypeMemberUpserted, "M-sized", map[string]any{"version": 1, "notes": strings.Repeat("n", n)})
		at, _ := time.Parse(time.RFC3339, e["time"].(string))
		m, err := (&event.Event{ID: "sized", Source: e["source"].(string), SpecVersion: "1.0", Type: event.TypeMemberUpserted,
			Subject: "M-sized", Time: at, DataContentType: openapi.ContentTypeBinary, Data: fuzzJSON(e["data"]), Origin: "crm", Version: 1}).ToMessage()
		if err != nil {
			panic(err)
		}
		return e, fuzzMessageSize(m)
	}
	_, empty := sized(0) // each "n" of the notes is one byte more
	e, _ := sized(size - empty)
	return e
}

func fuzzHasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// fuzzHeaderValue reports whether v can arrive as an HTTP header value
// (net/http refuses control characters other than tab); the leading and
// trailing blanks a server trims are trimmed.
func fuzzHeaderValue(v string) (string, bool) {
	v = strings.Trim(v, " \t")
	return v, !strings.ContainsFunc(v, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
}

// Seeds.

func fuzzJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzWithData sets data.k in a structured event built by ev.
func fuzzWithData(e map[string]any, k string, v any) map[string]any {
	e["data"].(map[string]any)[k] = v
	return e
}

func fuzzWithAttr(e map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(e, k)
	} else {
		e[k] = v
	}
	return e
}

func fuzzSegment(id, subject string, data map[string]any) map[string]any {
	return ev(id, event.TypeSegmentChanged, subject, data)
}

// fuzzValidEvents are valid events of every type.
func fuzzValidEvents() []map[string]any {
	key := strings.Repeat("k", 255)
	return []map[string]any{
		member("s1", 7),
		ev("d1", event.TypeMemberDeleted, "M-1", map[string]any{"version": 8, "id": "M-1"}),
		ev("t1", event.TypeTransactionPosted, "T-1", map[string]any{"version": 0, "points": 50, "member_id": "M-1"}),
		ev("v1", event.TypeVoucherUpserted, "V 100%", map[string]any{"version": 12, "code": "SPRING", "id": "V 100%"}),
		fuzzSegment("g1", "SEG-1", map[string]any{"version": 4, "segment_id": "SEG-1", "added": []string{"M-1", "M-2"}, "removed": []string{"M-3"}}),
		fuzzWithAttr(member("n1", 1), "time", nil),
		fuzzWithAttr(fuzzWithAttr(member("x1", 2), "traceparent", "00-x"), "datacontenttype", nil),
		fuzzWithAttr(member("f1", 3), "time", "2026-03-01T10:00:00.5+01:00"),
		ev("ok-1", event.TypeMemberUpserted, key, map[string]any{"id": key, "version": int64(1<<53 - 1)}),
		fuzzWithData(member("u1", 5), "name", "Zoë <&> \u2028 \U0001F600"),
	}
}

// fuzzHostileEvents are structured bodies the hub must refuse (from the edge
// and ingress tests), as raw bytes.
func fuzzHostileEvents() [][]byte {
	m := func() []byte { return fuzzJSON(member("k1", 5)) }
	replace := func(b []byte, old, new string) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	long := strings.Repeat("x", 256)
	wide := strings.Repeat("é", 200)
	return [][]byte{
		fuzzJSON(fuzzWithData(member("k1", 5), "id", "M-other")),
		fuzzJSON(fuzzWithData(member("k1", 5), "id", 7)),
		replace(m(), `"version":5`, `"version":1,"version":50`),
		replace(m(), `"version":5`, `"version":5,"ver\u0073ion":50`),
		replace(m(), `"subject":"M-k1"`, `"subject":"M-k1","subject":"M-k2"`),
		replace(m(), `"data":`, `"Data":{"version":99},"data":`),
		replace(m(), `"data":`, `"":"","data":`),
		replace(m(), `"version":5`, `"version":9007199254740992`),
		replace(m(), `"version":5`, `"version":9223372036854775807`),
		replace(m(), `"version":5`, `"version":9223372036854775808`),
		replace(m(), `"version":5`, `"version":1e3`),
		replace(m(), `"version":5`, `"version":5.0`),
		replace(m(), `"version":5`, `"version":-0`),
		fuzzJSON(fuzzWithData(member("k1", 5), "version", -1)),
		fuzzJSON(fuzzWithData(member("k1", 5), "version", "5")),
		fuzzJSON(fuzzWithAttr(member("k1", 5), "id", long)),
		fuzzJSON(fuzzWithAttr(member("k1", 5), "subject", strings.Repeat("s", 300))),
		fuzzJSON(fuzzWithAttr(member("k1", 5), "subject", wide)),
		fuzzJSON(fuzzWithAttr(member("k1", 5), "source", long)),
		fuzzJSON(fuzzWithAttr(member("k1", 5), "subject", "M-1\r\nX-Evil: 1")),
		replace(m(), `"gold"`, `"g\ud800ld"`),
		replace(m(), `"gold"`, `"\ud83d\ude00"`),
		replace(m(), `"gold"`, "\"g\xffld\""),
		replace(m(), `"gold"`, strings.Repeat("[", 100)+strings.Repeat("]", 100)),
		replace(m(), `"gold"`, strings.Repeat("[", 63)+strings.Repeat("]", 63)),
		fuzzJSON(fuzzSegment("seg-1", "tier:gold", map[string]any{"version": 1, "segment_id": "tier:gold", "added": []string{"M-1"}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "gold", map[string]any{"version": 1, "segment_id": "gold", "added": []string{long}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "added": []any{"M-1", 7}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-2", "added": []string{}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "added": []string{"M-1", "M-2"}, "removed": []string{"M-2"}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "id": "SEG-1", "added": []string{}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "id": "SEG-2", "added": []string{}, "removed": []string{}})),
		fuzzJSON(fuzzSegment("seg-1", "SEG-1", map[string]any{"version": 1, "segment_id": "SEG-1", "id": 7, "added": []string{}, "removed": []string{}})),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "subject", nil)),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "subject", "")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "type", "loyalty.member.exploded")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "type", nil)),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "specversion", "0.3")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "time", "yesterday")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "time", "2026-03-01T10:00:00+24:00")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "time", "2026-02-30T10:00:00Z")),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "data", []int{1})),
		fuzzJSON(fuzzWithAttr(member("e1", 1), "datacontenttype", "text/plain")),
		fuzzJSON(fuzzWithAttr(fuzzWithAttr(fuzzWithData(member("e1", 1), "version", "x"), "source", nil), "subject", nil)),
		[]byte(`{"specversion": "1.0", "id": x}`),
		[]byte(`{"specversion": "1.0"`),
		[]byte(`{"a":1} {"b":2}`),
		[]byte(`[1]`),
		[]byte(`null`),
		nil,
	}
}

func FuzzIngressStructured(f *testing.F) {
	s := newFuzzServer(f)
	for _, e := range fuzzValidEvents() {
		b := fuzzJSON(e)
		f.Add(b, false, []byte(nil))
		f.Add(b, true, []byte(nil))
		f.Add(b, true, []byte{0, 40, 'X'})
	}
	for _, b := range fuzzHostileEvents() {
		f.Add(b, false, []byte(nil))
	}
	f.Add(fuzzJSON(fuzzEventOfSize(fuzzMaxEvent)), false, []byte(nil))
	f.Add([]byte(`{"specversion":"1.0","id":"s-1","source":"/crm","type":"loyalty.member.upserted",`+
		`"subject":"M-1","time":"2026-03-01T10:00:00.5+01:00","data":{"version":9007199254740991,"tier":"gold"},"traceparent":"00-x"}`), false, []byte(nil))
	f.Fuzz(func(t *testing.T, body []byte, sign bool, tamper []byte) {
		s.ingress(t, fuzzStructured, body, nil, sign, tamper)
	})
}

func FuzzIngressBatch(f *testing.F) {
	s := newFuzzServer(f)
	valid := fuzzValidEvents()
	var all []any
	for _, e := range valid {
		all = append(all, e)
	}
	f.Add(fuzzJSON(all), false, []byte(nil))
	f.Add(fuzzJSON(all), true, []byte(nil))
	f.Add(fuzzJSON(all), true, []byte{1, 0, '"', '"'})
	f.Add(fuzzJSON([]any{member("c-1", 1), member("c-2", 2), member("c-1", 1)}), false, []byte(nil))
	f.Add(fuzzJSON([]any{member("c-1", 1), member("c-2", 2), member("c-1", 2)}), false, []byte(nil))
	f.Add(fuzzJSON([]any{member("c-1", 1), fuzzWithAttr(member("c-1", 1), "time", nil)}), false, []byte(nil))
	for _, e := range valid {
		f.Add(fuzzJSON([]any{e}), false, []byte(nil))
	}
	for _, b := range fuzzHostileEvents() {
		f.Add(append(append([]byte(`[`), b...), `]`...), false, []byte(nil))
		f.Add(append(append(append([]byte(`[`), fuzzJSON(member("ok", 1))...), ','), append(b, ']')...), false, []byte(nil))
	}
	var many []any
	for i := range fuzzMaxBatch + 1 {
		many = append(many, member(fmt.Sprintf("e%d", i), i))
	}
	f.Add(fuzzJSON(many), false, []byte(nil))
	f.Add(fuzzJSON(many[:fuzzMaxBatch]), false, []byte(nil))
	f.Add(fuzzJSON([]any{ev("big", event.TypeMemberUpserted, "M-big", map[string]any{"version": 1, "notes": strings.Repeat("n", 5000)})}), false, []byte(nil))
	for _, b := range []string{`[]`, `{}`, `[1]`, `[null]`, `[[]]`, `"x"`} {
		f.Add([]byte(b), false, []byte(nil))
	}
	f.Fuzz(func(t *testing.T, body []byte, sign bool, tamper []byte) {
		s.ingress(t, fuzzBatch, body, nil, sign, tamper)
	})
}

// fuzzBinaryHeaders are the ce-* attributes binary mode reads, in the order of
// FuzzIngressBinary's arguments; bit i of omit leaves header i out.
var fuzzBinaryHeaders = []string{"ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time"}

func FuzzIngressBinary(f *testing.F) {
	s := newFuzzServer(f)
	type seed struct {
		body                                     string
		specversion, id, source, typ, subject, t string
		omit                                     uint8
	}
	const noTime = 1 << 5
	seeds := []seed{
		{`{"version": 12, "code": "SPRING"}`, "1.0", "bin-1", "/crm/vouchers", event.TypeVoucherUpserted, "V%20100%25", "2026-03-01T10:00:00Z", 0},
		{`{"version":1,"tier":"gold","id":"M-1"}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":2}`, "1.0", "bin-2", "/crm", event.TypeMemberDeleted, "M-1", "2026-03-01T10:00:00.123+02:00", 0},
		{`{"version":0,"points":5}`, "1.0", "bin-3", "/crm", event.TypeTransactionPosted, "T-1", "", noTime},
		{`{"version":4,"segment_id":"SEG-1","added":["M-1"],"removed":[]}`, "1.0", "bin-4", "/crm", event.TypeSegmentChanged, "SEG-1", "", noTime},
		{`{"version":1}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime | 1<<4},
		{`{"version":1}`, "0.3", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1}`, "1.0", "bin-1", "/crm", "loyalty.tier.changed", "M-1", "", noTime},
		{`{"version":1}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "2026-13-01", 0},
		{`{"version":1}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M%zz", "", noTime},
		{`{"version":1}`, "1.0", "bin%0A1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M%FF", "", noTime},
		{`{"version":1}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, strings.Repeat("%C3%A9", 128), "", noTime},
		{`{"version":"1"}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1,"added":[],"removed":[]}`, "1.0", "bin-1", "/crm", event.TypeSegmentChanged, "M-1", "", noTime},
		{`{"version":1}`, "", "", "", "", "", "", 0xff},
		{`{"version":1,"id":"M-2"}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1,"version":2}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1,"x":"\ud800"}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`[{"version":1}]`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{`{"version":1e0}`, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
		{``, "1.0", "bin-1", "/crm", event.TypeMemberUpserted, "M-1", "", noTime},
	}
	for _, sd := range seeds {
		f.Add([]byte(sd.body), sd.specversion, sd.id, sd.source, sd.typ, sd.subject, sd.t, sd.omit, false, []byte(nil))
	}
	f.Add([]byte(seeds[0].body), "1.0", "bin-1", "/ledger", event.TypeMemberUpserted, "M-1", "", uint8(noTime), true, []byte(nil))
	f.Add([]byte(seeds[0].body), "1.0", "bin-1", "/ledger", event.TypeMemberUpserted, "M-1", "", uint8(noTime), true, []byte{0, 3, '7'})
	f.Fuzz(func(t *testing.T, body []byte, specversion, id, source, typ, subject, tm string, omit uint8, sign bool, tamper []byte) {
		h := http.Header{}
		for i, v := range []string{specversion, id, source, typ, subject, tm} {
			if omit&(1<<i) != 0 {
				continue
			}
			v, ok := fuzzHeaderValue(v)
			if !ok {
				return // net/http would refuse the request
			}
			h.Set(fuzzBinaryHeaders[i], v)
		}
		s.ingress(t, fuzzBinary, body, h, sign, tamper)
	})
}

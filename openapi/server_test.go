package openapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/openapi"
)

func TestSpecIsValidAndNamesTheEventTypes(t *testing.T) {
	doc, err := openapi.Spec()
	require.NoError(t, err)
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	enum := doc.Components.Schemas["EventType"].Value.Enum
	var types []string
	for _, v := range enum {
		types = append(types, v.(string))
	}
	assert.ElementsMatch(t, []string{
		"loyalty.member.upserted", "loyalty.member.deleted", "loyalty.transaction.posted",
		"loyalty.voucher.upserted", "loyalty.segment.membership.changed",
	}, types)
	assert.Len(t, doc.Components.Schemas["CloudEvent"].Value.Discriminator.Mapping, len(types))
}

func TestHealthReadyAndMetrics(t *testing.T) {
	var readyErr error
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) {
		c.Ready = func() error { return readyErr }
	})

	res := ts.do(t, request{method: http.MethodGet, path: "/healthz"})
	require.Equal(t, http.StatusOK, res.status)
	assert.JSONEq(t, `{"status":"ok"}`, string(res.body))

	res = ts.do(t, request{method: http.MethodGet, path: "/readyz"})
	require.Equal(t, http.StatusOK, res.status)
	assert.JSONEq(t, `{"status":"ready"}`, string(res.body))

	readyErr = errors.New("bus: jetstream not connected")
	res = ts.do(t, request{method: http.MethodGet, path: "/readyz"})
	require.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "5", res.header.Get("Retry-After"))
	assert.Contains(t, res.problem(t).Detail, "jetstream not connected")

	readyErr = nil
	ts.srv.SetAccepting(false)
	res = ts.do(t, request{method: http.MethodGet, path: "/readyz"})
	require.Equal(t, http.StatusServiceUnavailable, res.status, "a draining hub is not ready")
	assert.Contains(t, res.problem(t).Detail, "shutting down")
	res = ts.do(t, request{method: http.MethodGet, path: "/healthz"})
	require.Equal(t, http.StatusOK, res.status, "a draining hub is alive")
	ts.srv.SetAccepting(true)

	res = ts.do(t, request{path: "/v1/events/crm", contentType: "application/cloudevents+json", body: mustJSON(t, member("m-1", 1))})
	require.Equal(t, http.StatusAccepted, res.status)

	res = ts.do(t, request{method: http.MethodGet, path: "/metrics"})
	require.Equal(t, http.StatusOK, res.status)
	text := string(res.body)
	assert.Contains(t, text, `loyaltyhub_ingress_events_accepted_total{source="crm",type="loyalty.member.upserted"} 1`)
	assert.Contains(t, text, `loyaltyhub_http_request_duration_seconds_count{code="202",method="POST",operation="postEvents"} 1`)
	assert.Contains(t, text, `loyaltyhub_http_request_duration_seconds_count{code="503",method="GET",operation="getReady"} 2`)
}

func TestUnknownPathAndMethod(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	res := ts.do(t, request{method: http.MethodGet, path: "/v1/events/crm"})
	require.Equal(t, http.StatusMethodNotAllowed, res.status)
	assert.Equal(t, "POST", res.header.Get("Allow"))
	res.problem(t)

	res = ts.do(t, request{method: http.MethodGet, path: "/v2/anything"})
	require.Equal(t, http.StatusNotFound, res.status)
	assert.Contains(t, res.problem(t).Detail, "POST /v1/events/{source}")
	assert.Empty(t, ts.pub.Calls())
}

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	res := ts.do(t, request{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-Id": "abc-123"}})
	assert.Equal(t, "abc-123", res.header.Get("X-Request-Id"))
	res = ts.do(t, request{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-Id": strings.Repeat("x", 129)}})
	assert.Len(t, res.header.Get("X-Request-Id"), 36, "an over-long id is replaced by a UUID")
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	pub := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer pub.Close()
	cases := []struct {
		name string
		cfg  openapi.ServerConfig
		pub  bool
		want []string
	}{
		{name: "no sources", cfg: openapi.ServerConfig{Metrics: prometheus.NewRegistry()}, pub: true,
			want: []string{"sources: at least one source is required"}},
		{name: "bad names and limits", pub: true, cfg: openapi.ServerConfig{
			Sources:        map[string]openapi.SourceConfig{"Ledger": {Insecure: true}, "crm.eu": {Insecure: true}, "ok": {Insecure: true}},
			MaxBodyBytes:   -1,
			MaxBatchEvents: -5,
			Metrics:        prometheus.NewRegistry(),
		}, want: []string{`name "Ledger" must match`, `name "crm.eu" must match`, "max_body_bytes: -1", "max_batch_events: -5"}},
		{name: "no publisher", cfg: openapi.ServerConfig{Sources: map[string]openapi.SourceConfig{"crm": {Insecure: true}}, Metrics: prometheus.NewRegistry()},
			want: []string{"publisher: required"}},
		{name: "gatherer that cannot register", pub: true, cfg: openapi.ServerConfig{
			Sources: map[string]openapi.SourceConfig{"crm": {Insecure: true}},
			Metrics: prometheus.Gatherers{prometheus.NewRegistry()},
		}, want: []string{"registerer: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p message.Publisher
			if tc.pub {
				p = pub
			}
			_, err := openapi.NewServer(tc.cfg, p, nil)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestServersShareTheDefaultRegistry(t *testing.T) {
	labels := map[string]string{"source": "crm", "type": "loyalty.member.upserted"}
	before := gatheredValue(t, prometheus.DefaultGatherer, "loyaltyhub_ingress_events_accepted_total", labels)
	cfg := openapi.ServerConfig{Sources: map[string]openapi.SourceConfig{"crm": {Insecure: true}}}
	a, err := openapi.NewServer(cfg, &recordingPublisher{}, nil)
	require.NoError(t, err)
	b, err := openapi.NewServer(cfg, &recordingPublisher{}, nil)
	require.NoError(t, err, "a second server on the default registry reuses the collectors")
	for _, s := range []*openapi.Server{a, b} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/events/crm", strings.NewReader(string(mustJSON(t, member("d-1", 1)))))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		s.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	}
	assert.Equal(t, before+2, gatheredValue(t, prometheus.DefaultGatherer, "loyaltyhub_ingress_events_accepted_total", labels))
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "loyaltyhub_ingress_events_accepted_total{", "nil Metrics serves the default registry")
}

// TestOverRealHTTP runs the handler in a real HTTP server: a signed event is
// accepted, and a body streamed past the limit is cut off with 413.
func TestOverRealHTTP(t *testing.T) {
	ts := newTestServer(t, nil, func(c *openapi.ServerConfig) { c.MaxBodyBytes = 4096 })
	srv := httptest.NewServer(ts.h)
	defer srv.Close()

	body := mustJSON(t, member("h-1", 3))
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events/ledger", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	for k, v := range sign(ledgerSecret, body) {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Len(t, ts.pub.Calls(), 1)
	assert.Equal(t, "ledger.member", ts.pub.Calls()[0].topic)

	// No Content-Length: the limit is found while reading.
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(strings.Repeat(" ", 1024))
		for range 64 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err = http.NewRequest(http.MethodPost, srv.URL+"/v1/events/crm", pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	res, err = srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	var p openapi.Problem
	require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
	assert.Equal(t, int64(4096), p.Limit)
	assert.Len(t, ts.pub.Calls(), 1, "nothing more was published")
}

// TestConcurrentRequests sends good and bad requests at once (run with -race).
func TestConcurrentRequests(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := fmt.Sprintf("c-%d-%d", g, i)
				good, _ := json.Marshal([]any{member(id, i), member(id+"-b", i)})
				bad, _ := json.Marshal([]any{member(id+"-x", "v")})
				for _, b := range [][]byte{good, bad} {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodPost, "/v1/events/crm", strings.NewReader(string(b)))
					req.Header.Set("Content-Type", "application/cloudevents-batch+json")
					ts.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted && rec.Code != http.StatusUnprocessableEntity {
						t.Errorf("unexpected %d: %s", rec.Code, rec.Body)
					}
				}
			}
		}()
	}
	wg.Wait()
	calls := ts.pub.Calls()
	require.Len(t, calls, 40, "one publish per good request")
	for _, c := range calls {
		assert.Len(t, c.msgs, 2)
	}
	assert.Equal(t, 80.0, counter(t, ts, "loyaltyhub_ingress_events_accepted_total", "crm", "loyalty.member.upserted"))
	assert.Equal(t, 40.0, rejected(t, ts, "crm", "loyalty.member.upserted", "invalid"))
}

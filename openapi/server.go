package openapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loyaltyhub/loyaltyhub/pipeline/event"
)

// Defaults of ServerConfig.
const (
	// DefaultMaxBodyBytes is the default ServerConfig.MaxBodyBytes: 1 MiB.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultMaxBatchEvents is the default ServerConfig.MaxBatchEvents.
	DefaultMaxBatchEvents = 1000
	// DefaultRetryAfter is the default ServerConfig.RetryAfter.
	DefaultRetryAfter = 5 * time.Second
	// DefaultTolerance is the default SourceConfig.Tolerance.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxConcurrentIngress is the default ServerConfig.MaxConcurrentIngress.
	DefaultMaxConcurrentIngress = 64
	// MaxIDBytes bounds an event's id, source and subject (and a member id
	// in a segment change), in bytes: 255 is Salesforce's external id limit,
	// and each travels in a bus message header.
	MaxIDBytes = event.MaxKeyBytes
	// MaxVersion is the largest data.version accepted: 2^53-1, the largest
	// integer every JSON reader carries exactly.
	MaxVersion = event.MaxVersion
)

const (
	headerRequestID  = "X-Request-Id"
	maxRequestIDLen  = 128
	sourceNameSyntax = `^[a-z0-9][a-z0-9_-]{0,62}$`
)

var sourceNameRE = regexp.MustCompile(sourceNameSyntax)

// SourceConfig is one declared source of events: a system allowed to POST to
// /v1/events/{source}.
type SourceConfig struct {
	// Keys are the source's signing keys (raw HMAC-SHA256 keys, at least
	// one unless Insecure): every request must carry a Standard Webhooks
	// signature (webhook-id, webhook-timestamp, webhook-signature) made with
	// one of them. Several keys allow rotation. Never logged.
	Keys [][]byte
	// Tolerance is how far webhook-timestamp may be from the hub's clock,
	// and how long an accepted delivery id is remembered against replays.
	// Default 5m.
	Tolerance time.Duration
	// Insecure accepts unsigned requests. Exactly one of Keys and Insecure
	// must be set; the server logs a warning for every insecure source.
	Insecure bool
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Sources are the declared sources by name; the name is the {source} path
	// parameter and the first part of the bus topics "<source>.<entity>".
	// Names match ^[a-z0-9][a-z0-9_-]{0,62}$. At least one is required.
	Sources map[string]SourceConfig
	// MaxBodyBytes is the largest request body accepted, in bytes; larger
	// bodies get 413. Default 1 MiB (1048576).
	MaxBodyBytes int64
	// MaxBatchEvents is the most events one batched request may hold; more
	// get 413. Default 1000.
	MaxBatchEvents int
	// RetryAfter is what 503 answers tell clients to wait before retrying,
	// rounded up to whole seconds. Default 5s.
	RetryAfter time.Duration
	// Ready reports whether the hub can take events (bus connected, store
	// open); GET /readyz answers 503 with its error. Nil means always ready.
	Ready func() error
	// Metrics is what GET /metrics exposes. Nil means prometheus.DefaultGatherer.
	Metrics prometheus.Gatherer
	// Registerer is where the server registers its own metrics. Nil means
	// Metrics when that is also a Registerer (a *prometheus.Registry), and
	// prometheus.DefaultRegisterer when Metrics is nil.
	Registerer prometheus.Registerer
	// Admin serves the admin API (syncs, dead letters, replay). Nil answers 503.
	Admin Admin
	// AdminToken, when set, is the bearer token the admin API requires;
	// when empty, the admin API answers only loopback requests.
	AdminToken string
	// Deliveries remembers accepted signed deliveries against replays (the
	// state store). Nil keeps them in this process's memory.
	Deliveries Deliveries
	// MaxConcurrentIngress is the most POST /v1/events requests served at
	// once; more get 429 with Retry-After before their bodies are read.
	// Default 64.
	MaxConcurrentIngress int
	// MaxEventBytes is the largest event the bus stores (its message size
	// limit, headers included); a larger event is refused with 422 rather
	// than failing on the bus again and again. 0: no limit of its own.
	MaxEventBytes int
}

func (c *ServerConfig) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.MaxConcurrentIngress == 0 {
		c.MaxConcurrentIngress = DefaultMaxConcurrentIngress
	}
	for name, src := range c.Sources {
		if src.Tolerance == 0 {
			src.Tolerance = DefaultTolerance
			c.Sources[name] = src
		}
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.DefaultGatherer
		if c.Registerer == nil {
			c.Registerer = prometheus.DefaultRegisterer
		}
	}
	if c.Registerer == nil {
		if reg, ok := c.Metrics.(prometheus.Registerer); ok {
			c.Registerer = reg
		}
	}
}

// Validate reports every problem of c.
func (c *ServerConfig) Validate() error {
	var errs []error
	if len(c.Sources) == 0 {
		errs = append(errs, errors.New("sources: at least one source is required"))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Sources)) {
		if !sourceNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("sources: name %q must match %s (lowercase letters, digits, '_' and '-')", name, sourceNameSyntax))
		}
		src := c.Sources[name]
		switch {
		case len(src.Keys) == 0 && !src.Insecure:
			errs = append(errs, fmt.Errorf("sources: %q has no signing keys; give it keys, or declare it insecure to accept unsigned requests", name))
		case len(src.Keys) > 0 && src.Insecure:
			errs = append(errs, fmt.Errorf("sources: %q has signing keys and is declared insecure; choose one", name))
		}
		for i, k := range src.Keys {
			if len(k) == 0 {
				errs = append(errs, fmt.Errorf("sources: %q: key %d is empty", name, i))
			}
		}
		if src.Tolerance < 0 {
			errs = append(errs, fmt.Errorf("sources: %q: tolerance %s must be positive", name, src.Tolerance))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d must be positive (0 means the default, %d)", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.MaxBatchEvents < 0 {
		errs = append(errs, fmt.Errorf("max_batch_events: %d must be positive (0 means the default, %d)", c.MaxBatchEvents, DefaultMaxBatchEvents))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry_after: %s must be positive (0 means the default, %s)", c.RetryAfter, DefaultRetryAfter))
	}
	if c.MaxConcurrentIngress < 0 {
		errs = append(errs, fmt.Errorf("max_concurrent_ingress: %d must be positive (0 means the default, %d)", c.MaxConcurrentIngress, DefaultMaxConcurrentIngress))
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, fmt.Errorf("max_event_bytes: %d must be 0 (no limit) or positive", c.MaxEventBytes))
	}
	if c.Registerer == nil {
		errs = append(errs, errors.New("registerer: required when Metrics is not a prometheus.Registerer"))
	}
	return errors.Join(errs...)
}

// Server is the hub's HTTP server: it validates every request against
// hub.yaml and serves the operations declared there.
type Server struct {
	cfg      ServerConfig
	pub      message.Publisher
	logger   *slog.Logger
	router   routers.Router
	handlers map[string]operationHandler
	metrics  *metrics
	metricsH http.Handler
	// eventSchema is components.schemas.CloudEvent, to check binary-mode events.
	eventSchema *openapi3.Schema
	accepting   atomic.Bool
	sources     map[string]*source
	deliveries  Deliveries
	ingress     chan struct{} // a slot per request being served
	sourceList  string        // declared source names, sorted, for error messages
	operations  string        // every operation of hub.yaml, "GET /v1/syncs, ...", for 404s
	retryAfter  string        // Retry-After header value, in seconds
}

// operationHandler serves one operation of hub.yaml. The request has been
// matched to route; handlers validate it themselves (validateRequest) so
// that each can order its checks.
type operationHandler func(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string)

// NewServer builds a Server publishing accepted events to pub. A nil logger
// discards logs. The server starts accepting events (see SetAccepting).
func NewServer(cfg ServerConfig, pub message.Publisher, logger *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	err := cfg.Validate()
	if pub == nil {
		err = errors.Join(err, errors.New("publisher: required"))
	}
	if err != nil {
		return nil, fmt.Errorf("invalid HTTP server config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	doc, err := Spec()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing openapi/hub.yaml: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	secs := int64((cfg.RetryAfter + time.Second - 1) / time.Second)
	s := &Server{
		cfg:        cfg,
		pub:        pub,
		logger:     logger,
		router:     router,
		metrics:    m,
		sourceList: strings.Join(slices.Sorted(maps.Keys(cfg.Sources)), ", "),
		retryAfter: strconv.FormatInt(secs, 10),
	}
	if ref := doc.Components.Schemas["CloudEvent"]; ref != nil && ref.Value != nil {
		s.eventSchema = ref.Value
	} else {
		return nil, errors.New("openapi/hub.yaml: components.schemas.CloudEvent is missing")
	}
	s.metricsH = promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)})
	s.handlers = map[string]operationHandler{
		"postEvents": s.postEvents,
		"getHealth":  s.getHealth,
		"getReady":   s.getReady,
		"getMetrics": s.getMetrics,

		"listSyncs":            s.listSyncs,
		"listDeadLetters":      s.listDeadLetters,
		"summarizeDeadLetters": s.summarizeDeadLetters,
		"discardDeadLetters":   s.discardDeadLetters,
		"replayDeadLetter":     s.replayDeadLetter,
		"resetKey":             s.resetKey,
		"listAudit":            s.listAudit,
		"getLatestEvent":       s.getLatestEvent,
		"startBackfill":        s.startBackfill,
		"getBackfill":          s.getBackfill,
	}
	// hub.yaml and the handlers must name the same operations.
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if s.handlers[op.OperationID] == nil {
				return nil, fmt.Errorf("openapi/hub.yaml: %s %s: operationId %q has no handler", method, path, op.OperationID)
			}
			ops = append(ops, method+" "+path)
		}
	}
	slices.SortFunc(ops, func(a, b string) int {
		_, pa, _ := strings.Cut(a, " ")
		_, pb, _ := strings.Cut(b, " ")
		return cmp.Or(strings.Compare(pa, pb), strings.Compare(a, b))
	})
	s.operations = strings.Join(ops, ", ")
	s.sources = make(map[string]*source, len(cfg.Sources))
	for _, name := range slices.Sorted(maps.Keys(cfg.Sources)) {
		src, err := newSource(cfg.Sources[name])
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", name, err)
		}
		s.sources[name] = src
		if cfg.Sources[name].Insecure {
			logger.Warn("INSECURE SOURCE: it accepts unsigned events, so anyone who can reach this port can create, change and delete members through it; "+
				"give it secrets (Standard Webhooks keys) before it faces a real ledger", "source", name)
		}
	}
	s.deliveries = cfg.Deliveries
	if s.deliveries == nil {
		s.deliveries = &memoryDeliveries{}
	}
	s.ingress = make(chan struct{}, cfg.MaxConcurrentIngress)
	s.accepting.Store(true)
	return s, nil
}

// SetAccepting turns event ingress on or off. While off (during a graceful
// shutdown), POST /v1/events/{source} answers 503 with Retry-After and
// GET /readyz answers 503, so load balancers stop sending traffic; health
// and metrics keep answering.
func (s *Server) SetAccepting(accepting bool) { s.accepting.Store(accepting) }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	reqID := r.Header.Get(headerRequestID)
	if reqID == "" || len(reqID) > maxRequestIDLen {
		reqID = watermill.NewUUID()
	}
	rec.Header().Set(headerRequestID, reqID)
	operation := "unmatched"
	defer func() {
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		s.metrics.duration.WithLabelValues(operation, r.Method, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	}()

	route, params, err := s.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		allow := s.allowedMethods(r)
		rec.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(rec, &Problem{
			Type:   problemMethod,
			Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("%s is not served on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
		})
		return
	case err != nil:
		writeProblem(rec, &Problem{
			Type:   problemNotFound,
			Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no operation at %s; the hub serves %s (see openapi/hub.yaml)", r.URL.Path, s.operations),
		})
		return
	}
	operation = route.Operation.OperationID
	s.handlers[operation](rec, r, route, params)
}

// allowedMethods lists the methods hub.yaml declares for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, _, err := s.router.FindRoute(probe); err == nil {
			allow = append(allow, m)
		}
	}
	return allow
}

// validateRequest validates r against its route in hub.yaml and returns the
// faults found, nil when it matches. r.Body must be re-readable (the caller
// sets it from the bytes it read).
func (s *Server) validateRequest(r *http.Request, route *routers.Route, params map[string]string) []validationFault {
	err := openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:          true,
			SkipSettingDefaults: true,
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		},
	})
	if err == nil {
		return nil
	}
	return flattenValidation(err)
}

// rejectInvalidRequest answers 400 when a request without events does not
// match hub.yaml; it reports whether it did.
func (s *Server) rejectInvalidRequest(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) bool {
	faults := s.validateRequest(r, route, params)
	if faults == nil {
		return false
	}
	var errs []FieldError
	for _, f := range faults {
		field := fieldPath(f.path)
		if f.param != nil {
			field = f.param.Name
		}
		if field == "" {
			field = "body"
		}
		errs = append(errs, requestFault(field, f.rule))
	}
	p := &Problem{Type: problemInvalidRequest, Status: http.StatusBadRequest, Detail: "the request does not match openapi/hub.yaml"}
	p.addErrors(errs)
	writeProblem(w, p)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, &Problem{Type: problemInternal, Status: http.StatusInternalServerError, Detail: "encoding the answer failed"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type status struct {
	Status string `json:"status"`
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if s.rejectInvalidRequest(w, r, route, params) {
		return
	}
	writeJSON(w, http.StatusOK, status{Status: "ok"})
}

func (s *Server) getReady(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if s.rejectInvalidRequest(w, r, route, params) {
		return
	}
	if !s.accepting.Load() {
		s.unavailable(w, problemNotAccepting, "the hub is shutting down and no longer accepts events")
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.unavailable(w, problemNotReady, "not ready: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, status{Status: "ready"})
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if s.rejectInvalidRequest(w, r, route, params) {
		return
	}
	s.metricsH.ServeHTTP(w, r)
}

// unavailable answers 503 with Retry-After.
func (s *Server) unavailable(w http.ResponseWriter, typ, detail string) {
	w.Header().Set("Retry-After", s.retryAfter)
	writeProblem(w, &Problem{Type: typ, Status: http.StatusServiceUnavailable, Detail: detail})
}

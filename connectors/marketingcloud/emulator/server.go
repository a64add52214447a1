package emulator

import (
	"encoding/json"
	"fmt"
	"github.com/loyaltyhub/loyaltyhub/connectors/internal/emufault"
	"github.com/loyaltyhub/loyaltyhub/connectors/internal/emuhttp"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Request body limits. The rowset and single-row endpoints document "The maximum payload
// size is 5 MB"; for the async API no size is published (about 5.9 MB is commonly cited,
// UNVERIFIED), so 8 MB is used there. A larger body is answered 413.
const (
	maxSyncBodyBytes  = 5 << 20
	maxAsyncBodyBytes = 8 << 20
	// maxAsyncItems is the documented hard limit of items in one async request.
	maxAsyncItems = 32000
)

// docURL is the documentation link SFMC puts in error bodies.
const docURL = "https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/error-handling.html"

// Server is an emulated Marketing Cloud account: one HTTP server that plays both the auth
// host ({sub}.auth.marketingcloudapis.com) and the REST host ({sub}.rest.marketingcloudapis.com).
// Create it with New; serve it with Start or mount Handler in an http.Server or
// httptest.Server. It is safe for concurrent use.
type Server struct {
	cfg    Config
	tables []*table          // in declaration order
	byKey  map[string]*table // lower-case external key
	byID   map[string]*table // lower-case GUID

	mu   sync.Mutex // guards every table's rows and jobs
	jobs map[string]*asyncJob
	work sync.WaitGroup // async requests being processed

	tokMu  sync.Mutex
	tokens map[string]token

	faults *emufault.Set // injected faults, and the calls counted

	srv emuhttp.Server // the listener of Start
}

// New builds an emulator from cfg (a zero TokenTTL takes its default). It does not listen:
// call Start, or serve Handler yourself.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("marketingcloud emulator config: %w", err)
	}
	s := &Server{
		srv:    emuhttp.Server{Name: "marketingcloud emulator"},
		cfg:    cfg,
		byKey:  map[string]*table{},
		byID:   map[string]*table{},
		jobs:   map[string]*asyncJob{},
		tokens: map[string]token{},
		faults: newFaults(),
	}
	for _, de := range cfg.DataExtensions {
		t := newTable(de)
		s.tables = append(s.tables, t)
		s.byKey[strings.ToLower(t.key)] = t
		s.byID[t.id] = t
	}
	return s, nil
}

// Handler returns the HTTP handler serving the auth host, the REST host and the
// /__emulator/ inspection endpoints.
func (s *Server) Handler() http.Handler { return s }

// Start listens on addr (such as "127.0.0.1:0", which picks a free port) and serves plain
// HTTP in the background. It returns the base URL, e.g. "http://127.0.0.1:43121", which is
// both the auth base URI and, with a trailing "/", the rest_instance_url.
func (s *Server) Start(addr string) (string, error) {
	return s.srv.Start(addr, s)
}

// URL returns the base URL after Start, or "".
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the server started by Start, waiting up to 5 seconds for requests in flight,
// then waits for async requests still being processed. It may be called more than once.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.work.Wait()
	return err
}

// mcError is SFMC's REST error body: an object, not an array.
type mcError struct {
	Message          string    `json:"message"`
	ErrorCode        int       `json:"errorcode"`
	Documentation    string    `json:"documentation"`
	AdditionalErrors []mcError `json:"additionalErrors,omitempty"`
}

// reply is what an operation answers.
type reply struct {
	status int
	body   any // nil: no body
	header map[string]string
}

func jsonReply(status int, body any) *reply { return &reply{status: status, body: body} }

func errReply(status, code int, format string, args ...any) *reply {
	return jsonReply(status, mcError{Message: fmt.Sprintf(format, args...), ErrorCode: code, Documentation: docURL})
}

// Not Authorized is the documented answer to a missing, invalid or expired token.
func unauthorized() *reply { return errReply(http.StatusUnauthorized, 0, "Not Authorized") }

func (s *Server) write(w http.ResponseWriter, rp *reply) {
	h := w.Header()
	for k, v := range rp.header {
		h.Set(k, v)
	}
	if rp.body == nil {
		w.WriteHeader(rp.status)
		return
	}
	b, err := json.Marshal(rp.body)
	if err != nil {
		rp = errReply(http.StatusInternalServerError, 0, "Internal Server Error")
		b, _ = json.Marshal(rp.body)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(rp.status)
	_, _ = w.Write(b)
}

// route is a resolved REST path.
type route struct {
	op      string // operation name as counted in Calls
	methods string // allowed methods, for 405
	ref     string // data extension reference ("key:X", "id:G" or "G"), or async request id
	pk      string // single-row primary key segment "Name:Value"
	write   bool   // needs data_extensions_write (else data_extensions_read)
}

// resolve maps a method and path to an operation. ok is false for an unknown path; a
// known path with the wrong method returns a route with op "".
func resolve(method string, segs []string) (rt route, ok bool) {
	n := len(segs)
	switch {
	case n == 5 && segs[0] == "hub" && segs[1] == "v1" && segs[2] == "dataevents" && segs[4] == "rowset":
		rt = route{methods: "POST", ref: segs[3], write: true}
		if method == http.MethodPost {
			rt.op = "rowset.upsert"
		}
	case n == 6 && segs[0] == "hub" && segs[1] == "v1" && segs[2] == "dataevents" && segs[4] == "rows":
		rt = route{methods: "PUT", ref: segs[3], pk: segs[5], write: true}
		if method == http.MethodPut {
			rt.op = "row.upsert"
		}
	case n == 6 && segs[0] == "data" && segs[1] == "v1" && segs[2] == "async" && segs[3] == "dataextensions" && segs[5] == "rows":
		rt = route{methods: "POST, PUT", ref: segs[4], write: true}
		switch method {
		case http.MethodPut:
			rt.op = "async.upsert"
		case http.MethodPost:
			rt.op = "async.insert"
		}
	case n == 5 && segs[0] == "data" && segs[1] == "v1" && segs[2] == "async" && (segs[4] == "status" || segs[4] == "results"):
		rt = route{methods: "GET", ref: segs[3]}
		if method == http.MethodGet {
			rt.op = "async." + segs[4]
		}
	default:
		return route{}, false
	}
	return rt, true
}

// pathSegments splits the escaped path and unescapes each segment, so that a key or a
// primary key value containing "%2F" stays one segment.
func pathSegments(escaped string) []string {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	return parts
}

// ServeHTTP routes a request: the token endpoint, the REST API, the inspection endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/v2/token" || path == "/v2/token/":
		s.write(w, s.handleToken(r))
		return
	case path == "/__emulator" || strings.HasPrefix(path, "/__emulator/"):
		s.handleAdmin(w, r)
		return
	}
	rt, ok := resolve(r.Method, pathSegments(r.URL.EscapedPath()))
	if !ok {
		s.write(w, errReply(http.StatusNotFound, http.StatusNotFound, "Not Found: %s %s is not a resource of this API", r.Method, path))
		return
	}
	if rt.op == "" {
		rp := errReply(http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, "Method Not Allowed: %s supports %s", path, rt.methods)
		rp.header = map[string]string{"Allow": rt.methods}
		s.write(w, rp)
		return
	}
	s.countCall(rt.op)
	tok, ok := s.bearer(r)
	if !ok {
		s.write(w, unauthorized())
		return
	}
	if rp := s.requestFaults(r.Context(), rt.op); rp != nil {
		s.write(w, rp)
		return
	}
	if !tok.allows(rt.write) {
		need := "data_extensions_read"
		if rt.write {
			need = "data_extensions_write"
		}
		s.write(w, errReply(http.StatusForbidden, 20002, "Insufficient privileges to complete this action: the access token lacks the %s scope.", need))
		return
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		var rp *reply
		if body, rp = readBody(r, rt.op); rp != nil {
			s.write(w, rp)
			return
		}
	}
	var rp *reply
	switch rt.op {
	case "rowset.upsert":
		rp = s.handleRowset(rt.ref, body)
	case "row.upsert":
		rp = s.handleRow(rt.ref, rt.pk, body)
	case "async.upsert", "async.insert":
		rp = s.handleAsyncSubmit(rt.op, rt.ref, body)
	case "async.status":
		rp = s.handleAsyncStatus(rt.ref)
	case "async.results":
		rp = s.handleAsyncResults(rt.ref, r.URL.Query())
	}
	s.write(w, rp)
}

// readBody reads a JSON request body within the operation's size limit.
func readBody(r *http.Request, op string) ([]byte, *reply) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, errReply(http.StatusUnsupportedMediaType, 10004, "Unsupported Media Type %q: send the body as application/json.", ct)
		}
	}
	limit := int64(maxSyncBodyBytes)
	if strings.HasPrefix(op, "async.") {
		limit = maxAsyncBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errReply(http.StatusBadRequest, 10004, "The request body could not be read: %v", err)
	}
	if int64(len(b)) > limit {
		// Read (a bounded amount of) the rest, so that the client, still sending, gets the
		// answer rather than a reset connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		return nil, errReply(http.StatusRequestEntityTooLarge, 10000, "Request Entity Too Large: the maximum payload size is %d bytes.", limit)
	}
	return b, nil
}

// lookup finds a data extension by path reference: "key:{key}", "id:{id}" or "{id}".
func (s *Server) lookup(ref string) *table {
	if k, ok := cutPrefixFold(ref, "key:"); ok {
		return s.byKey[strings.ToLower(k)]
	}
	if id, ok := cutPrefixFold(ref, "id:"); ok {
		ref = id
	}
	return s.byID[strings.ToLower(ref)]
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// describeRef names a data extension reference in a message.
func describeRef(ref string) string {
	if k, ok := cutPrefixFold(ref, "key:"); ok {
		return "key " + k
	}
	id, _ := cutPrefixFold(ref, "id:")
	return "ID " + id
}

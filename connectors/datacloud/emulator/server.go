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
	"time"
)

// maxBodyBytes is the streaming ingestion payload limit: the docs say "The payload must be
// less than 200 KB", so a body of 200 KiB (204,800 bytes) or more is refused. The status
// is UNVERIFIED (not documented): 413 Payload Too Large was chosen, the standard answer
// that a client can tell apart from a schema error and that no client should retry as is.
const maxBodyBytes = 200 << 10

// maxDeleteIDs is the documented most ids of one streaming delete.
const maxDeleteIDs = 200

// orgID is the emulated org's id (the 00D… prefix of core tokens and of the id URL) and
// userID the integration user's.
const (
	orgID  = "00DEM0000000001EAA"
	userID = "005EM0000000001AAA"
)

// internalErrorCode is the internalErrorCode of every tenant error body: the one value the
// docs show (UNVERIFIED for errors other than schema mismatches).
const internalErrorCode = "COMMON_ERROR_GENERIC"

// Server is an emulated Salesforce org with Data Cloud: one HTTP server that plays the
// core login host ({my-domain}.my.salesforce.com), the token exchange and the Data Cloud
// tenant ({tenant}.c360a.salesforce.com). Create it with New; serve it with Start or mount
// Handler in an http.Server or httptest.Server. It is safe for concurrent use.
type Server struct {
	cfg     Config
	objects map[string]*object // by name

	mu      sync.Mutex // guards every object's records and pending
	pending []*batch   // accepted requests not yet processed, in order of acceptance

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
		return nil, fmt.Errorf("datacloud emulator config: %w", err)
	}
	s := &Server{
		srv:     emuhttp.Server{Name: "datacloud emulator"},
		cfg:     cfg,
		objects: map[string]*object{},
		tokens:  map[string]token{},
		faults:  newFaults(),
	}
	for _, o := range cfg.Objects {
		s.objects[o.Name] = newObject(o)
	}
	return s, nil
}

// Handler returns the HTTP handler serving the core login, the token exchange, the Data
// Cloud tenant and the /__emulator/ inspection endpoints.
func (s *Server) Handler() http.Handler { return s }

// Start listens on addr (such as "127.0.0.1:0", which picks a free port) and serves plain
// HTTP in the background. It returns the base URL, e.g. "http://127.0.0.1:43121": the
// login URL, and the instance_url of both kinds of token.
func (s *Server) Start(addr string) (string, error) {
	return s.srv.Start(addr, s)
}

// URL returns the base URL after Start, or "".
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the server started by Start, waiting up to 5 seconds for requests in flight.
// Records stay readable. It may be called more than once, and without Start.
func (s *Server) Close() error {
	err := s.srv.Close()
	return err
}

// reply is what an operation answers.
type reply struct {
	status int
	body   any // nil: no body
	header map[string]string
}

func jsonReply(status int, body any) *reply { return &reply{status: status, body: body} }

// apiErrorBody is the tenant's error body. The shape is the one the docs show for a
// payload that fails validation (a Spring Boot error object: timestamp, error, message,
// path "uri=…", tenantId, internalErrorCode, details.validationReport). UNVERIFIED: that
// the other errors (401, 404, 413, 415, 429, 500) use it too; the emulator sends it for
// every tenant error so a client has one shape to read.
type apiErrorBody struct {
	Timestamp         string      `json:"timestamp"`
	Error             string      `json:"error"`
	Message           string      `json:"message"`
	Path              string      `json:"path"`
	TenantID          string      `json:"tenantId"`
	InternalErrorCode string      `json:"internalErrorCode"`
	Details           *errDetails `json:"details,omitempty"`
}

type errDetails struct {
	ValidationReport []reportEntry `json:"validationReport"`
}

// apiError builds a tenant error answer; message is sent as is.
func apiError(r *http.Request, status int, message string) *reply {
	return jsonReply(status, &apiErrorBody{
		Timestamp:         time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		Error:             http.StatusText(status),
		Message:           message,
		Path:              "uri=" + r.URL.Path,
		TenantID:          "a360/emulator/" + strings.ToLower(orgID),
		InternalErrorCode: internalErrorCode,
	})
}

func oauthError(status int, code, desc string) *reply {
	return jsonReply(status, map[string]string{"error": code, "error_description": desc})
}

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
		rp = oauthError(http.StatusInternalServerError, "server_error", "the emulator could not encode its answer")
		b, _ = json.Marshal(rp.body)
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(rp.status)
	_, _ = w.Write(b)
}

// pathSegments splits the escaped path and unescapes each segment, so that a name
// containing "%2F" stays one segment.
func pathSegments(escaped string) []string {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	return parts
}

// ServeHTTP routes a request: the core token endpoint, the token exchange, the ingest
// API, the inspection endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/services/oauth2/token":
		s.write(w, s.handleCoreToken(r))
		return
	case path == "/services/a360/token":
		s.write(w, s.handleExchange(r))
		return
	case path == "/__emulator" || strings.HasPrefix(path, "/__emulator/"):
		s.handleAdmin(w, r)
		return
	}
	segs := pathSegments(r.URL.EscapedPath())
	if len(segs) != 6 || segs[0] != "api" || segs[1] != "v1" || segs[2] != "ingest" || segs[3] != "sources" {
		s.write(w, apiError(r, http.StatusNotFound, fmt.Sprintf("Not Found: %s %s is not a resource of this emulator (the streaming ingestion API is POST and DELETE /api/v1/ingest/sources/{connectorName}/{objectName})", r.Method, r.URL.Path)))
		return
	}
	var op string
	switch r.Method {
	case http.MethodPost:
		op = OpIngestUpsert
	case http.MethodDelete:
		op = OpIngestDelete
	default:
		rp := apiError(r, http.StatusMethodNotAllowed, fmt.Sprintf("Method Not Allowed: %s supports POST (insert or update records) and DELETE (delete records)", r.URL.Path))
		rp.header = map[string]string{"Allow": "POST, DELETE"}
		s.write(w, rp)
		return
	}
	s.countCall(op)
	if rp := s.authorize(r); rp != nil {
		s.write(w, rp)
		return
	}
	if rp := s.requestFaults(r, op); rp != nil {
		s.write(w, rp)
		return
	}
	connector, objName := segs[4], segs[5]
	if connector != s.cfg.SourceName {
		s.write(w, apiError(r, http.StatusNotFound, fmt.Sprintf("Not Found: no Ingestion API connector named %q (connector names are case-sensitive)", connector)))
		return
	}
	obj := s.objects[objName]
	if obj == nil {
		s.write(w, apiError(r, http.StatusNotFound, fmt.Sprintf("Not Found: connector %q has no object named %q; its objects are %s", connector, objName, strings.Join(s.objectNames(), ", "))))
		return
	}
	if op == OpIngestUpsert {
		s.write(w, s.handleUpsert(r, obj))
	} else {
		s.write(w, s.handleDelete(r, obj))
	}
}

// readBody reads a request body within the payload limit. A body must be JSON: a
// Content-Type other than application/json (or missing, when there is a body) is 415.
func readBody(r *http.Request) ([]byte, *reply) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apiError(r, http.StatusBadRequest, "Bad Request: the request body could not be read: "+err.Error())
	}
	if len(b) >= maxBodyBytes {
		// Read (a bounded amount of) the rest, so that the client, still sending, gets the
		// answer rather than a reset connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		return nil, apiError(r, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"Payload Too Large: the payload must be less than 200 KB (%d bytes); send fewer records per request, or use a bulk ingestion job", maxBodyBytes))
	}
	if len(b) == 0 {
		return b, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, apiError(r, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported Media Type: Content-Type %q is not supported; send the body as application/json", ct))
	}
	return b, nil
}

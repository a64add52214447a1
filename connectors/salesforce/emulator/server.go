package emulator

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes caps a request body (after gzip decoding), like the org's 50 MB limit.
const maxBodyBytes = 50 << 20

// Server is an emulated Salesforce org. Create it with New; serve it with Start or mount
// Handler in an http.Server or httptest.Server. It is safe for concurrent use.
//
// SOQL subset understood by /query and /queryAll:
//
//	SELECT COUNT() FROM Obj [WHERE …] [LIMIT n]
//	SELECT f1, Rel.f2, FIELDS(ALL|STANDARD|CUSTOM) FROM Obj
//	  [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
//
// where cond combines f op literal (op one of = != <> < <= > >= LIKE), f [NOT] IN (…),
// NOT, AND, OR and parentheses (AND and OR may not be mixed without parentheses, as in
// SOQL); literals are 'strings', numbers, true, false, null, dates (2024-01-31) and
// datetimes (2024-01-31T10:00:00Z). Field names are case-insensitive.
type Server struct {
	cfg    Config
	log    *slog.Logger
	schema *schema
	orgID  string
	userID string

	mu     sync.RWMutex // guards st
	st     *store
	hookMu sync.Mutex // serializes OnWrite calls in commit order

	sessMu   sync.Mutex
	sessions map[string]time.Time // access token → expiry

	usageMu     sync.Mutex
	usage       int
	windowStart time.Time

	faultMu  sync.Mutex
	faults   []*Fault
	faultSeq int
	rng      *rand.Rand

	statsMu sync.Mutex
	stats   Stats

	cursorMu sync.Mutex
	cursors  map[string]*cursor
	curSeq   uint64

	// bulkMu guards the Bulk API 2.0 ingest jobs. Job processing takes mu before
	// bulkMu; nothing takes mu while holding bulkMu.
	bulkMu   sync.Mutex
	bulkJobs map[string]*bulkJob
	bulkSeq  uint64
	bulkWG   sync.WaitGroup // job processing goroutines, waited for by Close
	// bulkBatches counts the Bulk API batches used in the current usage window
	// (guarded by usageMu, like usage).
	bulkBatches int

	srvMu   sync.Mutex
	httpSrv *http.Server
	baseURL string
	conns   map[net.Conn]http.ConnState
	certPEM []byte
}

// New builds an emulator from cfg (zero fields take their defaults). It does not listen:
// call Start, or serve Handler yourself.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("emulator config: %w", err)
	}
	sc, err := buildSchema(cfg.Fields)
	if err != nil {
		return nil, fmt.Errorf("emulator config: Fields: %w", err)
	}
	seed := cfg.FaultSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		schema:   sc,
		orgID:    makeID("00D", 1),
		userID:   makeID("005", 1),
		sessions: map[string]time.Time{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cursors:  map[string]*cursor{},
		bulkJobs: map[string]*bulkJob{},
	}
	s.stats = newStats()
	for _, f := range cfg.Faults {
		if _, err := s.AddFault(f); err != nil {
			return nil, fmt.Errorf("emulator config: %w", err)
		}
	}
	if err := s.resetData(); err != nil {
		return nil, fmt.Errorf("emulator config: Seed: %w", err)
	}
	return s, nil
}

// resetData replaces the store with a fresh one holding the seed records.
func (s *Server) resetData() error {
	st := newStore(s.schema)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	tx := &txn{st: st}
	objects := make([]string, 0, len(s.cfg.Seed))
	for o := range s.cfg.Seed {
		objects = append(objects, o)
	}
	// parents first: programs and accounts before members and journals
	order := map[string]int{"loyaltyprogram": 0, "account": 1, "contact": 2, "loyaltyprogrammember": 3}
	rank := func(o string) int {
		if r, ok := order[strings.ToLower(o)]; ok {
			return r
		}
		return 9
	}
	sort.Slice(objects, func(i, j int) bool {
		if rank(objects[i]) != rank(objects[j]) {
			return rank(objects[i]) < rank(objects[j])
		}
		return objects[i] < objects[j]
	})
	for _, o := range objects {
		obj := s.schema.object(o)
		if obj == nil {
			return fmt.Errorf("object %q is not an object of the emulator", o)
		}
		for i, raw := range s.cfg.Seed[o] {
			in, err := decodeRecord(obj, jsonRoundTrip(raw))
			if err != nil {
				return fmt.Errorf("%s[%d]: %s: %s", o, i, err.Code, err.Message)
			}
			explicit := ""
			if v, ok := in.values["Id"].(string); ok && v != "" {
				id, ok := normalizeID(v)
				if !ok || id[:3] != obj.KeyPrefix {
					return fmt.Errorf("%s[%d]: Id %q is not a valid id of %s (key prefix %s)", o, i, v, obj.Name, obj.KeyPrefix)
				}
				explicit = id
			}
			if _, err := s.create(tx, in, explicit); err != nil {
				return fmt.Errorf("%s[%d]: %s: %s", o, i, err.Code, err.Message)
			}
		}
	}
	return nil
}

// jsonRoundTrip turns Go values (ints, time.Time, …) into what a JSON body decodes to.
func jsonRoundTrip(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return m
	}
	return out
}

// Handler returns the HTTP handler serving the emulated org and its /__emulator/ admin API.
func (s *Server) Handler() http.Handler { return s }

// Start listens on addr (such as "127.0.0.1:0") and serves plain HTTP in the background.
// It returns the base URL, e.g. "http://127.0.0.1:43121", to use as a client's login domain.
func (s *Server) Start(addr string) (string, error) { return s.start(addr, false) }

// StartTLS is Start over HTTPS with a self-signed certificate for 127.0.0.1, ::1 and
// localhost, for clients that only speak https (simple-salesforce, restforce). Trust
// CertificatePEM in the client (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS).
func (s *Server) StartTLS(addr string) (string, error) { return s.start(addr, true) }

func (s *Server) start(addr string, useTLS bool) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	scheme := "http"
	if useTLS {
		cert, pemBytes, err := selfSignedCert()
		if err != nil {
			_ = ln.Close()
			return "", fmt.Errorf("emulator: making a TLS certificate: %w", err)
		}
		s.certPEM = pemBytes
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	s.conns = map[net.Conn]http.ConnState{}
	// The goroutine serves through srv, not s.httpSrv, which Close clears:
	// a Close right after Start must not leave it a nil server.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ConnState: s.trackConn}
	s.httpSrv = srv
	s.baseURL = scheme + "://" + ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("emulator: serve", "err", err)
		}
	}()
	s.log.Info("salesforce emulator listening", "url", s.baseURL)
	return s.baseURL, nil
}

// CertificatePEM returns the PEM certificate served after StartTLS, or nil.
func (s *Server) CertificatePEM() []byte {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return bytes.Clone(s.certPEM)
}

// selfSignedCert makes a one-year ECDSA certificate for the loopback names.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := crand.Int(crand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"loyaltyhub Salesforce emulator"}, CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}

// URL returns the base URL after Start, or "".
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.baseURL
}

// Close stops the server started by Start, waiting up to 5 seconds for requests in flight.
func (s *Server) Close() error {
	s.srvMu.Lock()
	srv := s.httpSrv
	s.httpSrv = nil
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	// Shutdown waits up to 5 s for connections that were opened but never used (clients
	// racing dials leave some); they carry no request, so close them now.
	time.Sleep(10 * time.Millisecond)
	s.srvMu.Lock()
	for c, st := range s.conns {
		if st == http.StateNew {
			_ = c.Close()
		}
	}
	s.srvMu.Unlock()
	if err := <-done; err != nil {
		_ = srv.Close()
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	// No request runs any more: let the Bulk API jobs being processed finish, so
	// that nothing writes to the org after Close returns.
	s.bulkWG.Wait()
	return nil
}

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(s.conns, c)
		return
	}
	s.conns[c] = st
}

// response is what a resource handler answers; ServeHTTP or composite turns it into bytes.
type response struct {
	status int
	body   any // nil: no body
	// raw, when not nil, is sent as is with contentType instead of body as JSON
	// (the CSV results of Bulk API jobs).
	raw         []byte
	contentType string
	header      map[string]string
	// recordFailures is set by sObject Collections when a record failed: an allOrNone
	// composite request then fails as a whole.
	recordFailures bool
}

func jsonResp(status int, body any) *response { return &response{status: status, body: body} }

func errResp(status int, errs ...*sfError) *response {
	out := make([]map[string]any, len(errs))
	for i, e := range errs {
		out[i] = e.topLevel()
	}
	return &response{status: status, body: out}
}

var versionSegRe = regexp.MustCompile(`^v([0-9]+)\.0$`)

// ServeHTTP routes a request: OAuth, the versions list, REST resources, the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
		s.log.Debug("salesforce emulator", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	}()
	path := r.URL.Path
	switch {
	case path == "/services/oauth2/token":
		s.handleToken(rec, r)
	case strings.HasPrefix(path, "/services/Soap/"):
		s.handleSOAP(rec, r)
	case strings.HasPrefix(path, "/__emulator/") || path == "/__emulator":
		s.handleAdmin(rec, r)
	case path == "/services/data" || path == "/services/data/":
		s.handleVersions(rec, r)
	case strings.HasPrefix(path, "/services/data/"):
		s.handleREST(rec, r)
	default:
		s.write(rec, r, errResp(http.StatusNotFound, errNotFound), false)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// pathSegments splits the escaped path and unescapes each segment, so that an external
// id containing "%2F" stays one segment.
func pathSegments(escaped string) []string {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	return parts
}

// call is one REST resource invocation, top-level or a composite subrequest.
type call struct {
	version   string // "63.0"
	verNum    int
	method    string
	segs      []string // after /services/data/vXX.X/
	query     url.Values
	header    http.Header
	body      []byte
	tx        *txn // set inside a composite request, which holds the write lock
	allOrNone bool // composite allOrNone=true forces it on collections
	sub       bool // a composite subrequest
}

func (s *Server) handleREST(w http.ResponseWriter, r *http.Request) {
	segs := pathSegments(r.URL.EscapedPath())[2:] // drop "services", "data"
	m := versionSegRe.FindStringSubmatch(segs[0])
	verNum := 0
	if m != nil {
		verNum, _ = strconv.Atoi(m[1])
	}
	if m == nil || verNum < minAPIVersion || verNum > s.cfg.apiVersionNumber() {
		s.write(w, r, errResp(http.StatusNotFound, errNotFound), false)
		return
	}
	segs = segs[1:]
	if len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	rt := s.route(r.Method, segs)
	if !s.validSession(r) {
		s.countCall("unauthorized")
		s.write(w, r, errResp(http.StatusUnauthorized, newErr("INVALID_SESSION_ID", "Session expired or invalid")), false)
		return
	}
	if used, limit := s.apiUsage(); used >= limit {
		s.countCall("limit_exceeded")
		s.write(w, r, errResp(http.StatusForbidden, errLimit()), true)
		return
	}
	if resp := s.requestFaults(r.Context(), rt.kind); resp != nil {
		s.write(w, r, resp, resp.status != http.StatusTooManyRequests && resp.status != http.StatusServiceUnavailable)
		return
	}
	s.addUsage()
	s.countCall(rt.kind)
	limit := int64(maxBodyBytes)
	if rt.kind == kindBulkUpload {
		limit = int64(s.cfg.BulkUploadLimit)
	}
	body, err := readBody(r, limit)
	if err != nil {
		s.write(w, r, err, true)
		return
	}
	c := &call{version: strconv.Itoa(verNum) + ".0", verNum: verNum, method: r.Method, segs: segs,
		query: r.URL.Query(), header: r.Header, body: body}
	s.write(w, r, rt.handler(c), true)
}

func errLimit() *sfError { return newErr("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.") }

// readBody returns the request body, gunzipped when Content-Encoding says gzip; a
// body larger than limit bytes (before or after decoding) is a 413.
func readBody(r *http.Request, limit int64) ([]byte, *response) {
	if r.Body == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		return nil, errResp(http.StatusRequestEntityTooLarge, newErr("REQUEST_TOO_LARGE", "The request body could not be read or is larger than %d bytes: %v", limit, err))
	}
	var rd io.Reader = bytes.NewReader(raw)
	// clients such as go-salesforce send Content-Encoding: gzip on bodiless GETs too
	if len(raw) > 0 && strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, errResp(http.StatusBadRequest, newErr("JSON_PARSER_ERROR", "Content-Encoding is gzip but the body is not gzip data: %v", err))
		}
		defer gz.Close()
		rd = io.LimitReader(gz, limit+1)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, errResp(http.StatusBadRequest, newErr("JSON_PARSER_ERROR", "Could not read the request body: %v", err))
	}
	if int64(len(b)) > limit {
		return nil, errResp(http.StatusRequestEntityTooLarge, newErr("REQUEST_TOO_LARGE", "The request body is larger than %d bytes", limit))
	}
	return b, nil
}

// write sends resp as JSON (or its raw body); limitInfo adds the Sforce-Limit-Info header.
func (s *Server) write(w http.ResponseWriter, r *http.Request, resp *response, limitInfo bool) {
	h := w.Header()
	for k, v := range resp.header {
		h.Set(k, v)
	}
	if limitInfo {
		used, limit := s.apiUsage()
		h.Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, limit))
	}
	var b []byte
	switch {
	case resp.raw != nil:
		b = resp.raw
		h.Set("Content-Type", resp.contentType)
	case resp.body == nil:
		w.WriteHeader(resp.status)
		return
	default:
		var err error
		b, err = json.Marshal(resp.body)
		if err != nil {
			s.log.Error("salesforce emulator: encoding response", "err", err)
			b, _ = json.Marshal(errResp(500, newErr("UNKNOWN_EXCEPTION", "An unexpected error occurred: %v", err)).body)
			resp = &response{status: 500}
		}
		h.Set("Content-Type", "application/json;charset=UTF-8")
	}
	if acceptsGzip(r) && len(b) > 0 {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		_, _ = gz.Write(b)
		_ = gz.Close()
		b = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(b)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

// instanceURL is the base URL clients must use after login.
func (s *Server) instanceURL(r *http.Request) string {
	if s.cfg.InstanceURL != "" {
		return strings.TrimSuffix(s.cfg.InstanceURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// withRead runs fn holding the read lock, unless the call runs inside a composite request
// that already holds the write lock.
func (s *Server) withRead(c *call, fn func()) {
	if c.tx != nil {
		fn()
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn()
}

// withWrite runs fn in a transaction: inside a composite request it joins the composite's
// transaction; otherwise it takes the write lock and commits when fn returns.
func (s *Server) withWrite(c *call, fn func(tx *txn)) {
	if c.tx != nil {
		fn(c.tx)
		return
	}
	s.mu.Lock()
	tx := &txn{st: s.st}
	fn(tx)
	s.commit(tx)
}

// commit releases the write lock and reports the transaction's writes to OnWrite, in
// commit order (the hook lock is taken before the store lock is released).
func (s *Server) commit(tx *txn) {
	if s.cfg.OnWrite == nil || len(tx.writes) == 0 {
		s.mu.Unlock()
		return
	}
	s.hookMu.Lock()
	s.mu.Unlock()
	defer s.hookMu.Unlock()
	for _, w := range tx.writes {
		s.cfg.OnWrite(w.object, w.id, w.fields)
	}
}

// decodeJSON decodes a request body keeping numbers exact.
func decodeJSON(body []byte, v any) *sfError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(body, se.Offset)
			return newErr("JSON_PARSER_ERROR", "Unexpected character in JSON body: %s at [line:%d, column:%d]", se.Error(), line, col)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return newErr("JSON_PARSER_ERROR", "Cannot deserialize instance of %s from %s at [line:1, column:%d]", te.Type, te.Value, te.Offset)
		}
		if errors.Is(err, io.EOF) {
			return newErr("JSON_PARSER_ERROR", "No content to map due to end-of-input")
		}
		return newErr("JSON_PARSER_ERROR", "%v", err)
	}
	return nil
}

func lineCol(b []byte, off int64) (int, int) {
	line, col := 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

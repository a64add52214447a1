package openapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/routers"

	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// Admin is what the admin API serves: the syncs' state, the dead letters
// and what operators do with them (replay, discard, key resets), the audit
// log, backfills. The hub implements it; a nil Admin answers 503. An Admin
// that also implements AccessControlled sets the API's tokens and roles.
type Admin interface {
	Syncs(ctx context.Context) ([]SyncStatus, error)
	// DeadLetters lists the dead letters f selects (see
	// store.QueryDeadLetters).
	DeadLetters(ctx context.Context, f store.DeadLetterFilter, afterID int64, limit int) ([]store.DeadLetter, error)
	// SummarizeDeadLetters counts them per sync and code.
	SummarizeDeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetterGroup, error)
	// DiscardDeadLetters discards dead letters, audited (see
	// store.DiscardDeadLetters); errors wrapping store.ErrInvalid mean 400.
	DiscardDeadLetters(ctx context.Context, sel store.Selection, by store.Operator) (store.Discarded, error)
	// Replay publishes a dead letter's event again, audited; store.ErrNotFound
	// when there is no such dead letter.
	Replay(ctx context.Context, id int64, by store.Operator) (store.DeadLetter, error)
	// ResetKey deletes a key's guard row in sync and discards its dead
	// letters, audited (see store.ResetKey); an error wrapping ErrNotFound
	// or store.ErrNotFound when there is no such sync or nothing to reset.
	ResetKey(ctx context.Context, sync, key string, by store.Operator) (store.KeyReset, error)
	// AuditLog lists the audit log, oldest first.
	AuditLog(ctx context.Context, afterID int64, limit int) ([]store.AuditEntry, error)
	// LatestEvent returns the newest event on sync's topic for the record
	// key, and the topic; an error wrapping ErrNotFound when there is no
	// such sync or event.
	LatestEvent(ctx context.Context, sync, key string) (event json.RawMessage, topic string, err error)
	// StartBackfill starts a backfill of sync in the background and returns
	// its first status; an error wrapping ErrNotFound (no such sync) or
	// ErrConflict (one runs, or another replica runs the sync).
	StartBackfill(ctx context.Context, sync string) (pipeline.BackfillStatus, error)
	// BackfillStatus returns sync's current or last backfill; ErrNotFound
	// when there is no such sync or it has had none.
	BackfillStatus(ctx context.Context, sync string) (pipeline.BackfillStatus, error)
}

// Role is what an admin API caller may do.
type Role string

const (
	// RoleRead may call the GET endpoints, and sees events with the
	// configured fields redacted.
	RoleRead Role = "read"
	// RoleOperator may call every endpoint, and sees events whole.
	RoleOperator Role = "operator"
)

// AdminToken is one bearer token the admin API accepts.
type AdminToken struct {
	// Name names the token's holder in the audit log and the logs.
	Name string
	Role Role
	// Token is the secret. Never logged.
	Token string
}

// AdminAccess says who may call the admin API and what the read role sees.
type AdminAccess struct {
	// Tokens are the bearer tokens accepted. With none, only requests from
	// the loopback interface are served, as the operator "loopback".
	Tokens []AdminToken
	// RedactFields are paths inside an event's data (field names joined by
	// dots) whose values the read role sees as Redacted, at every index of
	// the arrays on the way, in dead letters and latest events; where such
	// a value appears in a dead letter's reason it is hidden too.
	RedactFields []string
}

// AccessControlled is an Admin that sets the admin API's access. Its
// AdminAccess, asked for on every admin request, replaces
// ServerConfig.AdminToken; an Admin without it has AdminToken as its one
// token, an operator named "admin".
type AccessControlled interface {
	AdminAccess() AdminAccess
}

// ErrNotFound is wrapped by Admin errors that mean 404.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by Admin errors that mean 409.
var ErrConflict = errors.New("conflict")

// SyncStatus is one sync as GET /v1/syncs shows it.
type SyncStatus struct {
	Name      string `json:"name"`
	Topic     string `json:"topic"`
	Connector string `json:"connector"`
	Object    string `json:"object"`
	Applied   int64  `json:"applied"`
	Skipped   int64  `json:"skipped"`
	Dead      int64  `json:"dead"`
	Backlog   *int   `json:"backlog,omitempty"`
	// RunningOn is the replica holding the sync's lease, if any.
	RunningOn      string     `json:"running_on,omitempty"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
	// Breaker is the target connector's circuit breaker as this replica
	// sees it: closed, half-open or open (writes held).
	Breaker string `json:"breaker,omitempty"`
}

// DeadLetterJSON is a dead letter on the wire: the event as JSON when it
// is, base64 otherwise (an undecodable message).
type DeadLetterJSON struct {
	ID          int64           `json:"id"`
	Sync        string          `json:"sync"`
	EventID     string          `json:"event_id"`
	Key         string          `json:"key"`
	Version     int64           `json:"version"`
	Reason      string          `json:"reason"`
	Code        string          `json:"code,omitempty"`
	Attempts    int             `json:"attempts"`
	Event       json.RawMessage `json:"event,omitempty"`
	EventBase64 string          `json:"event_base64,omitempty"`
	At          time.Time       `json:"at"`
	Superseded  bool            `json:"superseded"`
}

func deadLetterJSON(d store.DeadLetter) DeadLetterJSON {
	out := DeadLetterJSON{ID: d.ID, Sync: d.Sync, EventID: d.EventID, Key: d.Key, Version: d.Version,
		Reason: d.Reason, Code: d.Code, Attempts: d.Attempts, At: d.At, Superseded: d.Superseded}
	switch {
	case len(d.Event) == 0:
	case json.Valid(d.Event):
		out.Event = d.Event
	default:
		out.EventBase64 = base64.StdEncoding.EncodeToString(d.Event)
	}
	return out
}

const (
	problemAdminAuth      = "urn:loyaltyhub:problem:admin-unauthorized"
	problemAdminForbidden = "urn:loyaltyhub:problem:admin-forbidden"
	problemAdminRole      = "urn:loyaltyhub:problem:admin-role"
	problemAdminOff       = "urn:loyaltyhub:problem:admin-unavailable"
	problemConflict       = "urn:loyaltyhub:problem:conflict"
)

// maxAdminBody bounds the body of an admin request, in bytes.
const maxAdminBody = 256 << 10

// caller is who makes an admin request.
type caller struct {
	name string
	role Role
}

// operator is the caller as the audit log names them, with a reason.
func (c caller) operator(reason string) store.Operator {
	return store.Operator{Name: c.name, Role: string(c.role), Reason: reason}
}

// adminAccess is the admin API's access as it stands.
func (s *Server) adminAccess() AdminAccess {
	if ac, ok := s.cfg.Admin.(AccessControlled); ok {
		return ac.AdminAccess()
	}
	if s.cfg.AdminToken == "" {
		return AdminAccess{}
	}
	return AdminAccess{Tokens: []AdminToken{{Name: "admin", Role: RoleOperator, Token: s.cfg.AdminToken}}}
}

// matchToken returns the token among tokens equal to got. It compares
// SHA-256 digests in constant time, with every token, so that neither the
// time taken nor an early return tells which token (or what length)
// matched, or how close a guess came.
func matchToken(tokens []AdminToken, got string) (AdminToken, bool) {
	digest := sha256.Sum256([]byte(got))
	found, index := 0, 0
	for i, t := range tokens {
		want := sha256.Sum256([]byte(t.Token))
		eq := subtle.ConstantTimeCompare(digest[:], want[:])
		index = subtle.ConstantTimeSelect(eq, i, index)
		found |= eq
	}
	if found != 1 {
		return AdminToken{}, false
	}
	return tokens[index], true
}

// adminAllowed checks the admin credentials, answering 401/403 when they
// do not allow the request: GET needs any role, other methods the operator
// role.
func (s *Server) adminAllowed(w http.ResponseWriter, r *http.Request, access AdminAccess) (caller, bool) {
	var c caller
	if len(access.Tokens) > 0 {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		t, match := matchToken(access.Tokens, got)
		if !ok || !match {
			w.Header().Set("WWW-Authenticate", `Bearer realm="loyaltyhub admin"`)
			writeProblem(w, &Problem{Type: problemAdminAuth, Status: http.StatusUnauthorized,
				Detail: "the admin API needs the header Authorization: Bearer <token>, a token of http.admin_tokens or http.admin_token"})
			return c, false
		}
		c = caller{name: t.Name, role: t.Role}
	} else {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeProblem(w, &Problem{Type: problemAdminForbidden, Status: http.StatusForbidden,
				Detail: "no admin token is set (http.admin_tokens, http.admin_token), so the admin API only answers requests from the loopback interface; set one to use it remotely"})
			return c, false
		}
		c = caller{name: "loopback", role: RoleOperator}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && c.role != RoleOperator {
		writeProblem(w, &Problem{Type: problemAdminRole, Status: http.StatusForbidden,
			Detail: fmt.Sprintf("%s %s needs the %s role; token %q has the %s role, which may only read (GET)", r.Method, r.URL.Path, RoleOperator, c.name, c.role)})
		return c, false
	}
	return c, true
}

// adminRequest is an admin request that may be served.
type adminRequest struct {
	caller
	access AdminAccess
	// body is the request's body, read once the caller is known.
	body []byte
}

// redactor returns how events are shown to the caller: whole to operators.
func (a adminRequest) redactor() (redactor, bool) {
	if a.role == RoleOperator {
		return redactor{}, false
	}
	return newRedactor(a.access.RedactFields), true
}

// deadLetter is d as the caller may see it: for the read role, the
// configured fields redacted in the event and in the reason, and an event
// that is not JSON (which cannot be redacted field by field) left out.
func (a adminRequest) deadLetter(d store.DeadLetter) DeadLetterJSON {
	out := deadLetterJSON(d)
	red, on := a.redactor()
	if !on {
		return out
	}
	out.EventBase64 = ""
	if len(out.Event) > 0 {
		ev, hidden, ok := red.event(out.Event)
		if !ok {
			ev = nil
		}
		out.Event = ev
		out.Reason = redactText(out.Reason, hidden)
	}
	return out
}

// adminReady checks credentials, then reads the body (of a caller allowed
// to make the request), checks the request against hub.yaml and that an
// Admin is wired.
func (s *Server) adminReady(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) (adminRequest, bool) {
	access := s.adminAccess()
	c, ok := s.adminAllowed(w, r, access)
	if !ok {
		return adminRequest{}, false
	}
	a := adminRequest{caller: c, access: access}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
		if err != nil {
			writeProblem(w, &Problem{Type: problemTooLarge, Status: http.StatusRequestEntityTooLarge, Limit: maxAdminBody,
				Detail: fmt.Sprintf("an admin request body is at most %d bytes", maxAdminBody)})
			return adminRequest{}, false
		}
		r.Body, a.body = io.NopCloser(bytes.NewReader(body)), body
	}
	if s.rejectInvalidRequest(w, r, route, params) {
		return adminRequest{}, false
	}
	if s.cfg.Admin == nil {
		writeProblem(w, &Problem{Type: problemAdminOff, Status: http.StatusServiceUnavailable, Detail: "the admin API is not available in this process"})
		return adminRequest{}, false
	}
	return a, true
}

// badRequest answers 400 naming field and the rule it broke.
func badRequest(w http.ResponseWriter, field, rule string) {
	p := &Problem{Type: problemInvalidRequest, Status: http.StatusBadRequest, Detail: field + " " + rule}
	p.addErrors([]FieldError{requestFault(field, rule)})
	writeProblem(w, p)
}

// filterOf reads a dead-letter filter from query parameters.
func filterOf(w http.ResponseWriter, q url.Values) (store.DeadLetterFilter, bool) {
	f := store.DeadLetterFilter{Sync: q.Get("sync"), Code: q.Get("code"), Key: q.Get("key"), Superseded: q.Get("superseded") == "true"}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				badRequest(w, p.name, "must be an RFC 3339 time, e.g. 2026-05-01T12:00:00Z")
				return f, false
			}
			*p.to = t
		}
	}
	return f, checkFilter(w, "", f)
}

// checkFilter answers 400 for a filter whose until is not after its since.
func checkFilter(w http.ResponseWriter, prefix string, f store.DeadLetterFilter) bool {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		badRequest(w, prefix+"until", "must be after since")
		return false
	}
	return true
}

func (s *Server) listSyncs(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if _, ok := s.adminReady(w, r, route, params); !ok {
		return
	}
	syncs, err := s.cfg.Admin.Syncs(r.Context())
	if err != nil {
		s.adminFailed(w, "listing syncs", err)
		return
	}
	if syncs == nil {
		syncs = []SyncStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncs": syncs})
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	q := r.URL.Query()
	f, ok := filterOf(w, q)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = store.DefaultPageSize
	}
	dls, err := s.cfg.Admin.DeadLetters(r.Context(), f, after, limit)
	if err != nil {
		s.adminFailed(w, "listing dead letters", err)
		return
	}
	out := make([]DeadLetterJSON, len(dls))
	next := int64(0)
	for i, d := range dls {
		out[i] = a.deadLetter(d)
		next = d.ID
	}
	if len(dls) < limit {
		next = 0
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out, "next_after": next})
}

func (s *Server) summarizeDeadLetters(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if _, ok := s.adminReady(w, r, route, params); !ok {
		return
	}
	f, ok := filterOf(w, r.URL.Query())
	if !ok {
		return
	}
	groups, err := s.cfg.Admin.SummarizeDeadLetters(r.Context(), f)
	if err != nil {
		s.adminFailed(w, "summing up dead letters", err)
		return
	}
	if groups == nil {
		groups = []store.DeadLetterGroup{}
	}
	var total, superseded int64
	for _, g := range groups {
		total += g.Count
		superseded += g.Superseded
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": groups, "total": total, "superseded": superseded})
}

// discardRequest is the body of POST /v1/dead-letters/discard.
type discardRequest struct {
	IDs    []int64 `json:"ids"`
	Filter *struct {
		Sync       string    `json:"sync"`
		Code       string    `json:"code"`
		Key        string    `json:"key"`
		Since      time.Time `json:"since"`
		Until      time.Time `json:"until"`
		Superseded bool      `json:"superseded"`
	} `json:"filter"`
	Limit  int    `json:"limit"`
	Reason string `json:"reason"`
}

func (s *Server) discardDeadLetters(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	var req discardRequest
	if err := json.Unmarshal(a.body, &req); err != nil {
		badRequest(w, "body", "must be a JSON object: "+err.Error())
		return
	}
	sel := store.Selection{IDs: req.IDs, Limit: req.Limit}
	if req.Filter != nil {
		sel.Filter = store.DeadLetterFilter{Sync: req.Filter.Sync, Code: req.Filter.Code, Key: req.Filter.Key,
			Since: req.Filter.Since, Until: req.Filter.Until, Superseded: req.Filter.Superseded}
		if !checkFilter(w, "filter.", sel.Filter) {
			return
		}
	}
	if len(sel.IDs) == 0 && sel.Filter.IsZero() {
		badRequest(w, "body", "must name the dead letters to discard: ids, a filter with at least one criterion, or both")
		return
	}
	d, err := s.cfg.Admin.DiscardDeadLetters(r.Context(), sel, a.operator(req.Reason))
	switch {
	case errors.Is(err, store.ErrInvalid):
		badRequest(w, "body", err.Error())
		return
	case err != nil:
		s.adminFailed(w, "discarding dead letters", err)
		return
	}
	out := make([]DeadLetterJSON, len(d.DeadLetters))
	for i, dl := range d.DeadLetters {
		out[i] = deadLetterJSON(dl)
	}
	notFound := d.NotFound
	if notFound == nil {
		notFound = []int64{}
	}
	s.logger.Info("dead letters discarded", "by", a.name, "count", len(out), "more", d.More, "audit_id", d.AuditID)
	writeJSON(w, http.StatusOK, map[string]any{"discarded": out, "not_found": notFound, "more": d.More, "audit_id": d.AuditID})
}

func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(params["id"], 10, 64)
	d, err := s.cfg.Admin.Replay(r.Context(), id, a.operator(""))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("no dead letter %d", id)})
	case err != nil:
		s.adminFailed(w, fmt.Sprintf("replaying dead letter %d", id), err)
	default:
		s.logger.Info("dead letter replayed", "by", a.name, "id", id, "sync", d.Sync, "event", d.EventID, "key", d.Key, "version", d.Version)
		writeJSON(w, http.StatusAccepted, map[string]any{"replayed": deadLetterJSON(d)})
	}
}

// guardJSON is a version-guard row on the wire.
type guardJSON struct {
	Version   int64     `json:"version"`
	State     string    `json:"state"`
	EventID   string    `json:"event_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *Server) resetKey(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(a.body, &req); err != nil {
		badRequest(w, "body", "must be a JSON object: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		badRequest(w, "reason", "is required: say why the key is reset, for the audit log")
		return
	}
	sync, key := params["sync"], params["key"]
	res, err := s.cfg.Admin.ResetKey(r.Context(), sync, key, a.operator(req.Reason))
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
		return
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound,
			Detail: fmt.Sprintf("nothing to reset: sync %q holds neither a version-guard row nor dead letters for key %q", sync, key)})
		return
	case errors.Is(err, store.ErrInvalid):
		badRequest(w, "key", err.Error())
		return
	case err != nil:
		s.adminFailed(w, "resetting the key", err)
		return
	}
	out := map[string]any{"sync": res.Sync, "key": res.Key, "audit_id": res.AuditID}
	if res.Guard != nil {
		out["guard"] = guardJSON{Version: res.Guard.Version, State: res.Guard.State, EventID: res.Guard.EventID, UpdatedAt: res.Guard.UpdatedAt}
	}
	discarded := make([]DeadLetterJSON, len(res.Discarded))
	for i, d := range res.Discarded {
		discarded[i] = deadLetterJSON(d)
	}
	out["discarded"] = discarded
	s.logger.Warn("key reset", "by", a.name, "sync", sync, "key", key, "had_guard", res.Guard != nil,
		"dead_letters_discarded", len(discarded), "audit_id", res.AuditID, "reason", req.Reason)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if _, ok := s.adminReady(w, r, route, params); !ok {
		return
	}
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = store.DefaultPageSize
	}
	entries, err := s.cfg.Admin.AuditLog(r.Context(), after, limit)
	if err != nil {
		s.adminFailed(w, "reading the audit log", err)
		return
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	next := int64(0)
	if len(entries) == limit {
		next = entries[len(entries)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "next_after": next})
}

func (s *Server) getLatestEvent(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	ev, topic, err := s.cfg.Admin.LatestEvent(r.Context(), params["sync"], r.URL.Query().Get("key"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
		return
	case err != nil:
		s.adminFailed(w, "reading the latest event", err)
		return
	}
	if red, on := a.redactor(); on {
		if ev, _, ok = red.event(ev); !ok {
			ev = json.RawMessage(`{}`)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": ev, "topic": topic})
}

func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	a, ok := s.adminReady(w, r, route, params)
	if !ok {
		return
	}
	st, err := s.cfg.Admin.StartBackfill(r.Context(), params["sync"])
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, ErrConflict):
		writeProblem(w, &Problem{Type: problemConflict, Status: http.StatusConflict, Detail: err.Error()})
	case err != nil:
		s.adminFailed(w, "starting the backfill", err)
	default:
		s.logger.Info("backfill started", "by", a.name, "sync", params["sync"])
		writeJSON(w, http.StatusAccepted, st)
	}
}

func (s *Server) getBackfill(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if _, ok := s.adminReady(w, r, route, params); !ok {
		return
	}
	st, err := s.cfg.Admin.BackfillStatus(r.Context(), params["sync"])
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case err != nil:
		s.adminFailed(w, "reading the backfill", err)
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) adminFailed(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, store.ErrInvalid) {
		badRequest(w, "request", err.Error()) // the client's to fix, not the hub's
		return
	}
	s.logger.Error("admin API: "+what, "err", err)
	s.unavailable(w, problemAdminOff, what+" failed: "+err.Error())
}

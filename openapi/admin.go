package openapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/routers"

	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// Admin is what the admin API serves: the syncs' state, the dead letters,
// and replay. The hub implements it; a nil Admin answers 503.
type Admin interface {
	Syncs(ctx context.Context) ([]SyncStatus, error)
	DeadLetters(ctx context.Context, sync string, afterID int64, limit int) ([]store.DeadLetter, error)
	// Replay publishes a dead letter's event again; store.ErrNotFound when
	// there is no such dead letter.
	Replay(ctx context.Context, id int64) (store.DeadLetter, error)
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
}

func deadLetterJSON(d store.DeadLetter) DeadLetterJSON {
	out := DeadLetterJSON{ID: d.ID, Sync: d.Sync, EventID: d.EventID, Key: d.Key, Version: d.Version,
		Reason: d.Reason, Code: d.Code, Attempts: d.Attempts, At: d.At}
	if json.Valid(d.Event) {
		out.Event = d.Event
	} else {
		out.EventBase64 = base64.StdEncoding.EncodeToString(d.Event)
	}
	return out
}

const (
	problemAdminAuth      = "urn:loyaltyhub:problem:admin-unauthorized"
	problemAdminForbidden = "urn:loyaltyhub:problem:admin-forbidden"
	problemAdminOff       = "urn:loyaltyhub:problem:admin-unavailable"
	problemConflict       = "urn:loyaltyhub:problem:conflict"
)

// adminAllowed checks the admin credentials, answering 401/403 when not.
func (s *Server) adminAllowed(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.AdminToken != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="loyaltyhub admin"`)
			writeProblem(w, &Problem{Type: problemAdminAuth, Status: http.StatusUnauthorized,
				Detail: "the admin API needs the header Authorization: Bearer <http.admin_token>"})
			return false
		}
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		writeProblem(w, &Problem{Type: problemAdminForbidden, Status: http.StatusForbidden,
			Detail: "no http.admin_token is set, so the admin API only answers requests from the loopback interface; set http.admin_token to use it remotely"})
		return false
	}
	return true
}

// adminReady checks credentials, the request and that an Admin is wired.
func (s *Server) adminReady(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) bool {
	if !s.adminAllowed(w, r) || s.rejectInvalidRequest(w, r, route, params) {
		return false
	}
	if s.cfg.Admin == nil {
		writeProblem(w, &Problem{Type: problemAdminOff, Status: http.StatusServiceUnavailable, Detail: "the admin API is not available in this process"})
		return false
	}
	return true
}

func (s *Server) listSyncs(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if !s.adminReady(w, r, route, params) {
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
	if !s.adminReady(w, r, route, params) {
		return
	}
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = store.DefaultPageSize
	}
	dls, err := s.cfg.Admin.DeadLetters(r.Context(), q.Get("sync"), after, limit)
	if err != nil {
		s.adminFailed(w, "listing dead letters", err)
		return
	}
	out := make([]DeadLetterJSON, len(dls))
	next := int64(0)
	for i, d := range dls {
		out[i] = deadLetterJSON(d)
		next = d.ID
	}
	if len(dls) < limit {
		next = 0
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out, "next_after": next})
}

func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if !s.adminReady(w, r, route, params) {
		return
	}
	id, _ := strconv.ParseInt(params["id"], 10, 64)
	d, err := s.cfg.Admin.Replay(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("no dead letter %d", id)})
	case err != nil:
		s.adminFailed(w, fmt.Sprintf("replaying dead letter %d", id), err)
	default:
		s.logger.Info("dead letter replayed", "id", id, "sync", d.Sync, "event", d.EventID, "key", d.Key, "version", d.Version)
		writeJSON(w, http.StatusAccepted, map[string]any{"replayed": deadLetterJSON(d)})
	}
}

func (s *Server) getLatestEvent(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if !s.adminReady(w, r, route, params) {
		return
	}
	ev, topic, err := s.cfg.Admin.LatestEvent(r.Context(), params["sync"], r.URL.Query().Get("key"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, &Problem{Type: problemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case err != nil:
		s.adminFailed(w, "reading the latest event", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"event": ev, "topic": topic})
	}
}

func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if !s.adminReady(w, r, route, params) {
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
		s.logger.Info("backfill started", "sync", params["sync"])
		writeJSON(w, http.StatusAccepted, st)
	}
}

func (s *Server) getBackfill(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string) {
	if !s.adminReady(w, r, route, params) {
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
	s.logger.Error("admin API: "+what, "err", err)
	s.unavailable(w, problemAdminOff, what+" failed: "+err.Error())
}

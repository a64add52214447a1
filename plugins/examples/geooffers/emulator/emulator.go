// Package emulator plays the GeoOffers vendor service on one machine: an
// HTTP API that takes loyalty members and their segment memberships in
// batches and issues a geolocated offer voucher to a member the first time
// they join a segment, published on a paged voucher feed. It keeps state in
// memory, checks a bearer API key, and can be told to fail (429 with
// Retry-After, 503) or be slow, so the connector can be tested offline.
//
// API (JSON, Authorization: Bearer API_KEY):
//
//	GET  /v1/ping
//	POST /v1/members:batchUpsert          {"members":[{external_id,email,first_name,tier,home_lat,home_lon,opt_in}]}
//	POST /v1/members:batchDelete          {"external_ids":[...]}
//	POST /v1/segment-memberships:batch    {"memberships":[{segment,member_external_id,op:"add"|"remove"}]}
//	GET  /v1/vouchers?after=SEQ&limit=N   the voucher feed, oldest first
//	POST /v1/vouchers/{id}:redeem         marks a voucher redeemed (a new feed entry)
//	GET  /v1/objects/{name}/schema        fields of members or segment_memberships
//	POST /_emulator/faults                {"unavailable":N,"rate_limited":N,"retry_after_s":S,"latency_ms":L}
//
// Batch answers carry one result per item, {"id"} or {"error":{"code","message"}};
// codes: INVALID_FIELD (never accepted), MEMBER_NOT_FOUND (retry later).
package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxBatch is the largest batch the service takes.
const MaxBatch = 100

// Tiers the service knows.
var Tiers = []string{"bronze", "silver", "gold", "platinum"}

// Member is one member as the service holds it.
type Member struct {
	ID         string  `json:"id"`
	ExternalID string  `json:"external_id"`
	Email      string  `json:"email"`
	FirstName  string  `json:"first_name,omitempty"`
	Tier       string  `json:"tier,omitempty"`
	HomeLat    float64 `json:"home_lat,omitempty"`
	HomeLon    float64 `json:"home_lon,omitempty"`
	OptIn      bool    `json:"opt_in"`
	Updates    int     `json:"updates"`
}

// Voucher is one issued voucher.
type Voucher struct {
	ID         string    `json:"id"`
	Code       string    `json:"code"`
	MemberID   string    `json:"member_id"`
	Segment    string    `json:"segment"`
	Offer      string    `json:"offer"`
	Value      float64   `json:"value"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    int64     `json:"version"`
	Sequence   int64     `json:"sequence"`
	membership string
}

// Faults makes the next requests fail.
type Faults struct {
	// Unavailable: the next N API requests get 503.
	Unavailable int `json:"unavailable"`
	// RateLimited: the next N API requests get 429 with Retry-After.
	RateLimited int `json:"rate_limited"`
	// RetryAfterS is the Retry-After of a 429, in seconds (default 1).
	RetryAfterS int `json:"retry_after_s"`
	// LatencyMS delays every API request.
	LatencyMS int `json:"latency_ms"`
}

// Server is the emulated service; it is an http.Handler.
type Server struct {
	apiKey string
	now    func() time.Time
	mux    *http.ServeMux

	mu          sync.Mutex
	members     map[string]*Member
	memberships map[string]string // segment|member -> id
	vouchers    []*Voucher        // feed, by sequence
	byID        map[string]*Voucher
	seq         int64
	faults      Faults
	requests    int
}

// New returns a service that accepts apiKey.
func New(apiKey string) *Server {
	s := &Server{apiKey: apiKey, now: time.Now, mux: http.NewServeMux(),
		members: map[string]*Member{}, memberships: map[string]string{}, byID: map[string]*Voucher{}}
	s.mux.HandleFunc("GET /v1/ping", s.ping)
	s.mux.HandleFunc("POST /v1/members:batchUpsert", s.upsertMembers)
	s.mux.HandleFunc("POST /v1/members:batchDelete", s.deleteMembers)
	s.mux.HandleFunc("POST /v1/segment-memberships:batch", s.changeMemberships)
	s.mux.HandleFunc("GET /v1/vouchers", s.feed)
	s.mux.HandleFunc("POST /v1/vouchers/{action}", s.redeem)
	s.mux.HandleFunc("GET /v1/objects/{name}/schema", s.schema)
	s.mux.HandleFunc("POST /_emulator/faults", s.setFaults)
	return s
}

// SetFaults replaces the fault plan.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Members returns a copy of the members, by external id.
func (s *Server) Members() map[string]Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Member, len(s.members))
	for k, m := range s.members {
		out[k] = *m
	}
	return out
}

// Vouchers returns a copy of the vouchers, by id.
func (s *Server) Vouchers() map[string]Voucher {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Voucher, len(s.byID))
	for k, v := range s.byID {
		out[k] = *v
	}
	return out
}

// Requests is how many API requests the service answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ServeHTTP checks the key, applies faults and serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/_emulator/") {
		if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
			writeErr(w, http.StatusUnauthorized, "UNAUTHENTICATED", "missing or wrong API key")
			return
		}
		s.mu.Lock()
		s.requests++
		f := &s.faults
		latency := time.Duration(f.LatencyMS) * time.Millisecond
		var status int
		retryAfter := max(f.RetryAfterS, 1)
		switch {
		case f.Unavailable > 0:
			f.Unavailable--
			status = http.StatusServiceUnavailable
		case f.RateLimited > 0:
			f.RateLimited--
			status = http.StatusTooManyRequests
		}
		s.mu.Unlock()
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		switch status {
		case http.StatusServiceUnavailable:
			writeErr(w, status, "UNAVAILABLE", "the service is down for a moment")
			return
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			writeErr(w, status, "RATE_LIMITED", "too many requests")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// APIError is the service's error body.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]APIError{"error": {Code: code, Message: msg}})
}

// ItemResult is one item's answer in a batch.
type ItemResult struct {
	ID    string    `json:"id,omitempty"`
	Error *APIError `json:"error,omitempty"`
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) ping(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func stableID(prefix, key string) string {
	h := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(h[:8])
}

// memberIn is a member as sent: any field may be absent or of a wrong type.
type memberIn map[string]any

func (s *Server) upsertMembers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Members []memberIn `json:"members"`
	}
	if !decode(w, r, &body) {
		return
	}
	if len(body.Members) > MaxBatch {
		writeErr(w, http.StatusBadRequest, "BATCH_TOO_LARGE", fmt.Sprintf("%d members; at most %d per request", len(body.Members), MaxBatch))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ItemResult, len(body.Members))
	for i, in := range body.Members {
		m, apiErr := parseMember(in)
		if apiErr != nil {
			out[i] = ItemResult{Error: apiErr}
			continue
		}
		if old, ok := s.members[m.ExternalID]; ok {
			m.Updates = old.Updates + 1
		}
		m.ID = stableID("mbr_", m.ExternalID)
		s.members[m.ExternalID] = m
		out[i] = ItemResult{ID: m.ID}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func invalid(field, msg string) *APIError {
	return &APIError{Code: "INVALID_FIELD", Message: field + ": " + msg}
}

func parseMember(in memberIn) (*Member, *APIError) {
	m := &Member{}
	for k, v := range in {
		switch k {
		case "external_id", "email", "first_name", "tier":
			s, ok := v.(string)
			if !ok && v != nil {
				return nil, invalid(k, "must be a string")
			}
			switch k {
			case "external_id":
				m.ExternalID = s
			case "email":
				m.Email = s
			case "first_name":
				m.FirstName = s
			case "tier":
				m.Tier = s
			}
		case "home_lat", "home_lon":
			f, ok := v.(float64)
			if !ok && v != nil {
				return nil, invalid(k, "must be a number")
			}
			if k == "home_lat" {
				if f < -90 || f > 90 {
					return nil, invalid(k, "must be between -90 and 90")
				}
				m.HomeLat = f
			} else {
				if f < -180 || f > 180 {
					return nil, invalid(k, "must be between -180 and 180")
				}
				m.HomeLon = f
			}
		case "opt_in":
			b, ok := v.(bool)
			if !ok && v != nil {
				return nil, invalid(k, "must be true or false")
			}
			m.OptIn = b
		default:
			return nil, invalid(k, "unknown field; fields: external_id, email, first_name, tier, home_lat, home_lon, opt_in")
		}
	}
	if m.ExternalID == "" {
		return nil, invalid("external_id", "is required")
	}
	if m.Email == "" {
		return nil, invalid("email", "is required")
	}
	if _, err := mail.ParseAddress(m.Email); err != nil {
		return nil, invalid("email", fmt.Sprintf("%q is not an email address", m.Email))
	}
	if m.Tier != "" && !slices.Contains(Tiers, m.Tier) {
		return nil, invalid("tier", fmt.Sprintf("%q is not one of %s", m.Tier, strings.Join(Tiers, ", ")))
	}
	return m, nil
}

func (s *Server) deleteMembers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ExternalIDs []string `json:"external_ids"`
	}
	if !decode(w, r, &body) {
		return
	}
	if len(body.ExternalIDs) > MaxBatch {
		writeErr(w, http.StatusBadRequest, "BATCH_TOO_LARGE", fmt.Sprintf("at most %d per request", MaxBatch))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ItemResult, len(body.ExternalIDs))
	for i, id := range body.ExternalIDs {
		delete(s.members, id) // deleting an absent member is a success: idempotent
		out[i] = ItemResult{ID: stableID("mbr_", id)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// offers by segment name prefix; any other segment gets the default offer.
var offers = map[string]struct {
	offer string
	value float64
}{
	"geo-coffee": {"Free coffee at a partner café near you", 4.5},
	"geo-fuel":   {"10% off fuel at stations on your route", 10},
}

func (s *Server) changeMemberships(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Memberships []struct {
			Segment          string `json:"segment"`
			MemberExternalID string `json:"member_external_id"`
			Op               string `json:"op"`
		} `json:"memberships"`
	}
	if !decode(w, r, &body) {
		return
	}
	if len(body.Memberships) > MaxBatch {
		writeErr(w, http.StatusBadRequest, "BATCH_TOO_LARGE", fmt.Sprintf("at most %d per request", MaxBatch))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC().Truncate(time.Millisecond)
	out := make([]ItemResult, len(body.Memberships))
	for i, m := range body.Memberships {
		switch {
		case m.Segment == "":
			out[i] = ItemResult{Error: invalid("segment", "is required")}
			continue
		case m.MemberExternalID == "":
			out[i] = ItemResult{Error: invalid("member_external_id", "is required")}
			continue
		case m.Op != "add" && m.Op != "remove":
			out[i] = ItemResult{Error: invalid("op", fmt.Sprintf("%q is not add or remove", m.Op))}
			continue
		}
		key := m.Segment + "|" + m.MemberExternalID
		id := stableID("sm_", key)
		if m.Op == "remove" {
			delete(s.memberships, key)
			out[i] = ItemResult{ID: id}
			continue
		}
		if _, ok := s.members[m.MemberExternalID]; !ok {
			out[i] = ItemResult{Error: &APIError{Code: "MEMBER_NOT_FOUND", Message: fmt.Sprintf("member %q is not known yet", m.MemberExternalID)}}
			continue
		}
		s.memberships[key] = id
		out[i] = ItemResult{ID: id}
		vid := stableID("vch_", key)
		if _, issued := s.byID[vid]; issued {
			continue // one voucher per member and segment, however often they join
		}
		o, ok := offers[m.Segment]
		if !ok {
			o.offer, o.value = "5% off at partner stores near you", 5
		}
		s.seq++
		v := &Voucher{ID: vid, Code: strings.ToUpper(vid[4:12]), MemberID: m.MemberExternalID, Segment: m.Segment,
			Offer: o.offer, Value: o.value, Currency: "EUR", Status: "issued", IssuedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
			UpdatedAt: now, Version: 1, Sequence: s.seq, membership: key}
		s.byID[vid] = v
		s.vouchers = append(s.vouchers, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (s *Server) feed(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if r.URL.Query().Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "after: must be a sequence number")
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 500 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.vouchers), func(i int) bool { return s.vouchers[i].Sequence > after })
	page := []Voucher{}
	next := after
	for ; i < len(s.vouchers) && len(page) < limit; i++ {
		page = append(page, *s.vouchers[i])
		next = s.vouchers[i].Sequence
	}
	writeJSON(w, http.StatusOK, map[string]any{"vouchers": page, "next": next, "has_more": i < len(s.vouchers)})
}

func (s *Server) redeem(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("action"), ":redeem")
	if !ok {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "no such action")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	if !ok {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("voucher %q not found", id))
		return
	}
	if v.Status != "redeemed" {
		// A changed voucher moves to the end of the feed with a new sequence.
		s.seq++
		v.Status, v.Version, v.Sequence, v.UpdatedAt = "redeemed", v.Version+1, s.seq, s.now().UTC().Truncate(time.Millisecond)
		s.vouchers = slices.DeleteFunc(s.vouchers, func(x *Voucher) bool { return x == v })
		s.vouchers = append(s.vouchers, v)
	}
	writeJSON(w, http.StatusOK, v)
}

// Field is one field in an object schema.
type Field struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Key      bool     `json:"key,omitempty"`
	Values   []string `json:"values,omitempty"`
	MaxLen   int      `json:"max_length,omitempty"`
}

var schemas = map[string][]Field{
	"members": {
		{Name: "external_id", Type: "string", Required: true, Key: true, MaxLen: 64},
		{Name: "email", Type: "email", Required: true, MaxLen: 254},
		{Name: "first_name", Type: "string", MaxLen: 80},
		{Name: "tier", Type: "enum", Values: Tiers},
		{Name: "home_lat", Type: "number"},
		{Name: "home_lon", Type: "number"},
		{Name: "opt_in", Type: "boolean"},
	},
	"segment_memberships": {
		{Name: "segment", Type: "string", Required: true, MaxLen: 80},
		{Name: "member_external_id", Type: "string", Required: true, MaxLen: 64},
	},
}

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	f, ok := schemas[r.PathValue("name")]
	if !ok {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no object %q; objects: members, segment_memberships", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "fields": f})
}

func (s *Server) setFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decode(w, r, &f) {
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

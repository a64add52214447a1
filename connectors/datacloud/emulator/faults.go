package emulator

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation names, as counted by Calls and named in Fault.Operations.
const (
	OpCoreToken    = "core.token"    // POST /services/oauth2/token
	OpA360Token    = "a360.token"    // POST /services/a360/token
	OpIngestUpsert = "ingest.upsert" // POST /api/v1/ingest/sources/{connector}/{object}
	OpIngestDelete = "ingest.delete" // DELETE /api/v1/ingest/sources/{connector}/{object}
)

var operations = []string{OpCoreToken, OpA360Token, OpIngestUpsert, OpIngestDelete}

// FaultKind names an injectable failure.
type FaultKind string

const (
	// FaultTooManyRequests answers HTTP 429 with header Retry-After: 1, before the call is
	// processed.
	FaultTooManyRequests FaultKind = "http_429"
	// FaultServerError answers HTTP 500 with an error body, before the call is processed.
	FaultServerError FaultKind = "http_500"
	// FaultLatency delays the call by Latency before it is processed.
	FaultLatency FaultKind = "latency"
)

var faultKinds = []FaultKind{FaultTooManyRequests, FaultServerError, FaultLatency}

// Fault is one injected failure rule. A call matching Operations fires the first matching
// fault of each kind: latency first, then 429, then 500. A fault with Count > 0 is removed
// after firing Count times; with Count 0 it stays until removed.
type Fault struct {
	// ID identifies the fault; set by AddFault.
	ID string `json:"id,omitempty"`
	// Kind of failure. Required.
	Kind FaultKind `json:"kind"`
	// Count is how many times the fault fires before it is removed. Default 0: unlimited.
	Count int `json:"count,omitempty"`
	// Latency added by FaultLatency, e.g. 250ms. Required for that kind.
	Latency time.Duration `json:"-"`
	// Operations restricts the fault to these operations, named as in Calls
	// ("core.token", "a360.token", "ingest.upsert", "ingest.delete"). Default: the two
	// ingest operations (token requests are only hit when named).
	Operations []string `json:"operations,omitempty"`
	// Fired is how many times the fault has fired (read-only).
	Fired int `json:"fired"`
}

func (f *Fault) validate() error {
	if !slices.Contains(faultKinds, f.Kind) {
		kinds := make([]string, len(faultKinds))
		for i, k := range faultKinds {
			kinds[i] = string(k)
		}
		return fmt.Errorf("fault Kind %q: want one of %s", f.Kind, strings.Join(kinds, ", "))
	}
	if f.Count < 0 {
		return fmt.Errorf("fault Count %d: want 0 (unlimited) or more", f.Count)
	}
	if f.Kind == FaultLatency && f.Latency <= 0 {
		return fmt.Errorf("fault Latency %s: a latency fault needs a positive latency", f.Latency)
	}
	for _, op := range f.Operations {
		if !slices.Contains(operations, op) {
			return fmt.Errorf("fault Operations: %q is not an operation; want some of %s", op, strings.Join(operations, ", "))
		}
	}
	return nil
}

// AddFault activates a fault and returns its id.
func (s *Server) AddFault(f Fault) (string, error) {
	if err := f.validate(); err != nil {
		return "", err
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faultSeq++
	f.ID = "f" + strconv.Itoa(s.faultSeq)
	f.Fired = 0
	f.Operations = slices.Clone(f.Operations)
	s.faults = append(s.faults, &f)
	return f.ID, nil
}

// RemoveFault deactivates one fault; it reports whether the fault was active.
func (s *Server) RemoveFault(id string) bool {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, f := range s.faults {
		if f.ID == id {
			s.faults = slices.Delete(s.faults, i, i+1)
			return true
		}
	}
	return false
}

// ClearFaults deactivates every fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

// Faults returns copies of the active faults.
func (s *Server) Faults() []Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
		out[i].Operations = slices.Clone(f.Operations)
	}
	return out
}

func (f *Fault) matches(op string) bool {
	if len(f.Operations) == 0 {
		return op == OpIngestUpsert || op == OpIngestDelete
	}
	return slices.Contains(f.Operations, op)
}

// fire fires the first active fault of kind matching op and returns a copy of it.
func (s *Server) fire(kind FaultKind, op string) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, f := range s.faults {
		if f.Kind != kind || !f.matches(op) {
			continue
		}
		f.Fired++
		fired := *f
		if f.Count > 0 && f.Fired >= f.Count {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &fired
	}
	return nil
}

// requestFaults applies the faults of a call; a non-nil reply ends the call. Token
// operations answer in the OAuth error shape, ingest operations in the tenant's.
func (s *Server) requestFaults(r *http.Request, op string) *reply {
	if f := s.fire(FaultLatency, op); f != nil {
		sleep(r.Context(), f.Latency)
	}
	oauth := op == OpCoreToken || op == OpA360Token
	if s.fire(FaultTooManyRequests, op) != nil {
		// UNVERIFIED: the Ingestion API documents 429 Too Many Requests ("the app should
		// retry later") but neither its body nor a Retry-After value; 1 s is sent.
		var rp *reply
		if oauth {
			rp = oauthError(http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests. Retry after 1 second.")
		} else {
			rp = apiError(r, http.StatusTooManyRequests, "Rate limit exceeded: too many requests. Retry after 1 second.")
		}
		rp.header = map[string]string{"Retry-After": "1"}
		return rp
	}
	if s.fire(FaultServerError, op) != nil {
		// UNVERIFIED: the 500 body is not documented; the usual error shape is sent.
		if oauth {
			return oauthError(http.StatusInternalServerError, "server_error", "An unexpected error occurred. Try again later.")
		}
		return apiError(r, http.StatusInternalServerError, "Internal Server Error: an unexpected error occurred. Try again later.")
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *Server) countCall(op string) {
	s.faultMu.Lock()
	s.calls[op]++
	s.faultMu.Unlock()
}

// Calls returns the number of API calls answered, by operation name: "core.token" (core
// Salesforce logins), "a360.token" (token exchanges), "ingest.upsert" and "ingest.delete".
// Every answer counts, errors and injected faults included; unknown paths, wrong methods
// and the /__emulator/ endpoints do not.
func (s *Server) Calls() map[string]int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return maps.Clone(s.calls)
}

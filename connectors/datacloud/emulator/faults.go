package emulator

import (
	"net/http"

	"github.com/loyaltyhub/loyaltyhub/connectors/internal/emufault"
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
type FaultKind = emufault.Kind

const (
	// FaultTooManyRequests answers HTTP 429 with header Retry-After: 1, before the call is
	// processed.
	FaultTooManyRequests = emufault.TooManyRequests
	// FaultServerError answers HTTP 500 with an error body, before the call is processed.
	FaultServerError = emufault.ServerError
	// FaultLatency delays the call by Latency before it is processed.
	FaultLatency = emufault.Latency
)

// Fault is one injected failure rule (see emufault.Fault). Operations are
// named as in Calls ("core.token", "a360.token", "ingest.upsert",
// "ingest.delete"); without them a fault fires on the two ingest
// operations only.
type Fault = emufault.Fault

func newFaults() *emufault.Set {
	return emufault.New(operations, func(op string) bool { return op == OpIngestUpsert || op == OpIngestDelete })
}

// AddFault activates a fault and returns its id.
func (s *Server) AddFault(f Fault) (string, error) { return s.faults.Add(f) }

// RemoveFault deactivates one fault; it reports whether the fault was active.
func (s *Server) RemoveFault(id string) bool { return s.faults.Remove(id) }

// ClearFaults deactivates every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Faults returns copies of the active faults.
func (s *Server) Faults() []Fault { return s.faults.List() }

func (s *Server) countCall(op string) { s.faults.Count(op) }

// requestFaults applies the faults of a call; a non-nil reply ends the call. Token
// operations answer in the OAuth error shape, ingest operations in the tenant's.
func (s *Server) requestFaults(r *http.Request, op string) *reply {
	oauth := op == OpCoreToken || op == OpA360Token
	switch s.faults.Apply(r.Context(), op) {
	case FaultTooManyRequests:
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
	case FaultServerError:
		// UNVERIFIED: the 500 body is not documented; the usual error shape is sent.
		if oauth {
			return oauthError(http.StatusInternalServerError, "server_error", "An unexpected error occurred. Try again later.")
		}
		return apiError(r, http.StatusInternalServerError, "Internal Server Error: an unexpected error occurred. Try again later.")
	}
	return nil
}

// Calls returns the number of API calls answered, by operation name: "core.token" (core
// Salesforce logins), "a360.token" (token exchanges), "ingest.upsert" and "ingest.delete".
// Every answer counts, errors and injected faults included; unknown paths, wrong methods
// and the /__emulator/ endpoints do not.
func (s *Server) Calls() map[string]int { return s.faults.Calls() }

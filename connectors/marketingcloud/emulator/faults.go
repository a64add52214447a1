package emulator

import (
	"context"
	"net/http"

	"github.com/loyaltyhub/loyaltyhub/connectors/internal/emufault"
)

// operations are the operation names of Calls and Fault.Operations.
var operations = []string{"auth", "rowset.upsert", "row.upsert", "async.upsert", "async.insert", "async.status", "async.results"}

// FaultKind names an injectable failure.
type FaultKind = emufault.Kind

const (
	// FaultTooManyRequests answers HTTP 429 with header Retry-After: 1 and SFMC's rate limit
	// body {"message":"Rate limit exceeded","errorcode":50100,"retryAfter":1,…}, before the
	// call is processed.
	FaultTooManyRequests = emufault.TooManyRequests
	// FaultServerError answers HTTP 500 with an error body, before the call is processed.
	FaultServerError = emufault.ServerError
	// FaultLatency delays the call by Latency before it is processed.
	FaultLatency = emufault.Latency
)

// Fault is one injected failure rule (see emufault.Fault). Operations are
// named as in Calls ("auth", "rowset.upsert", "row.upsert", "async.upsert",
// "async.insert", "async.status", "async.results"); without them a fault
// fires on every call but "auth".
type Fault = emufault.Fault

func newFaults() *emufault.Set {
	return emufault.New(operations, func(op string) bool { return op != "auth" })
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

// requestFaults applies the faults of a call; a non-nil reply ends the call.
func (s *Server) requestFaults(ctx context.Context, op string) *reply {
	switch s.faults.Apply(ctx, op) {
	case FaultTooManyRequests:
		// The documented rate limit answer (errorcode 50100), with a 1 s wait.
		return &reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "1"},
			body: map[string]any{"message": "Rate limit exceeded", "errorcode": 50100, "retryAfter": 1, "documentation": docURL}}
	case FaultServerError:
		// UNVERIFIED: SFMC's 500 body is not documented; an error body of the usual shape.
		return errReply(http.StatusInternalServerError, 0, "Internal Server Error")
	}
	return nil
}

// Calls returns the number of API calls answered, by operation name: "auth" (token
// requests), "rowset.upsert", "row.upsert", "async.upsert", "async.insert",
// "async.status" and "async.results". Every answer counts, errors and injected faults
// included; unknown paths, wrong methods and the /__emulator/ endpoints do not.
func (s *Server) Calls() map[string]int { return s.faults.Calls() }

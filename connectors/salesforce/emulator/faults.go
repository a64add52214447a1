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

// FaultKind names an injectable failure.
type FaultKind string

const (
	// FaultTooManyRequests answers HTTP 429 with Retry-After: 1 before the call is processed
	// (not counted against the API limit).
	FaultTooManyRequests FaultKind = "http_429"
	// FaultUnavailable answers HTTP 503 SERVER_UNAVAILABLE before the call is processed.
	FaultUnavailable FaultKind = "http_503"
	// FaultLockRow fails a whole write call with HTTP 400 UNABLE_TO_LOCK_ROW (counted).
	FaultLockRow FaultKind = "unable_to_lock_row"
	// FaultRecordLockRow fails single records with UNABLE_TO_LOCK_ROW: a per-record error
	// in collections, composite and Bulk API jobs, a 400 on single-record calls. Count
	// counts records.
	FaultRecordLockRow FaultKind = "record_unable_to_lock_row"
	// FaultRequestLimit answers 403 REQUEST_LIMIT_EXCEEDED as if the daily limit were reached.
	FaultRequestLimit FaultKind = "request_limit_exceeded"
	// FaultLatency delays the call by Latency before it is processed.
	FaultLatency FaultKind = "latency"
	// FaultBulkJobFailed fails a Bulk API 2.0 ingest job being processed once its first
	// transaction of rows is written (200 rows; the others stay unprocessed): the job ends
	// Failed with "InternalServerError : ...", as Salesforce fails a job whose batch could
	// not be processed after its retries. It matches the record operations of jobs
	// ("bulk.insert", "bulk.upsert", ...) and Objects; Count counts jobs.
	FaultBulkJobFailed FaultKind = "bulk_job_failed"
)

var faultKinds = []FaultKind{FaultTooManyRequests, FaultUnavailable, FaultLockRow, FaultRecordLockRow, FaultRequestLimit, FaultLatency, FaultBulkJobFailed}

// Fault is one injected failure rule. A call (or, for FaultRecordLockRow, a record) is
// eligible when it matches Operations and Objects; an eligible call fires the fault with
// Probability. A fault with Count > 0 is removed after firing Count times; with Count 0 it
// stays until removed.
type Fault struct {
	// ID identifies the fault; set by AddFault.
	ID string `json:"id,omitempty"`
	// Kind of failure. Required.
	Kind FaultKind `json:"kind"`
	// Probability of firing on each eligible call, in (0, 1]. Default 0 means 1 (always).
	Probability float64 `json:"probability,omitempty"`
	// Count is how many times the fault fires before it is removed. Default 0: unlimited.
	Count int `json:"count,omitempty"`
	// Latency added by FaultLatency, e.g. 250ms. Required for that kind.
	Latency time.Duration `json:"-"`
	// Operations restricts the fault to these call kinds, as reported in Stats.Calls
	// ("sobject.create", "collections.upsert", "composite", "query", "bulk.upload",
	// "auth", ...) or, for FaultRecordLockRow, the record operations of Bulk API jobs
	// ("bulk.insert", "bulk.upsert", ...); an entry without a dot matches the whole family
	// ("collections", "bulk"). Default: every REST call;
	// the token endpoint ("auth") only when listed; for FaultLockRow every write call.
	Operations []string `json:"operations,omitempty"`
	// Objects restricts FaultRecordLockRow and FaultBulkJobFailed to records (jobs) of
	// these objects. Default: all.
	Objects []string `json:"objects,omitempty"`
	// Fired is how many times the fault has fired (read-only).
	Fired int `json:"fired"`
}

func (f *Fault) validate() error {
	if !slices.Contains(faultKinds, f.Kind) {
		kinds := make([]string, len(faultKinds))
		for i, k := range faultKinds {
			kinds[i] = string(k)
		}
		return fmt.Errorf("fault kind %q: want one of %s", f.Kind, strings.Join(kinds, ", "))
	}
	if f.Probability < 0 || f.Probability > 1 {
		return fmt.Errorf("fault probability %v: want a number in [0, 1] (0 means always)", f.Probability)
	}
	if f.Count < 0 {
		return fmt.Errorf("fault count %d: want 0 (unlimited) or more", f.Count)
	}
	if f.Kind == FaultLatency && f.Latency <= 0 {
		return fmt.Errorf("fault latency %s: a latency fault needs a positive latency", f.Latency)
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
	f.Objects = slices.Clone(f.Objects)
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

// Faults returns the active faults.
func (s *Server) Faults() []Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
	}
	return out
}

func isWriteKind(kind string) bool {
	switch kind {
	case "sobject.create", "sobject.update", "sobject.upsert", "sobject.delete",
		"collections.create", "collections.update", "collections.upsert", "collections.delete", "composite":
		return true
	}
	return false
}

func (f *Fault) matchesOp(kind string) bool {
	if len(f.Operations) == 0 {
		if kind == "auth" {
			return false
		}
		if f.Kind == FaultLockRow {
			return isWriteKind(kind)
		}
		return true
	}
	for _, op := range f.Operations {
		if op == kind || (!strings.Contains(op, ".") && strings.HasPrefix(kind, op+".")) {
			return true
		}
	}
	return false
}

// fire picks the first active fault of kind that matches and fires it.
func (s *Server) fire(kind FaultKind, op, object string) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, f := range s.faults {
		if f.Kind != kind || !f.matchesOp(op) {
			continue
		}
		if len(f.Objects) > 0 && !slices.ContainsFunc(f.Objects, func(o string) bool { return strings.EqualFold(o, object) }) {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && s.rng.Float64() >= f.Probability {
			continue
		}
		f.Fired++
		fired := *f
		if f.Count > 0 && f.Fired >= f.Count {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		s.statsMu.Lock()
		s.stats.Faults[string(kind)]++
		s.statsMu.Unlock()
		return &fired
	}
	return nil
}

// requestFaults applies the call-level faults; a non-nil response ends the call.
func (s *Server) requestFaults(ctx context.Context, op string) *response {
	if f := s.fire(FaultLatency, op, ""); f != nil {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if s.fire(FaultTooManyRequests, op, "") != nil {
		resp := errResp(http.StatusTooManyRequests, newErr("REQUEST_LIMIT_EXCEEDED", "Too many requests: the org is throttling API calls, retry later"))
		resp.header = map[string]string{"Retry-After": "1"}
		return resp
	}
	if s.fire(FaultUnavailable, op, "") != nil {
		return errResp(http.StatusServiceUnavailable, newErr("SERVER_UNAVAILABLE", "Server temporarily unavailable, retry later"))
	}
	if s.fire(FaultRequestLimit, op, "") != nil {
		return errResp(http.StatusForbidden, errLimit())
	}
	if s.fire(FaultLockRow, op, "") != nil {
		s.addUsage()
		s.countCall(op)
		return errResp(http.StatusBadRequest, newErr("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"))
	}
	return nil
}

// authFaults applies faults listed for the "auth" operation to the token endpoint.
func (s *Server) authFaults(r *http.Request) *response {
	if f := s.fire(FaultLatency, "auth", ""); f != nil {
		time.Sleep(f.Latency)
	}
	if s.fire(FaultTooManyRequests, "auth", "") != nil {
		return &response{status: http.StatusTooManyRequests, body: map[string]string{"error": "rate_limited", "error_description": "too many requests"}, header: map[string]string{"Retry-After": "1"}}
	}
	if s.fire(FaultUnavailable, "auth", "") != nil {
		return &response{status: http.StatusServiceUnavailable, body: map[string]string{"error": "temporarily_unavailable", "error_description": "service temporarily unavailable"}}
	}
	return nil
}

// recordLock reports a per-record UNABLE_TO_LOCK_ROW for one record, if a fault fires.
func (s *Server) recordLock(op, object, id string) *sfError {
	if s.fire(FaultRecordLockRow, op, object) == nil {
		return nil
	}
	msg := "unable to obtain exclusive access to this record"
	if id != "" {
		msg += " or 1 records: " + id
	}
	return newErr("UNABLE_TO_LOCK_ROW", "%s", msg)
}

// Stats are counters of what the emulator served.
type Stats struct {
	// APIUsage is the number of API calls counted in the current 24-hour window.
	APIUsage int `json:"apiUsage"`
	// DailyAPILimit is the configured limit.
	DailyAPILimit int `json:"dailyApiLimit"`
	// Calls counts top-level calls by kind: "auth", "versions", "resources", "limits",
	// "describeGlobal", "describe", "sobject.info", "sobject.create", "sobject.get",
	// "sobject.update", "sobject.upsert", "sobject.delete", "collections.create",
	// "collections.update", "collections.upsert", "collections.delete",
	// "collections.get", "composite", "query", "queryMore", the Bulk API 2.0 calls
	// "bulk.createJob", "bulk.upload", "bulk.updateJob" (close or abort), "bulk.getJob",
	// "bulk.listJobs", "bulk.deleteJob", "bulk.results", and "unauthorized",
	// "limit_exceeded", "not_found".
	Calls map[string]int `json:"calls"`
	// Subrequests counts composite subrequests by kind (they are not API calls).
	Subrequests map[string]int `json:"subrequests"`
	// Faults counts fired faults by kind.
	Faults map[string]int `json:"faults"`
	// Records is the number of live (not deleted) records by object.
	Records map[string]int `json:"records"`
	// BulkJobs is the number of Bulk API 2.0 ingest jobs by state ("Open",
	// "JobComplete", …); see Server.BulkJobs for the jobs themselves.
	BulkJobs map[string]int `json:"bulkJobs"`
	// TokensIssued counts access tokens issued by the token endpoint.
	TokensIssued int `json:"tokensIssued"`
}

func newStats() Stats {
	return Stats{Calls: map[string]int{}, Subrequests: map[string]int{}, Faults: map[string]int{}}
}

func (s *Server) countCall(kind string) {
	s.statsMu.Lock()
	s.stats.Calls[kind]++
	s.statsMu.Unlock()
}

func (s *Server) countSub(kind string) {
	s.statsMu.Lock()
	s.stats.Subrequests[kind]++
	s.statsMu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	out := Stats{Calls: maps.Clone(s.stats.Calls), Subrequests: maps.Clone(s.stats.Subrequests),
		Faults: maps.Clone(s.stats.Faults), TokensIssued: s.stats.TokensIssued}
	s.statsMu.Unlock()
	out.APIUsage, out.DailyAPILimit = s.apiUsage()
	out.Records = map[string]int{}
	s.mu.RLock()
	for _, t := range s.st.tables {
		n := 0
		for _, r := range t.recs {
			if !r.deleted {
				n++
			}
		}
		out.Records[t.def.Name] = n
	}
	s.mu.RUnlock()
	out.BulkJobs = s.bulkJobCounts()
	return out
}

// apiUsage returns the calls counted in the current window and the limit.
func (s *Server) apiUsage() (used, limit int) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.rollWindow()
	return s.usage, s.cfg.DailyAPILimit
}

func (s *Server) rollWindow() {
	if now := time.Now(); s.windowStart.IsZero() || now.Sub(s.windowStart) >= 24*time.Hour {
		s.windowStart = now
		s.usage = 0
		s.bulkBatches = 0
	}
}

func (s *Server) addUsage() {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.rollWindow()
	s.usage++
}

// SetAPIUsage sets the number of API calls counted in the current 24-hour window, e.g.
// to the limit to make the next call fail with REQUEST_LIMIT_EXCEEDED.
func (s *Server) SetAPIUsage(n int) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.rollWindow()
	s.usage = n
}

package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// asyncJob is one accepted async insert or upsert request. Fields after items are guarded
// by Server.mu.
type asyncJob struct {
	id     string
	insert bool
	t      *table
	items  []any

	called, picked, completed time.Time
	done                      bool
	results                   []itemResult
	hasErrors                 bool
}

// itemResult is one entry of GET /data/v1/async/{requestId}/results, in item order.
// UNVERIFIED details: the docs type errorCode as a string (the reference shows
// "UnexpectedError" for a duplicate key; Segment's connector has seen the number 2), so
// the emulator always sends a string: "UnexpectedError" for a duplicate key,
// "ValidationError" for an invalid item. The per-column errors list and its codes (70001
// for a missing or null required column, 70000 for an invalid value) follow what
// Segment's connector has seen.
type itemResult struct {
	ErrorCode string      `json:"errorCode,omitempty"`
	Errors    []itemError `json:"errors,omitempty"`
	Message   string      `json:"message"`
	Status    string      `json:"status"` // "OK" or "Error"
}

type itemError struct {
	ErrorMessage string `json:"errorMessage"`
	Name         string `json:"name,omitempty"`
	ErrorCode    int    `json:"errorCode"`
}

// resultMessage is an entry of resultMessages, the async API's validation error list.
type resultMessage struct {
	ResultType  string `json:"resultType"`
	ResultClass string `json:"resultClass"`
	ResultCode  string `json:"resultCode"`
	Message     string `json:"message"`
}

// asyncRejected is a 400 of the async API for a request that is not queued.
func asyncRejected(code, format string, args ...any) *reply {
	return jsonReply(http.StatusBadRequest, map[string]any{
		"requestId":      newGUID(),
		"resultMessages": []resultMessage{{ResultType: "Validation", ResultClass: "Error", ResultCode: code, Message: fmt.Sprintf(format, args...)}},
	})
}

// invalidParameter answers a path parameter that is not a GUID, as SFMC does for {id}.
func invalidParameter(name string) *reply {
	return jsonReply(http.StatusBadRequest, mcError{Message: "Parameter {" + name + "} is invalid.", ErrorCode: 10001})
}

// handleAsyncSubmit is PUT (upsert) or POST (insert) /data/v1/async/dataextensions/{ref}/rows
// with {"items":[{…flat row…}]}: 202 with a requestId, processed in the background.
func (s *Server) handleAsyncSubmit(op, ref string, body []byte) *reply {
	t := s.lookup(ref)
	if t == nil {
		if k, byKey := cutPrefixFold(ref, "key:"); byKey {
			return asyncRejected("CustomObjectNotFound", "Failed to resolve the Custom Object from the provided ObjectReferenceIdentifier [Id: , Key: %s].", k)
		}
		id, _ := cutPrefixFold(ref, "id:")
		if !guidRe.MatchString(id) {
			return invalidParameter("id")
		}
		// The message is the one SFMC gives (reported by Segment's connector).
		return asyncRejected("CustomObjectNotFound", "Failed to resolve the Custom Object from the provided ObjectReferenceIdentifier [Id: %s, Key: ].", id)
	}
	v, err := decodeJSON(body)
	if err != nil {
		return errReply(http.StatusBadRequest, 10004, "Invalid message format: the body is not valid JSON: %v", err)
	}
	obj, _ := v.(map[string]any)
	items, ok := obj["items"].([]any)
	switch {
	case !ok:
		return asyncRejected("ItemsRequired", `The body must be an object {"items":[…]} with an array of rows.`)
	case len(items) == 0:
		return asyncRejected("ItemsRequired", "The items array is empty.")
	case len(items) > maxAsyncItems:
		return asyncRejected("MaxItemsExceeded", "The request has %d items; at most %d are allowed.", len(items), maxAsyncItems)
	}
	job := &asyncJob{id: newGUID(), insert: op == "async.insert", t: t, items: items, called: time.Now()}
	s.mu.Lock()
	s.jobs[job.id] = job
	s.mu.Unlock()
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		s.process(job)
	}()
	// UNVERIFIED: resultMessages in the 202 body (the docs only show requestId).
	return jsonReply(http.StatusAccepted, map[string]any{"requestId": job.id, "resultMessages": []resultMessage{}})
}

// process applies a job's valid items and records a result for every item. Unlike the
// rowset call, it is not all-or-nothing.
func (s *Server) process(job *asyncJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	job.picked = time.Now()
	t := job.t
	rows := overlay{base: t.rows, upd: t.rows}
	job.results = make([]itemResult, len(job.items))
	for i, item := range job.items {
		res := t.asyncItem(rows, item, job.insert)
		if res.Status != "OK" {
			job.hasErrors = true
		}
		job.results[i] = res
	}
	job.items = nil
	job.completed = time.Now()
	job.done = true
}

// asyncItem validates and applies one flat item.
func (t *table) asyncItem(rows overlay, item any, insert bool) itemResult {
	obj, ok := item.(map[string]any)
	if !ok {
		return itemResult{ErrorCode: "ValidationError", Message: "The item is not an object of column names and values.", Status: "Error"}
	}
	ch := t.newChange()
	var probs []problem
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		ci, ok := t.column(name)
		if !ok {
			probs = append(probs, unknownColumn(name))
			continue
		}
		if p := t.put(ch, ci, obj[name]); p != nil {
			probs = append(probs, *p)
		}
	}
	var missing []problem
	for _, ci := range t.pk {
		if !ch.set[ci] && !slices.ContainsFunc(probs, func(p problem) bool { return p.column == t.cols[ci].Name }) {
			missing = append(missing, nullProblem(t.cols[ci].Name))
		}
	}
	if len(missing) > 0 {
		// Quoted from results Segment's connector has seen.
		return failedItem("ValidationError", "Cannot locate the existing record. Required keys are missing.", append(missing, probs...))
	}
	if len(probs) == 0 {
		probs = t.apply(rows, ch, insert)
		if len(probs) == 1 && probs[0].column == "" { // duplicate primary key
			return itemResult{ErrorCode: "UnexpectedError", Message: probs[0].message, Status: "Error"}
		}
	}
	if len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = p.message
		}
		return failedItem("ValidationError", strings.Join(msgs, " "), probs)
	}
	if insert {
		return itemResult{Message: "Inserted DataExtensionObject", Status: "OK"} // UNVERIFIED wording
	}
	return itemResult{Message: "Upserted DataExtensionObject", Status: "OK"}
}

func failedItem(code, msg string, probs []problem) itemResult {
	res := itemResult{ErrorCode: code, Message: msg, Status: "Error"}
	for _, p := range probs {
		ec := 70000
		if strings.Contains(p.message, "does not allow null value") {
			ec = 70001
		}
		text := p.message
		if p.column != "" {
			text = strings.TrimPrefix(text, p.column+": ")
		}
		res.Errors = append(res.Errors, itemError{ErrorMessage: text, Name: p.column, ErrorCode: ec})
	}
	return res
}

// sfmcTime formats a time as the async API does: no zone, up to milliseconds.
func sfmcTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.999")
}

// jobFor finds a job by the requestId path segment.
func (s *Server) jobFor(id string) (*asyncJob, *reply) {
	if !guidRe.MatchString(id) {
		return nil, invalidParameter("requestId")
	}
	return s.jobs[strings.ToLower(id)], nil
}

// handleAsyncStatus is GET /data/v1/async/{requestId}/status.
func (s *Server) handleAsyncStatus(id string) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	job, rp := s.jobFor(id)
	if rp != nil {
		return rp
	}
	if job == nil {
		// An unknown (or expired) request has no status object; Segment's connector reports
		// seeing this shape, with a 200.
		return jsonReply(http.StatusOK, map[string]any{"requestId": newGUID(), "resultMessages": []resultMessage{}})
	}
	st := map[string]any{
		"callDateTime":  sfmcTime(job.called),
		"hasErrors":     job.hasErrors,
		"requestStatus": "Pending",
		"resultStatus":  "OK",
		"requestId":     job.id,
	}
	if !job.picked.IsZero() {
		st["pickupDateTime"] = sfmcTime(job.picked)
	}
	if job.done {
		st["requestStatus"] = "Complete"
		st["completionDateTime"] = sfmcTime(job.completed)
		if job.hasErrors {
			// "Has Errors", not "Error": the value Segment's connector relies on in production.
			st["resultStatus"] = "Has Errors"
		}
	}
	// The outer requestId identifies this status call, not the job (as in the docs' example).
	return jsonReply(http.StatusOK, map[string]any{"status": st, "requestId": newGUID(), "resultMessages": []resultMessage{}})
}

// handleAsyncResults is GET /data/v1/async/{requestId}/results[?page=N&pageSize=M]: one
// result per item, in item order, OK and Error alike; count is the number of items.
// Pages hold 50 items unless pageSize says otherwise.
func (s *Server) handleAsyncResults(id string, q url.Values) *reply {
	page, pageSize := 1, 50
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = min(v, maxAsyncItems+1)
	}
	if v, err := strconv.Atoi(q.Get("pageSize")); err == nil && v > 0 {
		pageSize = min(v, maxAsyncItems)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	job, rp := s.jobFor(id)
	if rp != nil {
		return rp
	}
	var all []itemResult
	if job != nil && job.done {
		all = job.results
	}
	from := min((page-1)*pageSize, len(all))
	to := min(from+pageSize, len(all))
	return jsonReply(http.StatusOK, map[string]any{
		"page":           page,
		"pageSize":       pageSize,
		"count":          len(all),
		"items":          append([]itemResult{}, all[from:to]...),
		"requestId":      newGUID(),
		"resultMessages": []resultMessage{},
	})
}

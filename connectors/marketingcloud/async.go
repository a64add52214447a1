package marketingcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// The asynchronous rows API takes up to 32,000 rows a request
// (PUT /data/v1/async/dataextensions/key:{key}/rows) and processes them in
// the background. A large batch (Config.AsyncThreshold rows or more: a
// backlog drained, a backfill) goes that way in one call plus a few status
// reads, where the rowset API takes a call per 50 rows. When Marketing Cloud
// reports errors in the request, the connector writes the batch again
// through the rowset API, which isolates the bad rows: the good ones are
// upserted a second time, which changes nothing.

// asyncPoll is the first wait between two status reads; it doubles up to
// asyncPollMax.
var (
	asyncPoll    = 250 * time.Millisecond
	asyncPollMax = 5 * time.Second
)

// async upserts the rows of the records at idx through one asynchronous
// request and sets their results. It returns the records to write through
// the rowset API instead (all of them when the request had errors), or an
// error when the request failed as a whole.
func (w *writer) async(ctx context.Context, cfg Config, idx []int) ([]int, error) {
	const op = "marketingcloud.Write"
	items := make([]map[string]any, len(idx))
	for k, i := range idx {
		r := w.rows[i]
		item := make(map[string]any, len(r.Keys)+len(r.Values))
		for c, v := range r.Values {
			item[c] = v
		}
		for c, v := range r.Keys {
			item[c] = v
		}
		items[k] = item
	}
	resp, err := w.do(ctx, http.MethodPut, "/data/v1/async/dataextensions/key:"+url.PathEscape(w.key)+"/rows", map[string]any{"items": items})
	if err != nil {
		return nil, err
	}
	var accepted struct {
		RequestID string `json:"requestId"`
	}
	switch s := resp.StatusCode(); {
	case s == http.StatusAccepted || s == http.StatusOK:
		if json.Unmarshal(resp.Body(), &accepted) != nil || accepted.RequestID == "" {
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("data extension %s: the async request was accepted without a requestId: %s", w.key, snippet(resp.Body())))
		}
	case s == http.StatusTooManyRequests:
		msg, code := describeError(resp)
		for _, i := range idx {
			w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: code, Message: msg, RetryAfter: retryAfter(resp)}
		}
		return nil, nil
	case s == http.StatusBadRequest:
		return idx, nil // refused as a whole: the rowset API finds the rows at fault
	default:
		return nil, w.callFailed(resp)
	}

	path := "/data/v1/async/" + url.PathEscape(accepted.RequestID) + "/status"
	deadline := time.Now().Add(cfg.asyncTimeout)
	for wait := asyncPoll; ; wait = min(2*wait, asyncPollMax) {
		select {
		case <-ctx.Done():
			return nil, connectors.E(op, connectors.Transient, ctx.Err())
		case <-time.After(wait):
		}
		resp, err := w.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode() != http.StatusOK {
			return nil, w.callFailed(resp)
		}
		var st struct {
			Status struct {
				RequestStatus string `json:"requestStatus"`
				ResultStatus  string `json:"resultStatus"`
				HasErrors     bool   `json:"hasErrors"`
			} `json:"status"`
		}
		if err := json.Unmarshal(resp.Body(), &st); err != nil {
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("data extension %s: reading async request %s: %w", w.key, accepted.RequestID, err))
		}
		switch st.Status.RequestStatus {
		case "Complete":
			if st.Status.HasErrors || (st.Status.ResultStatus != "" && st.Status.ResultStatus != "OK") {
				w.c.logger.Info("async request had errors: writing its rows through the rowset API", "data_extension", w.key, "request", accepted.RequestID, "rows", len(idx))
				return idx, nil
			}
			for _, i := range idx {
				w.results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: w.rows[i].id}
			}
			return nil, nil
		case "Error":
			return idx, nil
		}
		if time.Now().After(deadline) {
			// It may still complete: the rows are retried (upserts, harmless).
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("data extension %s: async request %s still %s after %s (async_timeout)",
				w.key, accepted.RequestID, st.Status.RequestStatus, cfg.asyncTimeout))
		}
	}
}

// callFailed classifies an answer that fails a call as a whole.
func (w *writer) callFailed(resp interface {
	StatusCode() int
	Body() []byte
}) error {
	const op = "marketingcloud.Write"
	s := resp.StatusCode()
	kind := connectors.Permanent
	switch {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		kind = connectors.Auth
	case s >= 500 || s == http.StatusTooManyRequests:
		kind = connectors.Transient
	}
	return connectors.E(op, kind, fmt.Errorf("data extension %s: HTTP %d: %s", w.key, s, snippet(resp.Body())))
}

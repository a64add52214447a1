package datacloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-resty/resty/v2"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// isolationCalls bounds the calls one chunk may spend halving a refused
// call (see connectors.Isolate).
const isolationCalls = 24

// maxDeleteIDs is Data Cloud's limit of ids per delete call.
const maxDeleteIDs = 200

// Write streams the batch's records into object req.Object of the source:
// upserts (and inserts) by the object's primary key, req.ExternalIDField,
// whose value defaults to Record.Key; deletes by it. An accepted record is
// applied, with its primary key as TargetID: Data Cloud processes it later.
func (c *Connector) Write(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	const op = "datacloud.Write"
	cfg, _, err := c.state(op)
	if err != nil {
		return connectors.WriteResponse{}, err
	}
	switch {
	case req.Operation == connectors.Update:
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"object %s: operation update is not supported: Data Cloud ingestion upserts by primary key; set the sync's mode to upsert", req.Object))
	case !req.Operation.Valid():
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf("operation %q is not one of upsert, insert, delete", req.Operation))
	case req.ExternalIDField == "":
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf(
			"object %s: no primary key field: set the sync's external_id to the object's primary key (membership_number, say)", req.Object))
	case len(req.Records) > MaxBatch:
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, fmt.Errorf("batch of %d records is over the maximum of %d", len(req.Records), MaxBatch))
	}

	w := &writer{c: c, req: req, source: cfg.SourceName, results: make([]connectors.Result, len(req.Records)),
		keys: make([]string, len(req.Records)), bodies: make([]json.RawMessage, len(req.Records))}
	var chunks [][]int
	if req.Operation == connectors.Delete {
		chunks = w.deleteChunks()
	} else {
		chunks = w.ingestChunks(cfg.BatchSize)
	}
	for n, chunk := range chunks {
		var err error
		if req.Operation == connectors.Delete {
			_, err = w.delete(ctx)(chunk)
		} else {
			err = connectors.Isolate(chunk, isolationCalls, w.results, w.ingest(ctx))
		}
		if err == nil {
			continue
		}
		if n == 0 {
			return connectors.WriteResponse{Calls: w.calls}, err // nothing written
		}
		for _, ch := range chunks[n:] {
			for _, i := range ch {
				w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "CALL_FAILED", Message: err.Error()}
			}
		}
		break
	}
	return connectors.WriteResponse{Results: w.results, Calls: w.calls}, nil
}

// writer is the state of one Write.
type writer struct {
	c       *Connector
	req     connectors.WriteRequest
	source  string // the Ingestion API connector
	results []connectors.Result
	keys    []string          // primary key value by record
	bodies  []json.RawMessage // encoded record by record (upserts)
	calls   int
}

// key is record i's primary key value, or "" (its result then set).
func (w *writer) key(i int) string {
	r := w.req.Records[i]
	v, ok := r.Fields[w.req.ExternalIDField]
	switch s := v.(type) {
	case string:
		if s != "" {
			return s
		}
	case nil:
	default:
		if ok {
			return fmt.Sprint(s)
		}
	}
	if r.Key == "" {
		w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "MISSING_PRIMARY_KEY",
			Message: fmt.Sprintf("record has no key and no %s value: map the object's primary key", w.req.ExternalIDField)}
	}
	return r.Key
}

// ingestChunks encodes the records and groups them into calls of at most
// size records and MaxBodyBytes.
func (w *writer) ingestChunks(size int) [][]int {
	var chunks [][]int
	var cur []int
	used := 0
	for i, r := range w.req.Records {
		k := w.key(i)
		if k == "" {
			continue
		}
		fields := make(map[string]any, len(r.Fields)+1)
		for name, v := range r.Fields {
			switch v.(type) {
			case map[string]any, []any:
				w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "INVALID_FIELD",
					Message: fmt.Sprintf("field %s: Data Cloud object fields hold text, numbers, booleans and dates, not a list or an object: map it to one value", name)}
			}
			fields[name] = v
		}
		if w.results[i].Status != 0 {
			continue
		}
		fields[w.req.ExternalIDField] = k
		body, err := json.Marshal(fields)
		if err != nil || len(body) > MaxBodyBytes {
			w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "RECORD_TOO_LARGE",
				Message: fmt.Sprintf("the record cannot be sent: %d bytes of JSON (Data Cloud takes 200 KB a call) %v", len(body), err)}
			continue
		}
		w.keys[i], w.bodies[i] = k, body
		if len(cur) == size || used+len(body)+1 > MaxBodyBytes {
			chunks, cur, used = append(chunks, cur), nil, 0
		}
		cur = append(cur, i)
		used += len(body) + 1
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// deleteChunks groups the records' keys into calls of maxDeleteIDs.
func (w *writer) deleteChunks() [][]int {
	var chunks [][]int
	var cur []int
	for i := range w.req.Records {
		if w.keys[i] = w.key(i); w.keys[i] == "" {
			continue
		}
		if len(cur) == maxDeleteIDs {
			chunks, cur = append(chunks, cur), nil
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// ingest returns the call connectors.Isolate makes: one streaming ingestion
// call with the records at idx.
func (w *writer) ingest(ctx context.Context) func(idx []int) (*connectors.Refusal, error) {
	return func(idx []int) (*connectors.Refusal, error) {
		var body bytes.Buffer
		body.WriteString(`{"data":[`)
		for k, i := range idx {
			if k > 0 {
				body.WriteByte(',')
			}
			body.Write(w.bodies[i])
		}
		body.WriteString(`]}`)
		return w.answer(w.call(ctx, http.MethodPost, "", body.Bytes()))(idx)
	}
}

// delete returns the call that deletes the records at idx by primary key.
func (w *writer) delete(ctx context.Context) func(idx []int) (*connectors.Refusal, error) {
	return func(idx []int) (*connectors.Refusal, error) {
		ids := make([]string, len(idx))
		for k, i := range idx {
			ids[k] = w.keys[i]
		}
		return w.answer(w.call(ctx, http.MethodDelete, "?ids="+url.QueryEscape(strings.Join(ids, ",")), nil))(idx)
	}
}

// answer sets the results of the records at idx from a call's answer.
func (w *writer) answer(resp *resty.Response, err error) func(idx []int) (*connectors.Refusal, error) {
	const op = "datacloud.Write"
	return func(idx []int) (*connectors.Refusal, error) {
		if err != nil {
			return nil, err
		}
		object := w.req.Object
		msg, code := describeError(resp)
		switch s := resp.StatusCode(); {
		case s >= 200 && s < 300:
			for _, i := range idx {
				w.results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: w.keys[i]}
			}
			return nil, nil
		case s == http.StatusTooManyRequests:
			wait := retryAfter(resp)
			for _, i := range idx {
				w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: code, Message: msg, RetryAfter: wait}
			}
			return nil, nil
		case s == http.StatusBadRequest || s == http.StatusRequestEntityTooLarge:
			return &connectors.Refusal{Code: code, Message: msg}, nil
		case s == http.StatusNotFound:
			return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("object %s of source %s: %s: check source_name and that the sync's object is an object of that Ingestion API connector", object, w.source, msg))
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			return nil, connectors.E(op, connectors.Auth, fmt.Errorf("object %s: HTTP %d: %s: the connected app needs the cdp_ingest_api scope", object, s, msg))
		case s >= 500:
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("object %s: HTTP %d: %s", object, s, msg))
		}
		return nil, connectors.E(op, connectors.Permanent, fmt.Errorf("object %s: unexpected HTTP %d: %s", object, resp.StatusCode(), msg))
	}
}

// call makes one ingestion call, with a new token and one replay on a 401.
func (w *writer) call(ctx context.Context, method, query string, body []byte) (*resty.Response, error) {
	const op = "datacloud.Write"
	cfg, client, err := w.c.state(op)
	if err != nil {
		return nil, err
	}
	for fresh := false; ; fresh = true {
		tok, err := w.c.token(ctx, op, fresh)
		if err != nil {
			return nil, err
		}
		w.calls++
		r := client.R().SetContext(ctx).SetAuthToken(tok.access)
		if body != nil {
			r.SetHeader("Content-Type", "application/json").SetBody(body)
		}
		resp, err := r.Execute(method, tok.tenantURL+ingestPath(cfg.SourceName, w.req.Object)+query)
		if err != nil {
			return nil, connectors.E(op, connectors.Transient, fmt.Errorf("object %s: %w", w.req.Object, err))
		}
		if resp.StatusCode() != http.StatusUnauthorized || fresh {
			return resp, nil
		}
	}
}

package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Codes of per-record failures found by the connector itself, before any call.
const (
	// CodeMissingExternalID: an upsert or delete record has no Key (and, for
	// an upsert, no value in the external id field).
	CodeMissingExternalID = "LOYALTYHUB_MISSING_EXTERNAL_ID"
	// CodeMissingTargetID: an update record has no TargetID.
	CodeMissingTargetID = "LOYALTYHUB_MISSING_TARGET_ID"
	// CodeUnencodable: a field value cannot be encoded as JSON (NaN, Inf).
	CodeUnencodable = "LOYALTYHUB_UNENCODABLE_VALUE"
	// CodeAmbiguousExternalID: a delete by external id matched several records.
	CodeAmbiguousExternalID = "LOYALTYHUB_AMBIGUOUS_EXTERNAL_ID"
)

// sObject and field API names: a letter, then letters, digits and
// underscores (custom names end in __c, namespaced ones hold a __).
var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,119}$`)

// Salesforce record ids: 15 or 18 letters and digits.
var recordIDRE = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

// Write applies req through sObject Collections, Config.BatchSize records a
// call, or, for a batch of Config.BulkThreshold records or more, through one
// Bulk API 2.0 job (see bulk.go), and returns one Result per record. Upsert matches on
// req.ExternalIDField (its value defaults to Record.Key); Insert creates;
// Update and Delete address Record.TargetID, and Delete looks the Id up by
// SOQL on req.ExternalIDField when TargetID is empty (a record not found is
// already gone: applied).
//
// Salesforce rejects a whole collection call when one record names an unknown
// field or carries a value of the wrong JSON type. Write then isolates the
// culprits (by the column the error names, else by halving the call, at most
// isolationCalls extra calls per call) so that the other records are written
// and only the culprits get Permanent results. A call rejected for a cause
// common to all its records (unknown object or external id field, missing
// permission) gives each of them a Permanent result.
//
// An upsert leaves out the create-only fields of a record that exists and
// sends them for one the target lost, within the same Write (see
// shape.go); when the describe that says which fields are create-only
// fails, the records that depend on it get its failure as their result
// (retryable for a 429 or a 5xx). An update whose target record no longer
// exists is Permanent with a message that says so; a record refused because
// a record it refers to does not exist (a lookup through a cross-reference
// the target no longer matches) is Retryable.
//
// A non-nil error means no record is known to be written: a call failed as a
// whole for a passing or credential cause (network, timeout, 429, 5xx,
// REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW, auth) before any record was
// applied. When such a failure comes after records were applied, the records
// without a result get Retryable results instead.
func (c *Connector) Write(ctx context.Context, req connectors.WriteRequest) (connectors.WriteResponse, error) {
	const op = "salesforce.Write"
	cfg, err := c.config(op)
	if err != nil {
		return connectors.WriteResponse{}, err
	}
	if err := validateWriteRequest(req); err != nil {
		return connectors.WriteResponse{}, connectors.E(op, connectors.Permanent, err)
	}
	w := &batchWriter{c: c, op: op, req: req, results: make([]connectors.Result, len(req.Records)), shapes: make([]recordShape, len(req.Records))}
	var failure error
	if useBulk(cfg, req) {
		// One Bulk API 2.0 job; the records it leaves (a key repeated in
		// the batch) go through sObject Collections below.
		failure = w.bulk(ctx, cfg)
	}
	for start := 0; start < len(req.Records) && failure == nil; start += cfg.BatchSize {
		end := min(start+cfg.BatchSize, len(req.Records))
		if req.Operation == connectors.Delete {
			failure = w.deleteChunk(ctx, start, end)
			continue
		}
		// A record whose key is already in the call waits for the next
		// call: Salesforce refuses a key twice in one call, and order matters.
		for _, layer := range w.layers(start, end) {
			// Records with a result (written by a bulk job) are done.
			if layer = slices.DeleteFunc(layer, func(i int) bool { return w.results[i].Status != 0 }); len(layer) == 0 {
				continue
			}
			w.budget = isolationCalls
			if failure = w.send(ctx, layer); failure != nil {
				break
			}
		}
	}
	out := connectors.WriteResponse{Results: w.results, Calls: w.calls}
	if failure != nil {
		applied := 0
		for _, r := range w.results {
			if r.Status == connectors.StatusApplied {
				applied++
			}
		}
		if applied == 0 {
			return connectors.WriteResponse{Calls: w.calls}, failure
		}
		c.logger.Warn("salesforce write failed part-way: the records not written are retryable",
			"object", req.Object, "operation", req.Operation, "applied", applied, "records", len(req.Records), "error", failure)
	}
	for i, r := range w.results {
		if r.Status == 0 {
			if failure != nil {
				w.results[i] = resultFromError(failure)
			} else { // not expected: every path sets a result
				w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "LOYALTYHUB_NO_RESULT", Message: "the connector reached no outcome for this record"}
			}
		}
	}
	return out, nil
}

// isolationCalls bounds the extra calls one chunk may spend isolating the
// records that make Salesforce reject the whole call.
const isolationCalls = 16

// batchWriter is the state of one Write.
type batchWriter struct {
	c       *Connector
	op      string
	req     connectors.WriteRequest
	results []connectors.Result
	calls   int
	budget  int // extra calls left for isolating culprits in the current chunk
	// shapes say which fields of each record are sent (see shape.go).
	shapes []recordShape
	// createOnly and describeErr: the object's create-only fields, or why
	// they are not known, for this Write (see createOnlyFields).
	createOnly  map[string]int
	describeErr error
	// bulkAgain: a second Bulk API 2.0 job was sent for records to send
	// again in another shape (see bulk).
	bulkAgain bool
}

// layers splits records [start, end) into calls in which no key repeats:
// the first occurrence of each key goes in the first call, the second in the
// second, and so on. The key is the external id value for upserts (folded
// with foldKey, as Salesforce compares text external ids) and the TargetID
// for updates; inserts have none.
func (w *batchWriter) layers(start, end int) [][]int {
	var out [][]int
	seen := map[string]int{}
	for i := start; i < end; i++ {
		rec := w.req.Records[i]
		key := ""
		switch w.req.Operation {
		case connectors.Upsert:
			key = rec.Key
			if v, ok := rec.Fields[w.req.ExternalIDField]; ok && v != nil && v != "" {
				key = soqlValueString(v)
			}
			key = foldKey(key)
		case connectors.Update:
			key = rec.TargetID
			if len(key) == 18 {
				key = key[:15]
			}
		}
		n := 0
		if key != "" {
			n = seen[key]
			seen[key] = n + 1
		}
		if n == len(out) {
			out = append(out, nil)
		}
		out[n] = append(out[n], i)
	}
	return out
}

func validateWriteRequest(req connectors.WriteRequest) error {
	var errs []error
	if !apiNameRE.MatchString(req.Object) {
		errs = append(errs, fmt.Errorf("object %q is not an sObject API name (Account, LoyaltyProgramMember, Custom__c)", req.Object))
	}
	if !req.Operation.Valid() {
		errs = append(errs, fmt.Errorf("operation %q is not one of upsert, insert, update, delete", req.Operation))
	}
	switch {
	case req.ExternalIDField != "" && !apiNameRE.MatchString(req.ExternalIDField):
		errs = append(errs, fmt.Errorf("external_id_field %q is not a field API name (Ledger_Member_Id__c)", req.ExternalIDField))
	case req.ExternalIDField == "" && req.Operation == connectors.Upsert:
		errs = append(errs, fmt.Errorf("external_id_field is empty: an upsert to %s needs the external id field that holds the record key", req.Object))
	}
	if len(req.Records) > MaxBatch {
		errs = append(errs, fmt.Errorf("%d records is more than the batch limit of %d: split the batch", len(req.Records), MaxBatch))
	}
	return errors.Join(errs...)
}

// encode builds the collection payload of record i, or sets its Result when
// the record cannot be sent.
func (w *batchWriter) encode(ctx context.Context, i int) (json.RawMessage, bool) {
	req, rec := w.req, w.req.Records[i]
	if !w.shape(ctx, i) {
		return nil, false
	}
	m := w.fields(i)
	field, value, ok := w.address(i, func(f string) bool { v, ok := m[f]; return ok && v != nil && v != "" })
	if !ok {
		return nil, false
	}
	if field != "" {
		m[field] = value
	}
	m["attributes"] = map[string]string{"type": req.Object}
	data, err := json.Marshal(m)
	if err != nil {
		w.results[i] = localFailure(CodeUnencodable, fmt.Sprintf("record %q: a field value cannot be encoded as JSON: %v", rec.Key, err))
		return nil, false
	}
	return data, true
}

// address gives what addresses record i in its write when the record lacks
// it (has says whether it has a value for a field): for an upsert the
// external id field, valued Record.Key; for an update the Id, valued
// Record.TargetID; field "" when nothing is to be added. It sets the
// record's Result and returns false when the record cannot be addressed.
func (w *batchWriter) address(i int, has func(field string) bool) (field, value string, ok bool) {
	req, rec := w.req, w.req.Records[i]
	switch req.Operation {
	case connectors.Upsert:
		if has(req.ExternalIDField) {
			return "", "", true
		}
		if rec.Key == "" {
			w.results[i] = localFailure(CodeMissingExternalID, fmt.Sprintf("record has no key and no %s value: an upsert needs the external id", req.ExternalIDField))
			return "", "", false
		}
		return req.ExternalIDField, rec.Key, true
	case connectors.Update:
		if rec.TargetID == "" {
			w.results[i] = localFailure(CodeMissingTargetID, fmt.Sprintf("record %q has no target id: an update needs the Salesforce Id (use upsert by external id instead)", rec.Key))
			return "", "", false
		}
		return "Id", rec.TargetID, true
	}
	return "", "", true
}

// send writes the records idx in one collection call and sets their
// Results. A whole-call rejection is narrowed down to its culprits (see
// Write). It returns an error only for a whole-call failure that leaves
// records unknown.
func (w *batchWriter) send(ctx context.Context, idx []int) error {
	var (
		payload []json.RawMessage
		sent    []int
	)
	for _, i := range idx {
		if data, ok := w.encode(ctx, i); ok {
			payload = append(payload, data)
			sent = append(sent, i)
		}
	}
	if len(payload) == 0 {
		return nil
	}
	method, path := http.MethodPost, "/composite/sobjects"
	switch w.req.Operation {
	case connectors.Upsert:
		method, path = http.MethodPatch, "/composite/sobjects/"+w.req.Object+"/"+w.req.ExternalIDField
	case connectors.Update:
		method = http.MethodPatch
	}
	body, err := json.Marshal(struct {
		AllOrNone bool              `json:"allOrNone"`
		Records   []json.RawMessage `json:"records"`
	}{false, payload})
	if err != nil {
		return connectors.E(w.op, connectors.Permanent, fmt.Errorf("encoding the request: %w", err))
	}
	resp, err := w.c.call(ctx, w.op, method, path, body, &w.calls)
	if err != nil {
		return w.rejected(ctx, err, sent)
	}
	saves, err := parseSaveResults(resp.body, len(sent), method, path)
	if err != nil {
		return connectors.E(w.op, connectors.Transient, err)
	}
	var again []int
	for j, i := range sent {
		if saves[j].Success {
			w.results[i] = saveResult(saves[j], false)
		} else if w.refused(ctx, i, saves[j].Errors) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		// In another shape (see shape.go): at most maxShapeChanges times
		// per record, so this ends without the isolation budget.
		return w.send(ctx, again)
	}
	return nil
}

// noSuchColumnRE finds the field an INVALID_FIELD rejection names.
var noSuchColumnRE = regexp.MustCompile(`No such column '([^']+)'`)

// rejected handles a call over records sent that failed as a whole.
func (w *batchWriter) rejected(ctx context.Context, err error, sent []int) error {
	var ae *APIError
	if !errors.As(err, &ae) || connectors.KindOf(err) != connectors.Permanent || ae.HTTPStatus < 400 || ae.HTTPStatus >= 500 {
		return err // passing or credential failure: the records are unknown
	}
	culprit := func(i int, why string) {
		w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: ae.Code, Message: why + describeError(ae.Code, ae.Message, ae.Fields)}
	}
	// An unknown field: the records that carry it are the culprits.
	if m := noSuchColumnRE.FindStringSubmatch(ae.Message); m != nil && len(sent) > 1 {
		var rest []int
		for _, i := range sent {
			if hasField(w.fields(i), m[1]) {
				culprit(i, "")
			} else {
				rest = append(rest, i)
			}
		}
		if len(rest) < len(sent) {
			return w.retryRest(ctx, ae, rest)
		}
	}
	// A value of the wrong type: halve the call until the culprits are alone.
	if ae.Code == "JSON_PARSER_ERROR" && len(sent) > 1 && w.budget >= 2 {
		w.budget -= 2
		half := len(sent) / 2
		if err := w.send(ctx, sent[:half]); err != nil {
			return err
		}
		return w.send(ctx, sent[half:])
	}
	why := ""
	if len(sent) > 1 {
		why = fmt.Sprintf("call of %d records rejected as a whole (HTTP %d): ", len(sent), ae.HTTPStatus)
	}
	for _, i := range sent {
		culprit(i, why)
	}
	return nil
}

// retryRest sends the records of a rejected call that were not its culprits
// again, within the isolation budget.
func (w *batchWriter) retryRest(ctx context.Context, ae *APIError, rest []int) error {
	if len(rest) == 0 {
		return nil
	}
	if w.budget <= 0 {
		for _, i := range rest {
			w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: ae.Code,
				Message: "rejected together with other faulty records, not retried alone (isolation budget spent): " + describeError(ae.Code, ae.Message, ae.Fields)}
		}
		return nil
	}
	w.budget--
	return w.send(ctx, rest)
}

func hasField(fields map[string]any, name string) bool {
	for k := range fields {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// deleteChunk deletes req.Records[start:end]: it looks up the Ids of records
// without a TargetID by SOQL, then deletes the distinct Ids in one call.
func (w *batchWriter) deleteChunk(ctx context.Context, start, end int) error {
	c, op, req, results, calls := w.c, w.op, w.req, w.results, &w.calls
	ids := make(map[int]string, end-start)
	var lookup []int
	for i := start; i < end; i++ {
		rec := req.Records[i]
		switch {
		case rec.TargetID != "":
			ids[i] = rec.TargetID
		case rec.Key == "" || req.ExternalIDField == "":
			results[i] = localFailure(CodeMissingExternalID, fmt.Sprintf("record %q has no target id, and no key or external_id_field to look it up by: a delete needs one", rec.Key))
		default:
			lookup = append(lookup, i)
		}
	}
	if len(lookup) > 0 {
		keys := make([]string, len(lookup))
		for j, i := range lookup {
			keys[j] = req.Records[i].Key
		}
		found, err := c.lookupIDs(ctx, op, req.Object, req.ExternalIDField, keys, calls)
		if err != nil {
			return wholeRequestFailure(err, results, lookup)
		}
		for _, i := range lookup {
			key := req.Records[i].Key
			switch got := matchKey(found, key); len(got) {
			case 0:
				results[i] = connectors.Result{Status: connectors.StatusApplied, Message: fmt.Sprintf("no %s with %s = %q: already gone", req.Object, req.ExternalIDField, key)}
			case 1:
				ids[i] = got[0]
			default:
				results[i] = localFailure(CodeAmbiguousExternalID, fmt.Sprintf("%d %s records have %s = %q (%s): delete them by id", len(got), req.Object, req.ExternalIDField, key, strings.Join(got, ", ")))
			}
		}
	}

	// One entry per distinct id, in record order.
	var (
		order  []string
		owners = map[string][]int{}
	)
	for i := start; i < end; i++ {
		id, ok := ids[i]
		if !ok {
			continue
		}
		if !recordIDRE.MatchString(id) {
			results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "MALFORMED_ID", Message: fmt.Sprintf("MALFORMED_ID: target id %q is not a 15 or 18 character Salesforce id", id)}
			continue
		}
		if _, seen := owners[id]; !seen {
			order = append(order, id)
		}
		owners[id] = append(owners[id], i)
	}
	if len(order) == 0 {
		return nil
	}
	var all []int
	for _, id := range order {
		all = append(all, owners[id]...)
	}
	path := "/composite/sobjects?ids=" + url.QueryEscape(strings.Join(order, ",")) + "&allOrNone=false"
	resp, err := c.call(ctx, op, http.MethodDelete, path, nil, calls)
	if err != nil {
		return wholeRequestFailure(err, results, all)
	}
	saves, err := parseSaveResults(resp.body, len(order), http.MethodDelete, "/composite/sobjects")
	if err != nil {
		return connectors.E(op, connectors.Transient, err)
	}
	for j, id := range order {
		r := saveResult(saves[j], true)
		if r.Status == connectors.StatusApplied && r.TargetID == "" {
			r.TargetID = id
		}
		for _, i := range owners[id] {
			results[i] = r
		}
	}
	return nil
}

// maxSOQLList bounds the characters of one lookup's IN list, so the query
// URL stays well below Salesforce's 16,384-character URI limit.
const maxSOQLList = 6000

// lookupIDs finds the Ids of the records of object whose field equals one of
// keys, by SOQL, as field value → Ids.
func (c *Connector) lookupIDs(ctx context.Context, op, object, field string, keys []string, calls *int) (map[string][]string, error) {
	found := map[string][]string{}
	seen := map[string]bool{}
	var list []string
	size := 0
	flush := func() error {
		if len(list) == 0 {
			return nil
		}
		q := "SELECT Id, " + field + " FROM " + object + " WHERE " + field + " IN (" + strings.Join(list, ", ") + ")"
		list, size = list[:0], 0
		return c.query(ctx, op, q, calls, func(rec map[string]any) {
			id, _ := rec["Id"].(string)
			if id != "" {
				k := soqlValueString(rec[field])
				found[k] = append(found[k], id)
			}
		})
	}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		lit := QuoteSOQL(k)
		if size+len(lit) > maxSOQLList {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		list = append(list, lit)
		size += len(lit) + 2
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return found, nil
}

// query runs a SOQL query, following nextRecordsUrl, and hands each record to fn.
func (c *Connector) query(ctx context.Context, op, soql string, calls *int, fn func(map[string]any)) error {
	path := "/query?q=" + url.QueryEscape(soql)
	for pages := 0; path != ""; pages++ {
		if pages > 1000 {
			return connectors.E(op, connectors.Permanent, fmt.Errorf("query %q: more than 1000 pages", soql))
		}
		resp, err := c.call(ctx, op, http.MethodGet, path, nil, calls)
		if err != nil {
			return err
		}
		var page struct {
			Done           bool             `json:"done"`
			NextRecordsURL string           `json:"nextRecordsUrl"`
			Records        []map[string]any `json:"records"`
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return connectors.E(op, connectors.Transient, fmt.Errorf("query %q: the answer is not a query result: %w", soql, err))
		}
		for _, r := range page.Records {
			fn(r)
		}
		path = ""
		if !page.Done && page.NextRecordsURL != "" {
			path = page.NextRecordsURL
		}
	}
	return nil
}

// matchKey returns the Ids found for key: the exact match, else a
// case-insensitive one (SOQL compares text case-insensitively).
func matchKey(found map[string][]string, key string) []string {
	if ids, ok := found[key]; ok {
		return ids
	}
	var ids []string
	for k, v := range found {
		if foldKey(k) == foldKey(key) {
			ids = append(ids, v...)
		}
	}
	return ids
}

// foldKey is the form of an external id value under which the values
// Salesforce takes as one record's are identical: the hub's fold for the
// connector's Description.Keys, connectors.KeysCaseInsensitive (as
// strings.EqualFold compares).
func foldKey(key string) string { return connectors.KeysCaseInsensitive.Fold(key) }

// QuoteSOQL renders s as a SOQL string literal, escaping what the SOQL
// reference lists (quotes, backslash, \n \r \t \b \f).
func QuoteSOQL(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\\', '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// soqlValueString renders a field value of a query result as a key string.
func soqlValueString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// saveResult is one element of a collections answer (SaveResult,
// UpsertResult, DeleteResult).
type saveResultJSON struct {
	ID      string    `json:"id"`
	Success bool      `json:"success"`
	Created *bool     `json:"created"`
	Errors  []sfError `json:"errors"`
}

func parseSaveResults(body []byte, want int, method, path string) ([]saveResultJSON, error) {
	var saves []saveResultJSON
	if err := json.Unmarshal(body, &saves); err != nil {
		return nil, fmt.Errorf("%s %s: the answer is not a list of results: %w", method, path, err)
	}
	if len(saves) != want {
		return nil, fmt.Errorf("%s %s: %d results for %d records", method, path, len(saves), want)
	}
	return saves, nil
}

// saveResult turns one collections result into a Result. For deletes,
// ENTITY_IS_DELETED (in the recycle bin) and INVALID_CROSS_REFERENCE_KEY (no
// such record) mean the record is already gone: applied, so a redelivered
// delete does not dead-letter.
func saveResult(s saveResultJSON, isDelete bool) connectors.Result {
	if s.Success {
		return connectors.Result{Status: connectors.StatusApplied, TargetID: s.ID}
	}
	if isDelete && len(s.Errors) == 1 {
		if code := s.Errors[0].code(); code == "ENTITY_IS_DELETED" || code == "INVALID_CROSS_REFERENCE_KEY" {
			return connectors.Result{Status: connectors.StatusApplied, TargetID: s.ID, Code: code, Message: "already gone: " + describeError(code, s.Errors[0].Message, s.Errors[0].Fields)}
		}
	}
	return recordFailure(s.Errors)
}

// recordFailure classifies a record's errors: Permanent when any of them is,
// Retryable otherwise. Code is the deciding error's; Message lists them all.
func recordFailure(errs []sfError) connectors.Result {
	if len(errs) == 0 {
		return connectors.Result{Status: connectors.StatusPermanent, Code: "UNKNOWN_ERROR", Message: "Salesforce reported a failure without an error"}
	}
	decide := -1
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = describeError(e.code(), e.Message, e.Fields)
		if decide < 0 && Classify(Failure{Code: e.code(), Message: e.Message}) == connectors.Permanent {
			decide = i
		}
	}
	status := connectors.StatusPermanent
	if decide < 0 {
		decide, status = 0, connectors.StatusRetryable
	}
	return connectors.Result{Status: status, Code: errs[decide].code(), Message: strings.Join(msgs, "; ")}
}

func localFailure(code, msg string) connectors.Result {
	return connectors.Result{Status: connectors.StatusPermanent, Code: code, Message: code + ": " + msg}
}

// wholeRequestFailure handles a call that failed as a whole. A 4xx rejection
// for a permanent cause (unknown object or field, malformed body) applies to
// every record sent: they get Permanent results and nil is returned. Any
// other failure leaves the records unknown: err is returned.
func wholeRequestFailure(err error, results []connectors.Result, idx []int) error {
	var ae *APIError
	if !errors.As(err, &ae) || connectors.KindOf(err) != connectors.Permanent || ae.HTTPStatus < 400 || ae.HTTPStatus >= 500 {
		return err
	}
	r := connectors.Result{
		Status:  connectors.StatusPermanent,
		Code:    ae.Code,
		Message: fmt.Sprintf("request rejected as a whole (HTTP %d): %s", ae.HTTPStatus, describeError(ae.Code, ae.Message, ae.Fields)),
	}
	for _, i := range idx {
		results[i] = r
	}
	return nil
}

// resultFromError is the Result of a record whose call failed as a whole
// after other calls of the batch were answered.
func resultFromError(err error) connectors.Result {
	r := connectors.Result{Status: statusOf(connectors.KindOf(err)), Message: err.Error(), RetryAfter: connectors.RetryAfterOf(err)}
	var ae *APIError
	if errors.As(err, &ae) {
		r.Code = ae.Code
	}
	return r
}

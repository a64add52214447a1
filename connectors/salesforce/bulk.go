package salesforce

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Bulk API 2.0: a large batch (Config.BulkThreshold records or more) is
// written as one ingest job: create the job, upload the records as CSV,
// close it, wait for Salesforce to process it, then read the successful and
// failed results and match them to the records. One job costs a handful of
// API calls however many records it holds, where sObject Collections cost
// one call per 200.
//
// Each result row repeats the record's columns as uploaded: that is how a
// row is matched to its record (identical rows are interchangeable). A
// record whose key appears twice in the batch is left to sObject Collections
// after the job, in order, as Salesforce would refuse the pair in one job.

// bulkPollInterval is the first wait between two reads of a job's state; it
// doubles up to bulkPollMax.
var (
	bulkPollInterval = 250 * time.Millisecond
	bulkPollMax      = 5 * time.Second
)

// bulkJob is the part of a JobInfo the connector reads.
type bulkJob struct {
	ID                     string `json:"id"`
	State                  string `json:"state"`
	ErrorMessage           string `json:"errorMessage"`
	NumberRecordsProcessed int    `json:"numberRecordsProcessed"`
	NumberRecordsFailed    int    `json:"numberRecordsFailed"`
}

// useBulk reports whether Write sends req through Bulk API 2.0.
func useBulk(cfg Config, req connectors.WriteRequest) bool {
	if cfg.BulkThreshold < 0 || len(req.Records) < cfg.BulkThreshold {
		return false
	}
	switch req.Operation {
	case connectors.Upsert, connectors.Insert, connectors.Update:
		return true
	}
	return false
}

// bulk writes the records of w.req not yet given a result through one
// ingest job; the records it leaves without a result (repeated keys,
// records to send again in another shape, see shape.go) go through sObject
// Collections after it, or through a second job when they are many. A non-nil error means the job failed as a whole for
// a passing cause: no record of it is known to be written.
func (w *batchWriter) bulk(ctx context.Context, cfg Config) error {
	req := w.req
	rows, cols, idx := w.bulkRows(ctx)
	if len(idx) == 0 {
		return nil
	}
	var body bytes.Buffer
	cw := csv.NewWriter(&body)
	_ = cw.Write(cols)
	_ = cw.WriteAll(rows)
	if err := cw.Error(); err != nil {
		return connectors.E(w.op, connectors.Permanent, fmt.Errorf("encoding the CSV: %w", err))
	}

	spec := map[string]string{"object": req.Object, "operation": string(req.Operation), "contentType": "CSV", "lineEnding": "LF"}
	if req.Operation == connectors.Upsert {
		spec["externalIdFieldName"] = req.ExternalIDField
	}
	specJSON, _ := json.Marshal(spec)
	resp, err := w.c.call(ctx, w.op, http.MethodPost, "/jobs/ingest", specJSON, &w.calls)
	if err != nil {
		return wholeRequestFailure(err, w.results, idx)
	}
	var job bulkJob
	if err := json.Unmarshal(resp.body, &job); err != nil || job.ID == "" {
		return connectors.E(w.op, connectors.Transient, fmt.Errorf("creating a Bulk API 2.0 job: the answer has no job id: %.200s", resp.body))
	}
	path := "/jobs/ingest/" + job.ID
	if _, err := w.c.callAs(ctx, w.op, http.MethodPut, path+"/batches", csvType, jsonType, body.Bytes(), &w.calls); err != nil {
		w.abort(path)
		return w.jobCallFailed(job.ID, "uploading the records of", err)
	}
	if _, err := w.c.call(ctx, w.op, http.MethodPatch, path, []byte(`{"state":"UploadComplete"}`), &w.calls); err != nil {
		w.abort(path)
		return w.jobCallFailed(job.ID, "closing", err)
	}
	w.c.logger.Info("bulk API 2.0 job uploaded", "job", job.ID, "object", req.Object, "operation", req.Operation, "records", len(idx))

	id := job.ID
	job, err = w.waitJob(ctx, cfg, path)
	if err != nil {
		return w.jobCallFailed(id, "reading the state of", err)
	}
	// What becomes of the records the job did not process.
	unprocessed := connectors.Result{Status: connectors.StatusRetryable, Code: "BULK_UNPROCESSED",
		Message: fmt.Sprintf("Bulk API 2.0 job %s did not process this record", job.ID)}
	switch job.State {
	case "JobComplete":
	case "Failed":
		if job.NumberRecordsProcessed == 0 {
			w.jobFailed(job, idx)
			return nil
		}
		// It failed part-way: the results say what became of the records
		// it processed; the others get the job's failure.
		unprocessed = jobFailure(job)
	default: // Aborted by someone else
		return connectors.E(w.op, connectors.Transient, fmt.Errorf("Bulk API 2.0 job %s ended %s", job.ID, job.State))
	}

	// Match the result rows to the records by their columns as uploaded.
	pending := make(map[string][]int, len(idx))
	for k, row := range rows {
		key := rowKey(row)
		pending[key] = append(pending[key], idx[k])
	}
	take := func(row []string) (int, bool) {
		is := pending[rowKey(row)]
		if len(is) == 0 {
			return 0, false
		}
		pending[rowKey(row)] = is[1:]
		return is[0], true
	}
	if err := w.results2(ctx, path+"/successfulResults", "sf__Created", len(cols), func(id, _ string, row []string) {
		if i, ok := take(row); ok {
			w.results[i] = connectors.Result{Status: connectors.StatusApplied, TargetID: id}
		}
	}); err != nil {
		return w.unknownAfterJob(job.ID, idx, err)
	}
	again := 0
	if err := w.results2(ctx, path+"/failedResults", "sf__Error", len(cols), func(_, msg string, row []string) {
		i, ok := take(row)
		if !ok {
			return
		}
		code, text, _ := strings.Cut(msg, ":")
		if w.refused(ctx, i, []sfError{{StatusCode: strings.TrimSpace(code), Message: strings.TrimSpace(text)}}) {
			again++ // sent again below in another shape (see shape.go)
		}
	}); err != nil {
		return w.unknownAfterJob(job.ID, idx, err)
	}
	if again > 0 {
		if again >= cfg.BulkThreshold && !w.bulkAgain {
			// Many records to send again (a backfill that did not know
			// they exist, an org that lost them): one more job for them.
			w.bulkAgain = true
			return w.bulk(ctx, cfg)
		}
		return nil // the rest, through sObject Collections
	}
	for _, i := range idx {
		if w.results[i].Status == 0 {
			w.results[i] = unprocessed
		}
	}
	return nil
}

// jobFailure is the Result of the records of a job that failed as a whole.
// Permanent when Salesforce refused the data (InvalidBatch: a bad header, an
// unknown field; ClientInputError: a bad line ending; InvalidJob), which
// writing it again cannot change; Retryable for any other cause (a batch
// not processed in time after its retries, an internal error).
func jobFailure(job bulkJob) connectors.Result {
	r := connectors.Result{Status: connectors.StatusRetryable, Code: "BULK_JOB_FAILED",
		Message: fmt.Sprintf("Bulk API 2.0 job %s failed: %s", job.ID, job.ErrorMessage)}
	reason, _, _ := strings.Cut(job.ErrorMessage, ":")
	switch strings.TrimSpace(reason) {
	case "InvalidBatch", "ClientInputError", "InvalidJob":
		r.Status = connectors.StatusPermanent
	}
	return r
}

// notFoundRE finds the column a job refused as unknown: "InvalidBatch :
// Field name not found : Nope__c".
var notFoundRE = regexp.MustCompile(`Field name not found : ([A-Za-z0-9_.]+)`)

// jobFailed gives the records idx of a job that failed before processing any
// of them their results. A job refused for a column (a field that does not
// exist) is the fault of the records that set it: they are Permanent, and
// the others are left for sObject Collections, as a collection call
// isolates such a record.
func (w *batchWriter) jobFailed(job bulkJob, idx []int) {
	r := jobFailure(job)
	if m := notFoundRE.FindStringSubmatch(job.ErrorMessage); m != nil && r.Status == connectors.StatusPermanent {
		column, _, _ := strings.Cut(m[1], ".") // a relationship column: its field
		var culprits []int
		for _, i := range idx {
			if hasField(w.fields(i), column) {
				culprits = append(culprits, i)
			}
		}
		if len(culprits) > 0 && len(culprits) < len(idx) {
			for _, i := range culprits {
				w.results[i] = connectors.Result{Status: connectors.StatusPermanent, Code: "INVALID_FIELD",
					Message: fmt.Sprintf("INVALID_FIELD: No such column '%s' on sobject of type %s (Bulk API 2.0 job %s failed: %s)", m[1], w.req.Object, job.ID, job.ErrorMessage)}
			}
			return
		}
	}
	for _, i := range idx {
		w.results[i] = r
	}
}

// bulkRows builds the CSV of the records without a result: the header (the
// key column first, then the fields of every record, sorted) and one row per
// record, with the indexes of the records in the rows. Records it cannot
// send get a Result; records whose key repeats are left without one, for
// sObject Collections after the job.
func (w *batchWriter) bulkRows(ctx context.Context) (rows [][]string, cols []string, idx []int) {
	req := w.req
	keyCol := ""
	switch req.Operation {
	case connectors.Upsert:
		keyCol = req.ExternalIDField
	case connectors.Update:
		keyCol = "Id"
	}
	type rec struct {
		i      int
		fields map[string]string // by lower-case column
	}
	var recs []rec
	seen := map[string]bool{}
	// Field names are case-insensitive, and Salesforce refuses a header that
	// names a field twice: one column per field, as first spelled.
	spelling := map[string]string{}
	for i := range req.Records {
		if w.results[i].Status != 0 {
			continue
		}
		m, ok := w.bulkFields(ctx, i)
		if !ok {
			continue
		}
		names := slices.Sorted(maps.Keys(m))
		cells := make(map[string]string, len(m))
		for _, name := range names {
			low := strings.ToLower(name)
			cells[low] = m[name]
			if _, ok := spelling[low]; !ok {
				spelling[low] = name
			}
		}
		if keyCol != "" {
			k := cells[strings.ToLower(keyCol)] // as layers keys a record
			switch {
			case req.Operation == connectors.Upsert:
				k = foldKey(k)
			case len(k) == 18: // an Id: its 15-character form, case-sensitive
				k = k[:15]
			}
			if seen[k] {
				continue // written after the job
			}
			seen[k] = true
		}
		recs = append(recs, rec{i, cells})
	}
	var low []string // the columns, lower-case
	if keyCol != "" && len(recs) > 0 {
		low = append(low, strings.ToLower(keyCol))
		spelling[low[0]] = keyCol
	}
	rest := make([]string, 0, len(spelling))
	for l := range spelling {
		if len(low) == 0 || l != low[0] {
			rest = append(rest, l)
		}
	}
	slices.SortFunc(rest, func(a, b string) int { return strings.Compare(spelling[a], spelling[b]) })
	low = append(low, rest...)
	for _, l := range low {
		cols = append(cols, spelling[l])
	}
	for _, r := range recs {
		row := make([]string, len(low))
		for k, l := range low {
			row[k] = r.fields[l]
		}
		rows = append(rows, row)
		idx = append(idx, r.i)
	}
	return rows, cols, idx
}

// bulkFields is record i as CSV cells by column: a nil value is "#N/A"
// (Bulk API 2.0's null), a relationship by external id
// ({"Ext_Id__c": "P-1"} in Program__r) the column Program__r.Ext_Id__c.
func (w *batchWriter) bulkFields(ctx context.Context, i int) (map[string]string, bool) {
	r := w.req.Records[i]
	if !w.shape(ctx, i) {
		return nil, false
	}
	m := make(map[string]string, len(r.Fields)+1)
	for name, v := range w.fields(i) {
		if rel, ok := v.(map[string]any); ok && len(rel) == 1 {
			for f, fv := range rel {
				s, ok := csvCell(fv)
				if !ok {
					w.results[i] = localFailure(CodeUnencodable, fmt.Sprintf("record %q: field %s.%s holds %T, which a CSV cell cannot", r.Key, name, f, fv))
					return nil, false
				}
				m[name+"."+f] = s
			}
			continue
		}
		s, ok := csvCell(v)
		if !ok {
			w.results[i] = localFailure(CodeUnencodable, fmt.Sprintf("record %q: field %s holds %T, which a CSV cell cannot", r.Key, name, v))
			return nil, false
		}
		m[name] = s
	}
	field, value, ok := w.address(i, func(f string) bool { v := m[f]; return v != "" && v != "#N/A" })
	if !ok {
		return nil, false
	}
	if field != "" {
		m[field] = value
	}
	return m, true
}

// csvCell writes a JSON-compatible scalar as Bulk API 2.0 reads it.
func csvCell(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "#N/A", true
	case string:
		if x == "" {
			return "#N/A", true // an empty cell would leave the field as it is
		}
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// rowKey identifies a row by its cells, a line break in a cell as LF: a CSV
// reader (ours, encoding/csv, reading the results) drops the CR of a CRLF,
// so the results may not hold the cells exactly as uploaded.
func rowKey(row []string) string {
	key := strings.Join(row, "\x1f")
	if strings.Contains(key, "\r\n") {
		key = crlfRE.ReplaceAllString(key, "\n")
	}
	return key
}

var crlfRE = regexp.MustCompile(`\r+\n`)

// waitJob reads the job's state until it is over, waiting longer between
// reads, up to Config.BulkTimeout.
func (w *batchWriter) waitJob(ctx context.Context, cfg Config, path string) (bulkJob, error) {
	deadline := time.Now().Add(cfg.bulkTimeout)
	wait := bulkPollInterval
	for {
		resp, err := w.c.call(ctx, w.op, http.MethodGet, path, nil, &w.calls)
		if err != nil {
			return bulkJob{}, err
		}
		var job bulkJob
		if err := json.Unmarshal(resp.body, &job); err != nil {
			return bulkJob{}, connectors.E(w.op, connectors.Transient, fmt.Errorf("reading Bulk API 2.0 job %s: %w", path, err))
		}
		switch job.State {
		case "JobComplete", "Failed", "Aborted":
			return job, nil
		}
		if time.Now().After(deadline) {
			// The job may still finish: its records are retried, which an
			// upsert makes harmless.
			return bulkJob{}, connectors.E(w.op, connectors.Transient, fmt.Errorf("Bulk API 2.0 job %s still %s after %s (bulk_timeout)", job.ID, job.State, cfg.bulkTimeout))
		}
		select {
		case <-ctx.Done():
			return bulkJob{}, connectors.E(w.op, connectors.Transient, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, bulkPollMax)
	}
}

// results2 reads a results CSV: sf__Id, then flag (sf__Created or
// sf__Error), then the columns as uploaded.
func (w *batchWriter) results2(ctx context.Context, path, flag string, ncols int, fn func(id, flag string, row []string)) error {
	resp, err := w.c.callAs(ctx, w.op, http.MethodGet, path, jsonType, csvType, nil, &w.calls)
	if err != nil {
		return err
	}
	r := csv.NewReader(bytes.NewReader(resp.body))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(header) != ncols+2 || header[0] != "sf__Id" || header[1] != flag {
		return fmt.Errorf("reading %s: header %q is not sf__Id, %s and the %d columns uploaded", path, header, flag, ncols)
	}
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if len(row) != ncols+2 {
			return fmt.Errorf("reading %s: a row of %d cells, want %d", path, len(row), ncols+2)
		}
		fn(row[0], row[1], row[2:])
	}
}

// jobCallFailed is the error of a call about a job that exists: uploading
// to it, closing it, reading its state. Its records are not at fault,
// whatever the answer: a 404 or a 409 says the job was deleted or aborted
// meanwhile (an org reset, an admin), and it may have written records or
// not. So the failure is never Permanent: the records are written again
// later (an upsert makes that harmless).
func (w *batchWriter) jobCallFailed(job, doing string, err error) error {
	if connectors.KindOf(err) != connectors.Permanent {
		return err
	}
	return connectors.E(w.op, connectors.Transient, fmt.Errorf("%s Bulk API 2.0 job %s: %w", doing, job, err))
}

// unknownAfterJob: the job ran but its results could not be read. The
// records may be written: they are retried (an upsert makes that harmless).
func (w *batchWriter) unknownAfterJob(job string, idx []int, err error) error {
	w.c.logger.Warn("cannot read the results of a bulk API 2.0 job: its records are retried", "job", job, "error", err)
	for _, i := range idx {
		if w.results[i].Status == 0 {
			w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: "BULK_RESULTS_UNREAD",
				Message: fmt.Sprintf("the results of Bulk API 2.0 job %s could not be read: %v", job, err)}
		}
	}
	return nil
}

// abort gives up an open job after a failed upload, best effort.
func (w *batchWriter) abort(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = w.c.call(ctx, w.op, http.MethodPatch, path, []byte(`{"state":"Aborted"}`), &w.calls)
}

package emulator

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bulk API 2.0 ingest jobs: /services/data/vXX.X/jobs/ingest[/{id}[/batches|/successfulResults|
// /failedResults|/unprocessedrecords]]. A job is created Open, takes one or more CSV
// uploads, and is processed in the background once closed (UploadComplete → InProgress →
// JobComplete or Failed). Its rows are written in transactions of bulkChunk rows, each
// like one sObject Collections call with allOrNone=false.

// Job states.
const (
	jobOpen           = "Open"
	jobUploadComplete = "UploadComplete"
	jobInProgress     = "InProgress"
	jobComplete       = "JobComplete"
	jobFailed         = "Failed"
	jobAborted        = "Aborted"
)

// Call kinds of the Bulk API resources, as counted in Stats.Calls and matched by
// Fault.Operations ("bulk" matches them all). Rows being processed are the record
// operations "bulk.insert", "bulk.update", "bulk.upsert" and "bulk.delete", which
// FaultRecordLockRow matches.
const (
	kindBulkCreate  = "bulk.createJob"
	kindBulkUpload  = "bulk.upload"
	kindBulkUpdate  = "bulk.updateJob"
	kindBulkGet     = "bulk.getJob"
	kindBulkList    = "bulk.listJobs"
	kindBulkDelete  = "bulk.deleteJob"
	kindBulkResults = "bulk.results"
)

const (
	// minBulkVersion is the first API version with Bulk API 2.0 ingest jobs.
	minBulkVersion = 41
	// bulkChunk is how many rows of a job are written in one transaction.
	bulkChunk = 200
	// bulkBatchRecords is how many records make one batch of the daily allocation.
	bulkBatchRecords = 10000
	// bulkBatchAllocation is the org's daily allocation of Bulk API batches.
	bulkBatchAllocation = 15000
	// bulkNull is the cell value that sets a field to null.
	bulkNull = "#N/A"
)

// bulkDelimiters maps the columnDelimiter values to their character.
var bulkDelimiters = map[string]rune{"BACKQUOTE": '`', "CARET": '^', "COMMA": ',', "PIPE": '|', "SEMICOLON": ';', "TAB": '\t'}

var bulkOperations = []string{"insert", "update", "upsert", "delete"}

// bulkJob is one ingest job. All fields but the immutable ones (id, seq, obj, operation,
// ext, assignmentRuleID, apiVersion, lineEnding, delimiter, created) are guarded by
// Server.bulkMu.
type bulkJob struct {
	id               string
	seq              uint64
	obj              *objectDef
	operation        string
	ext              *fieldDef // the upsert key; nil for other operations
	assignmentRuleID string
	apiVersion       string // "63.0"
	lineEnding       string // LF or CRLF
	delimiter        string // a key of bulkDelimiters
	createdBy        string
	created          time.Time

	state        string
	modstamp     time.Time
	errorMessage string
	processingMS int64

	uploads       [][]byte // the CSV uploads, until they are parsed
	uploadCount   int
	uploadedBytes int

	parsed    bool
	columns   []string // the columns of the uploads, as first spelled
	rows      []bulkRow
	processed int
	failed    int

	done   chan struct{} // closed when the job ends or is deleted
	closed bool
}

// bulkRow is one uploaded row and, once processed, its outcome.
type bulkRow struct {
	cells []string // aligned with bulkJob.columns
	done  bool
	res   recResult
}

func (j *bulkJob) terminal() bool {
	return j.state == jobComplete || j.state == jobFailed || j.state == jobAborted
}

// finish moves the job to a final state. The caller holds Server.bulkMu.
func (j *bulkJob) finish(state, msg string) {
	j.state, j.errorMessage, j.modstamp = state, msg, time.Now()
	j.release()
}

// release wakes whoever waits for the job. The caller holds Server.bulkMu.
func (j *bulkJob) release() {
	if !j.closed {
		close(j.done)
		j.closed = true
	}
}

// setData stores the parsed uploads. The caller holds Server.bulkMu.
func (j *bulkJob) setData(cols []string, rows [][]string) {
	j.columns = cols
	j.rows = make([]bulkRow, len(rows))
	for i, r := range rows {
		j.rows[i].cells = r
	}
	j.parsed = true
	j.uploads = nil
}

// parse parses the uploads if that is not done yet, keeping what could be read when
// the data is malformed. The caller holds Server.bulkMu.
func (j *bulkJob) parse() {
	if !j.parsed {
		cols, rows, _ := parseUploads(j.uploads, j.lineEnding, bulkDelimiters[j.delimiter])
		j.setData(cols, rows)
	}
}

// info renders the JobInfo; detail adds the processing counters of Get Job Info.
// The caller holds Server.bulkMu.
func (j *bulkJob) info(detail bool) *ordered {
	o := orderedOf(
		"id", j.id,
		"operation", j.operation,
		"object", j.obj.Name,
		"createdById", j.createdBy,
		"createdDate", formatDatetime(j.created),
		"systemModstamp", formatDatetime(j.modstamp),
		"state", j.state,
	)
	if j.ext != nil {
		o.set("externalIdFieldName", j.ext.Name)
	}
	if j.assignmentRuleID != "" {
		o.set("assignmentRuleId", j.assignmentRuleID)
	}
	o.set("concurrencyMode", "Parallel")
	o.set("contentType", "CSV")
	o.set("apiVersion", json.Number(j.apiVersion))
	o.set("contentUrl", "services/data/v"+j.apiVersion+"/jobs/ingest/"+j.id+"/batches")
	o.set("jobType", "V2Ingest")
	o.set("lineEnding", j.lineEnding)
	o.set("columnDelimiter", j.delimiter)
	if detail {
		o.set("numberRecordsProcessed", j.processed)
		o.set("numberRecordsFailed", j.failed)
		o.set("retries", 0)
		o.set("totalProcessingTime", j.processingMS)
		o.set("apiActiveProcessingTime", j.processingMS)
		o.set("apexProcessingTime", 0)
		if j.errorMessage != "" {
			o.set("errorMessage", j.errorMessage)
		}
	}
	return o
}

// BulkJobInfo describes one Bulk API 2.0 ingest job of the emulator, for tests and the
// admin API.
type BulkJobInfo struct {
	// ID is the job id (key prefix 750).
	ID string `json:"id"`
	// Object is the API name of the job's object.
	Object string `json:"object"`
	// Operation is insert, update, upsert or delete.
	Operation string `json:"operation"`
	// ExternalIDFieldName is the upsert key; empty for other operations.
	ExternalIDFieldName string `json:"externalIdFieldName,omitempty"`
	// State is Open, UploadComplete, InProgress, JobComplete, Failed or Aborted.
	State string `json:"state"`
	// ErrorMessage says why a Failed job failed.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// CreatedDate is when the job was created.
	CreatedDate time.Time `json:"createdDate"`
	// Uploads is the number of CSV uploads; UploadedBytes their size after gzip decoding.
	Uploads       int `json:"uploads"`
	UploadedBytes int `json:"uploadedBytes"`
	// RecordsProcessed counts the rows processed, failed ones included; RecordsFailed
	// the rows that failed.
	RecordsProcessed int `json:"numberRecordsProcessed"`
	RecordsFailed    int `json:"numberRecordsFailed"`
}

func (j *bulkJob) public() BulkJobInfo {
	out := BulkJobInfo{ID: j.id, Object: j.obj.Name, Operation: j.operation, State: j.state, ErrorMessage: j.errorMessage,
		CreatedDate: j.created, Uploads: j.uploadCount, UploadedBytes: j.uploadedBytes,
		RecordsProcessed: j.processed, RecordsFailed: j.failed}
	if j.ext != nil {
		out.ExternalIDFieldName = j.ext.Name
	}
	return out
}

// BulkJobs returns the Bulk API 2.0 ingest jobs that were created and not deleted,
// oldest first.
func (s *Server) BulkJobs() []BulkJobInfo {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	jobs := s.sortedJobs()
	out := make([]BulkJobInfo, len(jobs))
	for i, j := range jobs {
		out[i] = j.public()
	}
	return out
}

// BulkJob returns one Bulk API 2.0 ingest job by its 15- or 18-character id.
func (s *Server) BulkJob(id string) (BulkJobInfo, bool) {
	id18, ok := normalizeID(id)
	if !ok {
		return BulkJobInfo{}, false
	}
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	j := s.bulkJobs[id18]
	if j == nil {
		return BulkJobInfo{}, false
	}
	return j.public(), true
}

// WaitBulkJobs waits until every job closed so far (UploadComplete or InProgress) is
// processed: JobComplete, Failed, Aborted or deleted. Open jobs are not waited for.
// Jobs are processed in the background, so tests call it before reading the records a
// job wrote.
func (s *Server) WaitBulkJobs(ctx context.Context) error {
	s.bulkMu.Lock()
	var waits []chan struct{}
	for _, j := range s.bulkJobs {
		if j.state == jobUploadComplete || j.state == jobInProgress {
			waits = append(waits, j.done)
		}
	}
	s.bulkMu.Unlock()
	for _, d := range waits {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sortedJobs returns the jobs oldest first. The caller holds bulkMu.
func (s *Server) sortedJobs() []*bulkJob {
	jobs := make([]*bulkJob, 0, len(s.bulkJobs))
	for _, j := range s.bulkJobs {
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].seq < jobs[b].seq })
	return jobs
}

// bulkJobCounts counts the jobs by state, for Stats.
func (s *Server) bulkJobCounts() map[string]int {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	out := map[string]int{}
	for _, j := range s.bulkJobs {
		out[j.state]++
	}
	return out
}

// resetBulk drops every job and the batch usage.
func (s *Server) resetBulk() {
	s.bulkMu.Lock()
	for _, j := range s.bulkJobs {
		j.release()
	}
	clear(s.bulkJobs)
	s.bulkMu.Unlock()
	s.usageMu.Lock()
	s.bulkBatches = 0
	s.usageMu.Unlock()
}

// bulkBatchesUsed returns the batches used in the current usage window.
func (s *Server) bulkBatchesUsed() int {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.rollWindow()
	return s.bulkBatches
}

func (s *Server) addBulkBatches(n int) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.rollWindow()
	s.bulkBatches += n
}

// routeJobs maps /jobs/… to its handler.
func (s *Server) routeJobs(method string, rest []string) route {
	if len(rest) == 0 {
		return notFoundRoute("")
	}
	switch rest[0] {
	case "ingest":
	case "query":
		return notFoundRoute("Bulk API 2.0 query jobs (/jobs/query) are not emulated: use the query resource (/query)")
	default:
		return notFoundRoute("")
	}
	switch len(rest) {
	case 1:
		return byMethod(method, map[string]route{
			"GET":  s.bulkRoute(kindBulkList, s.handleJobList),
			"POST": s.bulkRoute(kindBulkCreate, s.handleJobCreate),
		})
	case 2:
		id := rest[1]
		return byMethod(method, map[string]route{
			"GET":    s.bulkRoute(kindBulkGet, func(c *call) *response { return s.handleJobGet(id) }),
			"PATCH":  s.bulkRoute(kindBulkUpdate, func(c *call) *response { return s.handleJobUpdate(c, id) }),
			"DELETE": s.bulkRoute(kindBulkDelete, func(c *call) *response { return s.handleJobDelete(id) }),
		})
	case 3:
		id, which := rest[1], rest[2]
		switch which {
		case "batches":
			return byMethod(method, map[string]route{
				"PUT": s.bulkRoute(kindBulkUpload, func(c *call) *response { return s.handleJobUpload(c, id) }),
			})
		case "successfulResults", "failedResults", "unprocessedrecords":
			return byMethod(method, map[string]route{
				"GET": s.bulkRoute(kindBulkResults, func(c *call) *response { return s.handleJobResults(id, which) }),
			})
		}
	}
	return notFoundRoute("")
}

// bulkRoute wraps a Bulk API handler: the resources exist from API 41.0 and are not
// composite subrequests.
func (s *Server) bulkRoute(kind string, h func(c *call) *response) route {
	return route{kind: kind, handler: func(c *call) *response {
		if c.sub {
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "Bulk API 2.0 resources can't be used in a composite request"))
		}
		if c.verNum < minBulkVersion {
			return errResp(http.StatusNotFound, newErr("NOT_FOUND", "The requested resource does not exist (Bulk API 2.0 needs API version %d.0 or later)", minBulkVersion))
		}
		return h(c)
	}}
}

func invalidJob(format string, args ...any) *response {
	return errResp(http.StatusBadRequest, newErr("INVALIDJOB", format, args...))
}

func jobStateConflict(format string, args ...any) *response {
	return errResp(http.StatusConflict, newErr("INVALIDJOBSTATE", format, args...))
}

// jobFor returns the job named by the URL, or the 404 to answer. The caller holds bulkMu.
func (s *Server) jobFor(raw string) (*bulkJob, *response) {
	if id, ok := normalizeID(raw); ok {
		if j := s.bulkJobs[id]; j != nil {
			return j, nil
		}
	}
	return nil, errResp(http.StatusNotFound, newErr("NOT_FOUND", "The requested resource does not exist"))
}

// jobSpec is the body of Create a Job.
type jobSpec struct {
	Object              string `json:"object"`
	Operation           string `json:"operation"`
	ExternalIDFieldName string `json:"externalIdFieldName"`
	ContentType         string `json:"contentType"`
	LineEnding          string `json:"lineEnding"`
	ColumnDelimiter     string `json:"columnDelimiter"`
	AssignmentRuleID    string `json:"assignmentRuleId"`
}

// handleJobCreate is POST /jobs/ingest.
func (s *Server) handleJobCreate(c *call) *response {
	var spec jobSpec
	if err := decodeJSON(c.body, &spec); err != nil {
		return errResp(http.StatusBadRequest, err)
	}
	j, resp := s.newJob(c, spec)
	if resp != nil {
		return resp
	}
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	s.bulkSeq++
	j.seq = s.bulkSeq
	j.id = makeID("750", s.bulkSeq)
	s.bulkJobs[j.id] = j
	return jsonResp(http.StatusOK, j.info(false))
}

// newJob checks a job specification.
func (s *Server) newJob(c *call, spec jobSpec) (*bulkJob, *response) {
	op := spec.Operation
	switch {
	case op == "":
		return nil, invalidJob("The operation is required: one of %s", strings.Join(bulkOperations, ", "))
	case op == "hardDelete":
		return nil, invalidJob("Operation hardDelete is not emulated: use delete")
	case !slices.Contains(bulkOperations, op):
		return nil, invalidJob("Invalid operation: %s. Use one of %s (the value is case-sensitive)", op, strings.Join(bulkOperations, ", "))
	}
	if spec.Object == "" {
		return nil, invalidJob("The object is required: the API name of the object the job loads")
	}
	obj := s.schema.object(spec.Object)
	if obj == nil {
		return nil, invalidJob("Unable to find object: %s", spec.Object)
	}
	if spec.ContentType != "" && spec.ContentType != "CSV" {
		return nil, invalidJob("Invalid contentType: %s. Bulk API 2.0 ingest jobs take CSV", spec.ContentType)
	}
	lineEnding := spec.LineEnding
	switch lineEnding {
	case "":
		lineEnding = "LF"
	case "LF", "CRLF":
	default:
		return nil, invalidJob("Invalid lineEnding: %s. Use LF or CRLF", spec.LineEnding)
	}
	delimiter := spec.ColumnDelimiter
	if delimiter == "" {
		delimiter = "COMMA"
	}
	if _, ok := bulkDelimiters[delimiter]; !ok {
		return nil, invalidJob("Invalid columnDelimiter: %s. Use one of BACKQUOTE, CARET, COMMA, PIPE, SEMICOLON, TAB", spec.ColumnDelimiter)
	}
	var ext *fieldDef
	if op == "upsert" {
		if spec.ExternalIDFieldName == "" {
			return nil, invalidJob("External ID was blank for %s. An External ID must be specified for upsert.", obj.Name)
		}
		ext = obj.field(spec.ExternalIDFieldName)
		if ext == nil || !(ext.ExternalID || ext.IDLookup) {
			return nil, invalidJob("Field name provided, %s does not match an External ID, Salesforce Id, or indexed field for %s", spec.ExternalIDFieldName, obj.Name)
		}
	}
	if spec.AssignmentRuleID != "" {
		if _, ok := normalizeID(spec.AssignmentRuleID); !ok {
			return nil, invalidJob("Invalid assignmentRuleId: %s", spec.AssignmentRuleID)
		}
	}
	now := time.Now()
	return &bulkJob{obj: obj, operation: op, ext: ext, assignmentRuleID: spec.AssignmentRuleID,
		apiVersion: c.version, lineEnding: lineEnding, delimiter: delimiter, createdBy: s.userID,
		created: now, modstamp: now, state: jobOpen, done: make(chan struct{})}, nil
}

// handleJobList is GET /jobs/ingest: every job, in one page.
func (s *Server) handleJobList(c *call) *response {
	q := c.query
	records := []*ordered{}
	match := (q.Get("jobType") == "" || q.Get("jobType") == "V2Ingest") &&
		(q.Get("concurrencyMode") == "" || q.Get("concurrencyMode") == "Parallel") &&
		q.Get("isPkChunkingEnabled") != "true"
	if match {
		s.bulkMu.Lock()
		for _, j := range s.sortedJobs() {
			records = append(records, j.info(false))
		}
		s.bulkMu.Unlock()
	}
	return jsonResp(http.StatusOK, orderedOf("done", true, "records", records, "nextRecordsUrl", nil))
}

// handleJobGet is GET /jobs/ingest/{id}.
func (s *Server) handleJobGet(id string) *response {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	j, resp := s.jobFor(id)
	if resp != nil {
		return resp
	}
	return jsonResp(http.StatusOK, j.info(true))
}

// handleJobUpdate is PATCH /jobs/ingest/{id}: {"state":"UploadComplete"} closes the job
// and starts processing it, {"state":"Aborted"} aborts it.
func (s *Server) handleJobUpdate(c *call, id string) *response {
	var body struct {
		State string `json:"state"`
		ID    string `json:"id"`
	}
	if err := decodeJSON(c.body, &body); err != nil {
		return errResp(http.StatusBadRequest, err)
	}
	s.bulkMu.Lock()
	j, resp := s.jobFor(id)
	if resp == nil {
		resp = s.changeJobState(j, body.State, body.ID)
	}
	if resp != nil {
		s.bulkMu.Unlock()
		return resp
	}
	info := j.info(false)
	start := j.state == jobUploadComplete
	if start {
		s.bulkWG.Add(1)
	}
	s.bulkMu.Unlock()
	if start {
		go s.processJob(j)
	}
	return jsonResp(http.StatusOK, info)
}

// changeJobState applies a requested state. The caller holds bulkMu.
func (s *Server) changeJobState(j *bulkJob, state, bodyID string) *response {
	if bodyID != "" {
		if id, ok := normalizeID(bodyID); !ok || id != j.id {
			return invalidJob("The id %s in the request body is not the id of the job in the URL, %s", bodyID, j.id)
		}
	}
	switch state {
	case jobUploadComplete:
		if j.state != jobOpen {
			return jobStateConflict("Job %s is %s: only an Open job can be set to UploadComplete", j.id, j.state)
		}
		j.state, j.modstamp = jobUploadComplete, time.Now()
	case jobAborted:
		if j.terminal() {
			return jobStateConflict("Job %s is already %s: it can't be aborted", j.id, j.state)
		}
		j.finish(jobAborted, "")
	case "":
		return invalidJob("The state is required: UploadComplete or Aborted")
	default:
		return invalidJob("Invalid state: %s. A job can only be set to UploadComplete or Aborted", state)
	}
	return nil
}

// handleJobDelete is DELETE /jobs/ingest/{id}.
func (s *Server) handleJobDelete(id string) *response {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	j, resp := s.jobFor(id)
	if resp != nil {
		return resp
	}
	if j.state == jobOpen || j.state == jobInProgress {
		return jobStateConflict("Job %s is %s: only a job that is UploadComplete, JobComplete, Failed or Aborted can be deleted", j.id, j.state)
	}
	delete(s.bulkJobs, j.id)
	j.release()
	return &response{status: http.StatusNoContent}
}

// handleJobUpload is PUT /jobs/ingest/{id}/batches: CSV data appended to an Open job.
func (s *Server) handleJobUpload(c *call, id string) *response {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	j, resp := s.jobFor(id)
	if resp != nil {
		return resp
	}
	ct := c.header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/csv" {
		return errResp(http.StatusUnsupportedMediaType, newErr("UNSUPPORTED_MEDIA_TYPE", "Content-Type %q is not supported: upload job data as text/csv", ct))
	}
	if j.state != jobOpen {
		return jobStateConflict("Job %s is %s: data can only be uploaded to an Open job", j.id, j.state)
	}
	if len(c.body) == 0 {
		return invalidJob("The upload is empty: send CSV data that starts with a header row")
	}
	j.uploads = append(j.uploads, c.body)
	j.uploadCount++
	j.uploadedBytes += len(c.body)
	j.modstamp = time.Now()
	return &response{status: http.StatusCreated}
}

// handleJobResults is GET /jobs/ingest/{id}/successfulResults, /failedResults and
// /unprocessedrecords: CSV in the job's delimiter and line ending, rows in upload order.
func (s *Server) handleJobResults(id, which string) *response {
	s.bulkMu.Lock()
	defer s.bulkMu.Unlock()
	j, resp := s.jobFor(id)
	if resp != nil {
		return resp
	}
	if !j.terminal() {
		return jobStateConflict("Job %s is %s: its %s are available once it is JobComplete, Failed or Aborted", j.id, j.state, which)
	}
	j.parse()
	w := &csvOut{comma: byte(bulkDelimiters[j.delimiter]), eol: "\n"}
	if j.lineEnding == "CRLF" {
		w.eol = "\r\n"
	}
	switch which {
	case "successfulResults":
		w.header([]string{"sf__Id", "sf__Created"}, j.columns)
		for _, r := range j.rows {
			if r.done && r.res.err == nil {
				w.row(append([]string{r.res.id, strconv.FormatBool(r.res.created)}, r.cells...))
			}
		}
	case "failedResults":
		w.header([]string{"sf__Id", "sf__Error"}, j.columns)
		for _, r := range j.rows {
			if r.done && r.res.err != nil {
				id := ""
				if r.res.idKnown {
					id = r.res.id
				}
				w.row(append([]string{id, r.res.err.Code + ":" + r.res.err.Message}, r.cells...))
			}
		}
	default:
		w.header(nil, j.columns)
		for _, r := range j.rows {
			if !r.done {
				w.row(r.cells)
			}
		}
	}
	return &response{status: http.StatusOK, raw: w.buf.Bytes(), contentType: "text/csv"}
}

// csvOut writes results as Salesforce does: the sf__ columns of the header and every
// value quoted, the uploaded column names quoted only when they must be.
type csvOut struct {
	buf   bytes.Buffer
	comma byte
	eol   string
}

func (w *csvOut) cell(i int, v string, quote bool) {
	if i > 0 {
		w.buf.WriteByte(w.comma)
	}
	if !quote && !strings.ContainsAny(v, string(w.comma)+"\"\r\n") {
		w.buf.WriteString(v)
		return
	}
	w.buf.WriteByte('"')
	w.buf.WriteString(strings.ReplaceAll(v, `"`, `""`))
	w.buf.WriteByte('"')
}

func (w *csvOut) header(sf, cols []string) {
	for i, c := range sf {
		w.cell(i, c, true)
	}
	for i, c := range cols {
		w.cell(len(sf)+i, c, false)
	}
	w.buf.WriteString(w.eol)
}

func (w *csvOut) row(cells []string) {
	for i, c := range cells {
		w.cell(i, c, true)
	}
	w.buf.WriteString(w.eol)
}

// processJob processes a closed job in the background: parse the uploads, map the
// columns to fields, write the rows in transactions of bulkChunk rows. It stops when
// the job is aborted or deleted (or the org reset) between two transactions.
func (s *Server) processJob(j *bulkJob) {
	defer s.bulkWG.Done()
	start := time.Now()
	s.bulkMu.Lock()
	if s.bulkJobs[j.id] != j || j.state != jobUploadComplete {
		s.bulkMu.Unlock()
		return
	}
	j.state, j.modstamp = jobInProgress, start
	uploads := j.uploads
	s.bulkMu.Unlock()

	cols, rows, msg := parseUploads(uploads, j.lineEnding, bulkDelimiters[j.delimiter])
	var fields []*fieldDef
	if msg == "" {
		fields, msg = bindColumns(j.obj, cols)
	}
	s.bulkMu.Lock()
	if !j.parsed {
		j.setData(cols, rows)
	}
	live := s.bulkJobs[j.id] == j && j.state == jobInProgress
	if live && msg != "" {
		j.processingMS = time.Since(start).Milliseconds()
		j.finish(jobFailed, msg)
	}
	s.bulkMu.Unlock()
	if !live || msg != "" {
		return
	}

	for from := 0; from < len(rows); from += bulkChunk {
		if !s.runBulkChunk(j, fields, from, min(from+bulkChunk, len(rows))) {
			return
		}
		if from == 0 && s.fire(FaultBulkJobFailed, "bulk."+j.operation, j.obj.Name) != nil {
			s.bulkMu.Lock()
			if s.bulkJobs[j.id] == j && j.state == jobInProgress {
				j.processingMS = time.Since(start).Milliseconds()
				j.finish(jobFailed, "InternalServerError : the batch could not be processed after 10 retries (emulated fault)")
			}
			s.bulkMu.Unlock()
			return
		}
	}
	s.addBulkBatches(max(1, (len(rows)+bulkBatchRecords-1)/bulkBatchRecords))
	s.bulkMu.Lock()
	if s.bulkJobs[j.id] == j && j.state == jobInProgress {
		j.processingMS = time.Since(start).Milliseconds()
		j.finish(jobComplete, "")
	}
	s.bulkMu.Unlock()
}

// runBulkChunk writes rows [from, to) of the job in one transaction; it reports false
// when the job is no longer in progress. It holds the store lock, then bulkMu from the
// state check until the outcomes are stored, so an abort lands between two chunks.
func (s *Server) runBulkChunk(j *bulkJob, fields []*fieldDef, from, to int) bool {
	s.mu.Lock()
	s.bulkMu.Lock()
	if s.bulkJobs[j.id] != j || j.state != jobInProgress {
		s.bulkMu.Unlock()
		s.mu.Unlock()
		return false
	}
	rows := make([][]string, 0, to-from)
	for _, r := range j.rows[from:to] {
		rows = append(rows, r.cells)
	}
	tx := &txn{st: s.st}
	for i, res := range s.bulkRecords(tx, j, fields, rows) {
		r := &j.rows[from+i]
		r.done, r.res = true, res
		j.processed++
		if res.err != nil {
			j.failed++
		}
	}
	j.modstamp = time.Now()
	s.bulkMu.Unlock()
	s.commit(tx)
	return true
}

// bulkRecords applies the job's operation to rows, whose cells are aligned with fields.
func (s *Server) bulkRecords(tx *txn, j *bulkJob, fields []*fieldDef, rows [][]string) []recResult {
	op := "bulk." + j.operation
	out := make([]recResult, len(rows))
	if j.operation == "delete" {
		idCol := slices.IndexFunc(fields, func(f *fieldDef) bool { return f.Name == "Id" })
		for i, row := range rows {
			raw := ""
			if idCol >= 0 {
				raw = row[idCol]
			}
			if raw == "" || raw == bulkNull {
				out[i] = recResult{err: newErr("MISSING_ARGUMENT", "Id not specified in a delete call")}
				continue
			}
			out[i] = s.deleteOne(tx, op, j.obj, raw)
		}
		return out
	}
	ins := make([]*recordInput, len(rows))
	for i, row := range rows {
		in, err := rowInput(j.obj, fields, row)
		if err != nil {
			out[i] = recResult{err: err}
			continue
		}
		ins[i] = in
	}
	var repeated []bool
	if j.ext != nil {
		repeated = repeatedKeys(ins, j.ext)
	}
	for i, in := range ins {
		if in == nil {
			continue
		}
		switch j.operation {
		case "insert":
			out[i] = s.createOne(tx, op, in)
		case "update":
			out[i] = s.updateOne(tx, op, in)
		case "upsert":
			if j.ext.Name == "Id" && in.values["Id"] == nil {
				// upserting on Id: a row without an Id is a new record
				delete(in.values, "Id")
				in.names = without(in.names, "Id")
				out[i] = s.createOne(tx, op, in)
				continue
			}
			out[i] = s.upsertOne(tx, op, in, j.ext, repeated[i])
		}
	}
	return out
}

// rowInput maps one CSV row onto the object: an empty cell leaves its field out, #N/A
// sets it to null, other cells are converted by the field's type.
func rowInput(obj *objectDef, fields []*fieldDef, row []string) (*recordInput, *sfError) {
	in := &recordInput{obj: obj, values: make(map[string]any, len(row))}
	for i, cell := range row {
		if cell == "" {
			continue
		}
		f := fields[i]
		var v any
		if cell != bulkNull {
			var err *sfError
			if v, err = csvValue(f, cell, i+1); err != nil {
				return nil, err
			}
		}
		in.values[f.Name] = v
		in.names = append(in.names, f.Name)
	}
	return in, nil
}

// csvValue converts the text of a cell in column col (from 1) to the coerced value of
// the field, as decodeRecord does for JSON values.
func csvValue(f *fieldDef, s string, col int) (any, *sfError) {
	bad := func() *sfError {
		return newErr("INVALID_FIELD", "Failed to deserialize field at col %d. Due to, '%s' is not a valid value for the type %s", col, s, f.Type.soapType()).withFields(f.Name)
	}
	switch {
	case f.Type.isText():
		return s, nil
	case f.Type == tBoolean:
		switch strings.ToLower(s) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return nil, bad()
	case f.Type.isNumber():
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, bad()
		}
		return n, nil
	case f.Type == tDate:
		if t, err := time.Parse(dateLayout, s); err == nil {
			return t.Format(dateLayout), nil
		}
		if t, ok := parseDatetime(s); ok {
			return t.Format(dateLayout), nil
		}
		return nil, bad()
	case f.Type == tDatetime:
		if t, ok := parseDatetime(s); ok {
			return formatDatetime(t), nil
		}
		return nil, bad()
	}
	v, err := f.coerce(s)
	if err != nil {
		return nil, bad()
	}
	return v, nil
}

// bindColumns maps the columns to the object's fields; an unknown column fails the job.
func bindColumns(obj *objectDef, cols []string) ([]*fieldDef, string) {
	fields := make([]*fieldDef, len(cols))
	for i, c := range cols {
		f := obj.field(c)
		if f == nil {
			if strings.ContainsAny(c, ".:") {
				return nil, "InvalidBatch : Field name not found : " + c + " (relationship columns are not emulated: give the Id of the related record)"
			}
			return nil, "InvalidBatch : Field name not found : " + c
		}
		fields[i] = f
	}
	return fields, ""
}

// parseUploads reads the CSV uploads of a job: each starts with a header row; the
// columns are the union of the headers (matched case-insensitively) and each row has a
// cell for every column ("" where its upload has no such column). A non-empty msg is the
// job's error message: the data is malformed. What could be read is returned anyway.
func parseUploads(uploads [][]byte, lineEnding string, comma rune) (cols []string, rows [][]string, msg string) {
	colIdx := map[string]int{}
	for _, data := range uploads {
		data = bytes.TrimPrefix(data, []byte("\ufeff"))
		if !lineEndingOK(data, lineEnding) {
			return cols, rows, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is " + lineEnding
		}
		r := csv.NewReader(bytes.NewReader(data))
		r.Comma = comma
		r.FieldsPerRecord = -1
		header, err := r.Read()
		if errors.Is(err, io.EOF) {
			return cols, rows, "InvalidBatch : The CSV data has no header row"
		}
		if err != nil {
			return cols, rows, "InvalidBatch : Failed to parse the CSV header: " + err.Error()
		}
		pos := make([]int, len(header))
		seen := map[string]bool{}
		normalizeBreaks(header)
		for i, h := range header {
			k := strings.ToLower(h)
			if h == "" {
				return cols, rows, "InvalidBatch : Field name not found : (an empty column name in the header)"
			}
			if seen[k] {
				return cols, rows, "InvalidBatch : Duplicate field name in the header: " + h
			}
			seen[k] = true
			idx, ok := colIdx[k]
			if !ok {
				idx = len(cols)
				colIdx[k] = idx
				cols = append(cols, h)
				for n := range rows {
					rows[n] = append(rows[n], "")
				}
			}
			pos[i] = idx
		}
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return cols, rows, "ClientInputError : Failed to parse the CSV data: " + err.Error()
			}
			if len(rec) != len(header) {
				line, _ := r.FieldPos(0)
				return cols, rows, "ClientInputError : The row on line " + strconv.Itoa(line) + " has " + strconv.Itoa(len(rec)) +
					" values but the header has " + strconv.Itoa(len(header)) + " columns"
			}
			row := make([]string, len(cols))
			normalizeBreaks(rec)
			for i, v := range rec {
				row[pos[i]] = v
			}
			rows = append(rows, row)
		}
	}
	return cols, rows, ""
}

// normalizeBreaks stores every line break inside a value as LF: CRs before
// a LF are dropped. encoding/csv drops one CR before the LF of each line it
// reads, so "\r\r\n" would read as "\r\n" here and, in the results written
// back, as "\n" to the client, which could then not find its row.
func normalizeBreaks(cells []string) {
	for i, c := range cells {
		if strings.Contains(c, "\r\n") {
			cells[i] = crlfRE.ReplaceAllString(c, "\n")
		}
	}
}

var crlfRE = regexp.MustCompile(`\r+\n`)

// lineEndingOK reports whether every line break outside quoted values is the job's
// line ending: "\n" for LF, "\r\n" for CRLF.
func lineEndingOK(data []byte, lineEnding string) bool {
	inQuotes := false
	for i, b := range data {
		switch b {
		case '"':
			inQuotes = !inQuotes
		case '\n':
			if inQuotes {
				continue
			}
			crlf := i > 0 && data[i-1] == '\r'
			if crlf != (lineEnding == "CRLF") {
				return false
			}
		}
	}
	return true
}

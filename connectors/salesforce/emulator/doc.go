// Package emulator is a local Salesforce org: an HTTP server that speaks the real
// Salesforce REST wire format (OAuth token endpoint, /services/data/vXX.X resources,
// JSON bodies, error arrays, Sforce-Limit-Info) over an in-memory store, so that any
// standard Salesforce client (go-salesforce v3, simple-salesforce, jsforce, restforce)
// works against it unchanged. To a Salesforce admin a "sandbox" is a real org, hence
// the name emulator.
//
// It is built from the public API reference (shared/reference/salesforce-apis.md),
// never shaped to fit loyaltyhub's own connector.
//
// # What it serves
//
//   - POST /services/oauth2/token: password (password + security token), client_credentials
//     and jwt-bearer grants; OAuth error objects on failure. Tokens expire (Config.TokenTTL).
//     The SOAP login() call (POST /services/Soap/u/vXX.X), which simple-salesforce and
//     jsforce use by default, returns a session that works on the REST API.
//     StartTLS serves HTTPS for clients that only speak https.
//
//   - GET /services/data/ (versions, no Sforce-Limit-Info), GET /services/data/vXX.X/,
//     /limits, /sobjects (describeGlobal), /sobjects/{Obj}, /sobjects/{Obj}/describe.
//
//   - sObject rows: POST create, GET/PATCH/DELETE by id, GET/PATCH/DELETE by external id
//     (upsert: 201 created, 200 updated with a body from API 46.0, 300 on several matches).
//
//   - sObject Collections: POST/PATCH/DELETE /composite/sobjects, PATCH
//     /composite/sobjects/{Obj}/{ExtField}, GET /composite/sobjects/{Obj}?ids=…&fields=…,
//     with allOrNone and the 200-record limit.
//
//   - Composite: POST /composite with at most 25 subrequests (at most 5 of them sObject
//     Collections or queries), @{ref.field} references and allOrNone rollback.
//
//   - SOQL subset on /query and /queryAll with nextRecordsUrl paging (see [Server] docs on
//     the grammar).
//
//   - Bulk API 2.0 ingest jobs (API 41.0 and later) under /jobs/ingest: create (200,
//     state Open), PUT …/{id}/batches (text/csv with a header row, 201; several uploads
//     are appended; Config.BulkUploadLimit, 150 MB by default, else 413), PATCH …/{id}
//     {"state":"UploadComplete"|"Aborted"} (an "id" key is accepted), GET …/{id} (JobInfo
//     with the record counts and, when Failed, errorMessage), GET /jobs/ingest (every job,
//     one page), DELETE …/{id} (UploadComplete, JobComplete, Failed or Aborted jobs, 204),
//     and the results CSVs …/successfulResults ("sf__Id","sf__Created", then the uploaded
//     columns), …/failedResults ("sf__Id","sf__Error" as CODE:message, then the columns)
//     and …/unprocessedrecords, rows in upload order, once the job is JobComplete, Failed
//     or Aborted (409 INVALIDJOBSTATE before). A closed job is processed in the background
//     (UploadComplete → InProgress → JobComplete), 200 rows per transaction, each row as
//     one record of sObject Collections with allOrNone=false: same validation, error
//     codes, OnWrite calls and record-level faults ("bulk.insert", "bulk.update",
//     "bulk.upsert", "bulk.delete"). Cells are converted by the field's describe type; an
//     empty cell leaves the field alone and #N/A sets it to null; a value of the wrong type
//     fails its row (INVALID_FIELD: Failed to deserialize field …). Upserts match on the
//     job's externalIdFieldName (or Id: rows without one are created), and a key repeated
//     in the same 200 rows fails them with DUPLICATE_EXTERNAL_ID. The job fails as a whole
//     (state Failed, InvalidBatch or ClientInputError message, every row unprocessed) on an
//     unknown column, a malformed CSV or line endings that are not the job's lineEnding.
//     Every delimiter of columnDelimiter is supported; results use the job's delimiter
//     and line ending. Bulk calls are API calls (Sforce-Limit-Info, the daily limit,
//     faults on "bulk" or "bulk.createJob", "bulk.upload", "bulk.updateJob",
//     "bulk.getJob", "bulk.listJobs", "bulk.deleteJob", "bulk.results"); a job uses
//     DailyBulkApiBatches (one batch per 10,000 rows). [Server.BulkJobs],
//     [Server.BulkJob] and [Server.WaitBulkJobs] inspect the jobs from Go.
//
//   - The standard objects Account, Contact, LoyaltyProgram, LoyaltyProgramMember,
//     TransactionJournal and Voucher with realistic describe metadata, plus custom fields
//     and custom objects from [Fields] (see loyaltyhub-fields.yaml, embedded as
//     [LoyaltyhubFields]).
//
//   - Validation like a real org: INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE,
//     REQUIRED_FIELD_MISSING, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, STRING_TOO_LONG,
//     DUPLICATE_VALUE, JSON_PARSER_ERROR, MALFORMED_ID, INVALID_CROSS_REFERENCE_KEY, ...
//
//   - Daily API limit (Sforce-Limit-Info on every REST response but the versions list,
//     403 REQUEST_LIMIT_EXCEEDED past it), gzip request bodies, gzip responses on
//     Accept-Encoding: gzip.
//
//   - Fault injection (HTTP 429/503, UNABLE_TO_LOCK_ROW for a whole request or per record,
//     REQUEST_LIMIT_EXCEEDED, added latency, a Bulk API 2.0 job failed part-way), from Go
//     ([Server.AddFault]) or over the admin API under /__emulator/ (which is not part of
//     Salesforce's API):
//
//     GET    /__emulator/faults            list active faults
//     POST   /__emulator/faults            add one: {"kind":"http_429","count":2} → 201 {"id":…}
//     DELETE /__emulator/faults[/{id}]     clear all faults, or one
//     GET    /__emulator/records/{Obj}     dump the live records of an object
//     GET    /__emulator/jobs              list the Bulk API jobs with state and counts
//     GET    /__emulator/stats             calls by kind, faults fired, records, jobs
//     POST   /__emulator/reset             drop records, cursors, jobs, faults, usage and stats
//     POST   /__emulator/usage             {"used":N}: set today's API usage
//     POST   /__emulator/sessions/expire   expire every issued access token
//
// # Not emulated
//
// Bulk API 2.0 query jobs (/jobs/query) answer 404 NOT_FOUND; so do the original Bulk API
// (/services/async) and the multipart create-job-with-data request. Ingest jobs have no
// hardDelete operation, no relationship columns (Account.External_Id__c: give the Id),
// no assignment rules (assignmentRuleId is checked and echoed, not applied), no retries
// and no queryLocator paging of the job list; they can't be composite subrequests. The
// Loyalty Management Connect resources (/loyalty-programs/…, /connect/loyalty/…) are not
// emulated either. SOQL has no aggregate functions other than COUNT(), no GROUP BY, no
// child subqueries and no date literals such as TODAY.
package emulator

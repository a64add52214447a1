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
//     REQUEST_LIMIT_EXCEEDED, added latency), from Go ([Server.AddFault]) or over the admin
//     API under /__emulator/ (which is not part of Salesforce's API):
//
//     GET    /__emulator/faults            list active faults
//     POST   /__emulator/faults            add one: {"kind":"http_429","count":2} → 201 {"id":…}
//     DELETE /__emulator/faults[/{id}]     clear all faults, or one
//     GET    /__emulator/records/{Obj}     dump the live records of an object
//     GET    /__emulator/stats             calls by kind, faults fired, records stored
//     POST   /__emulator/reset             drop records, cursors, faults, usage and stats
//     POST   /__emulator/usage             {"used":N}: set today's API usage
//     POST   /__emulator/sessions/expire   expire every issued access token
//
// # Not done yet
//
// TODO(bulk): Bulk API 2.0 (/jobs/ingest, /jobs/query) is not emulated: those paths answer
// 404 NOT_FOUND. The Loyalty Management Connect resources (/loyalty-programs/…,
// /connect/loyalty/…) are not emulated either. SOQL has no aggregate functions other than
// COUNT(), no GROUP BY, no child subqueries and no date literals such as TODAY.
package emulator

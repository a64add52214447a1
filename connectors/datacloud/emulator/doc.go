// Package emulator is a local Salesforce Data Cloud (Data 360, formerly CDP) tenant with
// its org: an HTTP server that speaks the Ingestion API's streaming wire format (the core
// login, the token exchange, paths, JSON bodies, status codes, error objects) over
// in-memory objects, so that any HTTP client written against the Data Cloud docs works
// against it unchanged.
//
// It is built from the public API reference (shared/reference/salesforce-apis.md, section
// 5) and Salesforce's Data Cloud Ingestion API docs, never shaped to fit loyaltyhub's own
// connector. One server plays every host: the org's login host, the token exchange and
// the Data Cloud tenant; both tokens' instance_url is the emulator's own URL.
//
// # What it serves
//
//   - POST /services/oauth2/token (form body): the org login. The client credentials grant
//     (client_id and client_secret in the body, or an HTTP Basic header) and the JWT bearer
//     grant the Data Cloud docs use (the assertion's iss must be the client id; its
//     signature is not checked). The answer is {"access_token","instance_url","id",
//     "token_type":"Bearer","issued_at","signature","scope":"cdp_ingest_api api"}. Errors
//     are 400 OAuth objects {"error","error_description"}, as Salesforce gives them:
//     invalid_client_id "client identifier invalid" for an unknown client id,
//     invalid_client "invalid client credentials" for a wrong secret, invalid_grant for a
//     refused assertion, unsupported_grant_type for other grants.
//
//   - POST /services/a360/token (form body grant_type=urn:salesforce:grant-type:external:cdp,
//     subject_token=<core token>, subject_token_type=urn:ietf:params:oauth:token-type:access_token):
//     the exchange. The answer is {"access_token" (a JWT),"instance_url","token_type":"Bearer",
//     "issued_token_type":"urn:ietf:params:oauth:token-type:jwt","expires_in"} with
//     expires_in Config.TokenTTL in seconds (7199 by default). An unknown, expired or Data
//     Cloud subject token is 401 invalid_subject_token.
//
//   - POST /api/v1/ingest/sources/{connectorName}/{objectName} with {"data":[{…},…]}:
//     streaming insert. 202 {"accepted":true} when every record is valid; the records are
//     then processed after Config.ProcessDelay (or [Server.Flush]) and upserted by primary
//     key, each replacing the whole stored record. Checked on receipt, all or nothing: the
//     body is JSON (400), smaller than 200 KB (413), a Content-Type of application/json
//     (415), an object with a non-empty "data" array (400); each record an object with the
//     primary key present and not null or "", only fields of the object's schema, values
//     of the field's JSON type (string, number, boolean), dates yyyy-MM-dd and date-times
//     yyyy-MM-ddTHH:mm:ss.SSSZ (milliseconds optional, UTC "Z" required). null and "" are
//     accepted as "no value" for other fields, as the docs ask. A request with a bad record
//     is refused whole with 400 and the documented validation error (see below), whose
//     report names each bad record's index and, in its JSON pointers, the fields at fault.
//
//   - DELETE /api/v1/ingest/sources/{connectorName}/{objectName}?ids=a,b, or with a body
//     {"ids":["a","b"]} (both may be given): at most 200 primary keys, 202 {"accepted":true},
//     processed like inserts; unknown keys are accepted and do nothing.
//
//   - Every ingest call needs Authorization: Bearer <Data Cloud token>. A missing, unknown
//     or expired token, or a core Salesforce token, is 401 (with WWW-Authenticate: Bearer).
//     An unknown connector or object is 404, another method 405 (Allow: POST, DELETE).
//
//   - Tenant errors are the Spring Boot style object the docs show:
//     {"timestamp","error":"Bad Request","message","path":"uri=/api/v1/…","tenantId",
//     "internalErrorCode":"COMMON_ERROR_GENERIC"}, and for a schema mismatch
//     "details":{"validationReport":[{"recordIndex":1,"record":"{…}","causingExceptions":
//     ["#/points: expected type: Number, found: String"]}]}, with the message
//     "Bad Request: JSON is properly formatted but has a mismatch with Schema. Record 1: …".
//
//   - Faults, from Go ([Server.AddFault]) or over HTTP: 429 with Retry-After: 1, 500, and
//     latency, on "ingest.upsert" and "ingest.delete" by default, and on "core.token" and
//     "a360.token" when named (those answer in the OAuth error shape).
//
//   - Inspection under /__emulator/ (no token; not part of Salesforce):
//
//     GET    /__emulator/objects                   names, primary keys, record and pending counts
//     GET    /__emulator/objects/{object}/records  the processed records (see [Server.Records])
//     GET    /__emulator/calls                     calls answered, by operation
//     GET    /__emulator/faults                    active faults
//     POST   /__emulator/faults                    {"kind":"http_429","count":2,"latency":"250ms","operations":["ingest.upsert"]}
//     DELETE /__emulator/faults[/{id}]             clear every fault, or one
//     POST   /__emulator/tokens/expire             expire every issued token
//     POST   /__emulator/flush                     process every accepted request now
//
// # Not emulated
//
// Bulk ingestion jobs (/api/v1/ingest/jobs…), synchronous record validation (the
// development-only POST …/{objectName}/actions/test answers 404), the Query API and every
// other Data Cloud API (profile, metadata, data graphs, calculated insights), data spaces
// (the exchange's dataspace parameter is ignored), problem records and the Record Modified
// Field rule of deletes, other OAuth grants (password, refresh token, web server), refresh
// tokens, and real rate limiting (only injected faults throttle). There is one connector
// (Config.SourceName) and no data streams or mappings: records are kept as ingested.
//
// # Details the reference marks UNVERIFIED, and the choices made
//
//   - Exchange answer: instance_url is the emulator's URL with its http:// scheme; the real
//     one is the tenant's host alone ("{tenant}.c360a.salesforce.com"), so clients should
//     add "https://" only when the value has no scheme. issued_token_type is the
//     reference's urn:ietf:params:oauth:token-type:jwt and expires_in 7199 (Salesforce's
//     own sample shows 7130). Exchange errors are not documented: 401
//     {"error":"invalid_subject_token"} for a bad subject token (the one error name public
//     reports show), 400 invalid_request for a missing subject_token or another
//     subject_token_type, 400 unsupported_grant_type for another grant. A core token may
//     be exchanged many times (Salesforce reports a once-only limit for password-grant
//     tokens only, which the emulator does not issue).
//   - Token lifetimes: core tokens live Config.TokenTTL too (a core session times out
//     after 2 hours by default, about the same).
//   - Insert errors: the docs show the error body only for the /actions/test validation
//     path; the streaming insert itself is fire-and-forget and real schema problems may
//     surface only later as problem records. The emulator validates on receipt instead and
//     answers with that documented body. recordIndex is the emulator's addition; the
//     causingExceptions texts follow the JSON Schema validator messages the docs show
//     ("#/id: expected type: Number, found: String", "#: required key [x] not found",
//     "#: extraneous key [x] is not permitted"); messages for dates and empty primary keys
//     are the emulator's. The other tenant errors (401, 404, 405, 413, 415, 429, 500) use
//     the same shape, which is not documented for them.
//   - The docs say every field of the schema must be present in each record (blank when
//     there is no data); the emulator does not require that, it stores what is sent.
//   - Body limit: "less than 200 KB" is taken as fewer than 204,800 bytes; a larger body is
//     413 Payload Too Large (the status is not documented).
//   - A body sent without Content-Type: application/json is 415 (the docs always send it).
//   - Delete: both ?ids= and a body may be given, and their ids are joined; more than 200
//     ids, none, or a malformed body are 400.
//   - 429 and 500 bodies and the Retry-After value are not documented: the tenant error
//     shape (OAuth errors rate_limit_exceeded and server_error on the token endpoints) and
//     Retry-After: 1.
package emulator

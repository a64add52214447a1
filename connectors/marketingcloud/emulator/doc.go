// Package emulator is a local Marketing Cloud (SFMC, "Marketing Cloud Engagement")
// account: an HTTP server that speaks the real REST wire format (paths, JSON bodies,
// status codes, error objects, Retry-After) over in-memory data extensions, so that any
// HTTP client written against the Marketing Cloud docs works against it unchanged.
//
// It is built from the public API reference (shared/reference/salesforce-apis.md, section
// 4) and from what public integrations report of real answers, never shaped to fit
// loyaltyhub's own connector. One server plays both hosts: the auth host and the REST
// host (the token's rest_instance_url is the emulator's own URL).
//
// # What it serves
//
//   - POST /v2/token: the server-to-server client-credentials grant, with a JSON body (as
//     documented) or a form body. The answer carries access_token, token_type "Bearer",
//     expires_in (Config.TokenTTL, default 1079 s), scope, rest_instance_url and
//     soap_instance_url. Errors are OAuth objects {"error","error_description","error_uri"}:
//     401 invalid_client for bad credentials, 400 unsupported_grant_type, 401
//     unauthorized_client for an account_id other than Config.AccountID. A "scope" given
//     in the request limits the token: writes need data_extensions_write, reads
//     data_extensions_read (403, errorcode 20002, otherwise).
//
//   - Every REST call needs Authorization: Bearer <token>; a missing, unknown or expired
//     token is answered 401 {"message":"Not Authorized","errorcode":0,"documentation":…}.
//
//   - POST /hub/v1/dataevents/key:{key}/rowset and /hub/v1/dataevents/{id}/rowset: upsert
//     rows [{"keys":{…},"values":{…}}] by primary key, all or nothing. Any invalid row fails
//     the call with 400 {"message":"Unable to save rows for data extension ID …",
//     "errorcode":10006,"additionalErrors":[…]}, one entry per problem, each message starting
//     "Row N: " (0-based) and then the column, as in "Row 3: Joined: The value for column
//     [Joined] is not a valid Boolean.". Checked: primary key columns present in keys and
//     only there, unknown columns, Number (Int32), Decimal, Boolean (true/false, "true",
//     "False", 1, 0, "1", "0"), Date (ISO 8601 date or date-time, M/D/YYYY [h:mm[:ss] AM]),
//     EmailAddress, Phone, text length, required columns (null never; missing only when
//     the row is new), and at least one column in values.
//
//   - PUT /hub/v1/dataevents/key:{key}/rows/{PKName}:{PKValue} (or /{id}/rows/…) with
//     {"values":{…}}: one row of a data extension with a single-column primary key.
//
//   - PUT (upsert) and POST (insert) /data/v1/async/dataextensions/key:{key}/rows (or
//     /{id}/rows) with {"items":[{…}]}: 202 {"requestId","resultMessages":[]}; the request
//     is processed in the background (status "Pending" until then). Valid items are applied,
//     invalid ones reported; inserting an existing primary key is a per-item error. At most
//     32,000 items (400 above). GET /data/v1/async/{requestId}/status and
//     /data/v1/async/{requestId}/results[?page=&pageSize=] report the outcome.
//
//   - Values are JSON strings, numbers, booleans or null, stored as text: Boolean as
//     "True"/"False", Number as decimal integer text, Decimal, Date and Text as given; null
//     (and "") clears a column. Column names, keys and primary key text values compare
//     case-insensitively, as on SQL Server, which runs data extensions.
//
//   - Limits and errors: 5 MB bodies on /hub (documented), 8 MB on the async API, 413
//     above; 415 for a non-JSON Content-Type; 404 with an error object for unknown paths;
//     405 with Allow for a wrong method.
//
//   - Faults, from Go ([Server.AddFault]) or over HTTP: 429 with Retry-After: 1 and
//     {"message":"Rate limit exceeded","errorcode":50100,"retryAfter":1,…}, 500, and latency.
//
//   - Inspection under /__emulator/ (no token; not part of Marketing Cloud):
//
//     GET    /__emulator/dataextensions             keys, names, ids and row counts
//     GET    /__emulator/dataextensions/{key}/rows  the stored rows (see [Server.Rows])
//     GET    /__emulator/calls                      calls answered, by operation
//     GET    /__emulator/faults                     active faults
//     POST   /__emulator/faults                     {"kind":"http_429","count":2,"latency":"250ms","operations":["rowset.upsert"]}
//     DELETE /__emulator/faults[/{id}]              clear every fault, or one
//     POST   /__emulator/tokens/expire              expire every issued token
//
// # Not emulated
//
// The SOAP API (soap_instance_url answers 404), contact deletion
// (/contacts/v1/contacts/actions/delete), Journey Builder entry events
// (/interaction/v1/events), the increment-column call, data extension metadata
// (/data/v1/customobjects), reading rows (GET /data/v1/customobjectdata), the
// authorization-code grant, refresh tokens, and real rate limiting (only injected faults
// throttle).
//
// # Details the reference marks UNVERIFIED, and the choices made
//
//   - Token: soap_instance_url and the trailing "/" of the instance URLs are sent as the
//     reference shows them. The token error bodies are RFC 6749 objects; the description of
//     unsupported_grant_type is the real one. The status of a refused account_id is not
//     documented: 401 unauthorized_client.
//   - Rowset success: the reference only says the rows are echoed; the emulator answers 200
//     with the request's shape, each row's keys and the columns it wrote, values as stored.
//     The single-row PUT answers that one object.
//   - Rowset errors: errorcode 10006 with additionalErrors of errorcode 10000 and an empty
//     documentation, as real answers show; the length and email messages are quoted from
//     real answers, the others follow their pattern, and the "Row N: " prefix is the
//     emulator's (real messages do not say which row failed). An unknown data extension is
//     400 errorcode 10000 (not documented), a body that is not an array 400 errorcode 10004.
//     Segment's SFMC connector notes that real rowset calls may save the rows before the
//     first bad one; the emulator saves none, so clients must not rely on either.
//   - Async: resultMessages in the 202 answer is sent (empty). resultStatus is "OK", or
//     "Has Errors" when an item failed (the value Segment's connector relies on in
//     production); requestStatus is "Pending" then "Complete". /results lists every item
//     in order, {"message":"Upserted DataExtensionObject","status":"OK"} for applied ones,
//     and count is the number of items, as the docs describe ("the total number of data
//     rows added or modified") and as Segment's connector reads it. Item errorCode is a
//     string (the docs' type): "UnexpectedError" for a duplicate key, "ValidationError"
//     otherwise, with an errors list {errorMessage, name, errorCode}. An unknown data
//     extension is 400 with resultMessages (resultCode CustomObjectNotFound), a path id that
//     is not a GUID 400 "Parameter {id} is invalid." (errorcode 10001), an unknown
//     requestId 200 without a status object: all three as Segment's connector reports.
//   - The async body limit (about 5.9 MB is cited) is 8 MB here. 500 bodies are not
//     documented: {"message":"Internal Server Error","errorcode":0,…}.
//   - Unknown paths answer 404 with errorcode 404, wrong methods 405 with errorcode 405.
package emulator

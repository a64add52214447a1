package salesforce

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Failure is one error Salesforce (or the network) reported, the input of
// Classify. A per-record error of a collection response has HTTPStatus 0; a
// whole-request error has the response's status; a transport failure has Err.
type Failure struct {
	// HTTPStatus of the response that carried the error; 0 for a per-record
	// error or when no response came.
	HTTPStatus int
	// Code is Salesforce's errorCode (statusCode in per-record errors).
	Code string
	// Message is Salesforce's message.
	Message string
	// Err is the transport error (network, timeout) when no response came.
	Err error
	// Login is true for failures of the OAuth token request.
	Login bool
}

var retryableCodes = map[string]bool{
	"UNABLE_TO_LOCK_ROW":                true,
	"REQUEST_LIMIT_EXCEEDED":            true,
	"SERVER_UNAVAILABLE":                true,
	"ALL_OR_NONE_OPERATION_ROLLED_BACK": true,
	"QUERY_TIMEOUT":                     true,
}

var permanentCodes = map[string]bool{
	"INVALID_FIELD":                           true,
	"INVALID_FIELD_FOR_INSERT_UPDATE":         true,
	"DUPLICATE_VALUE":                         true,
	"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": true,
	"REQUIRED_FIELD_MISSING":                  true,
	"STRING_TOO_LONG":                         true,
	"JSON_PARSER_ERROR":                       true,
	"MALFORMED_ID":                            true,
	"INVALID_CROSS_REFERENCE_KEY":             true,
	"FIELD_CUSTOM_VALIDATION_EXCEPTION":       true,
	"ENTITY_IS_DELETED":                       true,
	"INVALID_TYPE":                            true,
	"NOT_FOUND":                               true,
}

// Classify says what to do about a failure: Transient (retry later),
// Permanent (dead-letter) or Auth (fix the credentials). It is pure.
//
//   - Network errors and timeouts, HTTP 408, 429 and 5xx, and the codes
//     UNABLE_TO_LOCK_ROW, REQUEST_LIMIT_EXCEEDED, SERVER_UNAVAILABLE,
//     ALL_OR_NONE_OPERATION_ROLLED_BACK and QUERY_TIMEOUT are Transient.
//   - HTTP 401 and INVALID_SESSION_ID are Auth, as is any answer to a token
//     request (Login) that is neither a token, a 429 nor a 5xx.
//   - Validation codes (INVALID_FIELD, DUPLICATE_VALUE, bad picklist values,
//     REQUIRED_FIELD_MISSING, NOT_FOUND, ...) are Permanent.
//   - Unknown codes are Permanent with a 4xx or no status (a per-record
//     error), Transient with a 5xx.
func Classify(f Failure) connectors.Kind {
	if f.HTTPStatus == 0 && f.Err != nil {
		return connectors.Transient
	}
	code := strings.ToUpper(strings.TrimSpace(f.Code))
	switch {
	case f.Login && (f.HTTPStatus == http.StatusTooManyRequests || f.HTTPStatus >= 500):
		return connectors.Transient
	case f.Login:
		// The token endpoint refused, or answered without a token.
		return connectors.Auth
	case f.HTTPStatus == http.StatusUnauthorized, code == "INVALID_SESSION_ID":
		return connectors.Auth
	case retryableCodes[code]:
		return connectors.Transient
	case code == "" && strings.Contains(strings.ToLower(f.Message), "bad value for restricted picklist"):
		return connectors.Permanent
	case permanentCodes[code]:
		return connectors.Permanent
	case f.HTTPStatus == http.StatusRequestTimeout, f.HTTPStatus == http.StatusTooManyRequests, f.HTTPStatus >= 500:
		return connectors.Transient
	}
	return connectors.Permanent
}

// statusOf turns a Kind into the per-record Status.
func statusOf(k connectors.Kind) connectors.Status {
	if k == connectors.Permanent {
		return connectors.StatusPermanent
	}
	return connectors.StatusRetryable
}

// APIError is a whole-request failure: a non-2xx answer of the REST API, or
// no answer at all (Err). It is wrapped in a *connectors.Error carrying its Kind.
type APIError struct {
	// Method and Path name the call ("PATCH /composite/sobjects/Contact/Ext__c").
	Method, Path string
	// HTTPStatus is 0 when no response came (see Err).
	HTTPStatus int
	// Code, Message and Fields are the first error of the response body.
	Code    string
	Message string
	Fields  []string
	// RetryAfter is the response's Retry-After header, if any.
	RetryAfter time.Duration
	// Err is the transport error when no response came.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	if e.HTTPStatus == 0 {
		fmt.Fprintf(&b, "no response: %v", e.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	if e.Code != "" || e.Message != "" {
		b.WriteString(": ")
		b.WriteString(describeError(e.Code, e.Message, e.Fields))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

func (e *APIError) failure() Failure {
	return Failure{HTTPStatus: e.HTTPStatus, Code: e.Code, Message: e.Message, Err: e.Err}
}

// describeError renders one Salesforce error as "CODE: message [fields: A, B]".
func describeError(code, message string, fields []string) string {
	var b strings.Builder
	b.WriteString(code)
	if message != "" {
		if code != "" {
			b.WriteString(": ")
		}
		b.WriteString(message)
	}
	if len(fields) > 0 {
		fmt.Fprintf(&b, " [fields: %s]", strings.Join(fields, ", "))
	}
	return b.String()
}

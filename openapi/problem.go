package openapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// ProblemContentType is the media type of every error body (RFC 9457).
const ProblemContentType = "application/problem+json"

// maxFieldErrors caps the faults listed in one problem; the rest are counted
// in Problem.ErrorsOmitted.
const maxFieldErrors = 1000

// Problem types: "urn:loyaltyhub:problem:<slug>".
const (
	problemInvalidJSON    = "urn:loyaltyhub:problem:invalid-json"
	problemInvalidRequest = "urn:loyaltyhub:problem:invalid-request"
	problemInvalidEvents  = "urn:loyaltyhub:problem:invalid-events"
	problemUnauthorized   = "urn:loyaltyhub:problem:bad-signature"
	problemUnknownSource  = "urn:loyaltyhub:problem:unknown-source"
	problemNotFound       = "urn:loyaltyhub:problem:not-found"
	problemMethod         = "urn:loyaltyhub:problem:method-not-allowed"
	problemTooLarge       = "urn:loyaltyhub:problem:too-large"
	problemTooManyEvents  = "urn:loyaltyhub:problem:too-many-events"
	problemMediaType      = "urn:loyaltyhub:problem:unsupported-media-type"
	problemNotAccepting   = "urn:loyaltyhub:problem:not-accepting"
	problemNotReady       = "urn:loyaltyhub:problem:not-ready"
	problemPublishFailed  = "urn:loyaltyhub:problem:publish-failed"
	problemInternal       = "urn:loyaltyhub:problem:internal"
	problemTooBusy        = "urn:loyaltyhub:problem:too-busy"
	problemReplayConflict = "urn:loyaltyhub:problem:delivery-conflict"
)

// Problem is an RFC 9457 problem detail, the body of every 4xx and 5xx
// answer (content type ProblemContentType).
type Problem struct {
	// Type is a URI naming the kind of problem ("urn:loyaltyhub:problem:...").
	Type string `json:"type"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's id (X-Request-Id).
	Instance string `json:"instance,omitempty"`
	// Errors lists every fault found, in request order.
	Errors []FieldError `json:"errors,omitempty"`
	// ErrorsOmitted counts faults found but left out of Errors (at most 1000 are listed).
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
	// Limit is the limit that was exceeded: bytes for a body, events for a batch.
	Limit int64 `json:"limit,omitempty"`
	// Offset is the byte offset in the body where JSON parsing failed.
	Offset *int64 `json:"offset,omitempty"`
}

// FieldError is one fault of a rejected request.
type FieldError struct {
	// Event is the index of the event in the request (0 outside batches);
	// nil when the fault is not in an event (a header, the path, the body as a whole).
	Event *int `json:"event"`
	// ID is that event's id when it has one.
	ID *string `json:"id"`
	// Field is where the fault is: a dotted path into the event
	// ("data.version", "data.added[2]"), a header name ("ce-subject",
	// "Content-Type", "X-Hub-Signature-256"), "source" (the path parameter)
	// or "body".
	Field string `json:"field"`
	// Rule says what would be valid ("must be an integer").
	Rule string `json:"rule"`
}

// requestFault is a FieldError outside any event.
func requestFault(field, rule string) FieldError {
	return FieldError{Field: field, Rule: rule}
}

func (p *Problem) addErrors(errs []FieldError) {
	if len(errs) > maxFieldErrors {
		p.ErrorsOmitted = len(errs) - maxFieldErrors
		errs = errs[:maxFieldErrors]
	}
	p.Errors = errs
}

// writeProblem sends p with its status.
func writeProblem(w http.ResponseWriter, p *Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Instance == "" {
		p.Instance = w.Header().Get(headerRequestID)
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem holds only plain values
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// validationFault is one leaf of a kin-openapi validation error, before it is
// placed in an event.
type validationFault struct {
	// param is the parameter at fault (path or header), nil for the body.
	param *openapi3.Parameter
	// path is the JSON pointer into the body or parameter value.
	path []string
	rule string
}

// flattenValidation turns the error of openapi3filter.ValidateRequest
// (RequestErrors holding SchemaErrors, possibly in MultiErrors and inside
// oneOf/allOf origins) into one fault per leaf, each with its path and a
// one-line rule.
func flattenValidation(err error) []validationFault {
	var out []validationFault
	var walk func(err error, param *openapi3.Parameter)
	walk = func(err error, param *openapi3.Parameter) {
		switch e := err.(type) {
		case nil:
		case openapi3.MultiError:
			for _, sub := range e {
				walk(sub, param)
			}
		case *openapi3filter.RequestError:
			if e.Parameter != nil {
				param = e.Parameter
			}
			switch {
			case e.Err == nil:
				out = append(out, validationFault{param: param, rule: e.Reason})
			case errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
				out = append(out, validationFault{param: param, rule: "is required"})
			case errors.Is(e.Err, openapi3filter.ErrInvalidEmptyValue):
				out = append(out, validationFault{param: param, rule: "must not be empty"})
			default:
				var se *openapi3.SchemaError
				var me openapi3.MultiError
				if errors.As(e.Err, &me) || errors.As(e.Err, &se) {
					walk(e.Err, param)
					return
				}
				rule := e.Err.Error()
				if e.Reason != "" {
					rule = e.Reason + ": " + rule
				}
				out = append(out, validationFault{param: param, rule: rule})
			}
		case *openapi3.SchemaError:
			if nested := nestedErrors(e); nested != nil {
				walk(nested, param)
				return
			}
			path, rule := schemaRule(e)
			out = append(out, validationFault{param: param, path: path, rule: rule})
		default:
			var re *openapi3filter.RequestError
			var se *openapi3.SchemaError
			switch {
			case errors.As(err, &re):
				walk(re, param)
			case errors.As(err, &se):
				walk(se, param)
			default:
				out = append(out, validationFault{param: param, rule: err.Error()})
			}
		}
	}
	walk(err, nil)
	return out
}

// nestedErrors returns the errors of the subschemas a oneOf/anyOf/allOf
// error wraps, nil for any other error.
func nestedErrors(e *openapi3.SchemaError) error {
	switch e.SchemaField {
	case "oneOf", "allOf":
	default:
		return nil
	}
	for err := e.Origin; err != nil; err = errors.Unwrap(err) {
		if me, ok := err.(openapi3.MultiError); ok {
			return me
		}
	}
	return nil
}

// schemaRule gives the JSON pointer of e's value and what would be valid,
// in words, from the schema keyword that failed.
func schemaRule(e *openapi3.SchemaError) ([]string, string) {
	path := e.JSONPointer()
	s := e.Schema
	if s == nil {
		return path, e.Reason
	}
	switch e.SchemaField {
	case "required":
		return path, "is required"
	case "type":
		if strings.HasPrefix(e.Reason, "value must be ") {
			return path, strings.TrimPrefix(e.Reason, "value ")
		}
		return path, typeRule(s)
	case "nullable":
		return path, "must not be null"
	case "enum":
		return path, "must be one of " + quoteList(s.Enum)
	case "format":
		switch s.Format {
		case "date-time":
			return path, "must be an RFC 3339 date-time such as 2026-03-01T10:00:00Z"
		case "int64":
			return path, "must fit a signed 64-bit integer"
		}
		return path, fmt.Sprintf("must be in the %q format", s.Format)
	case "minimum":
		if s.Min != nil {
			return path, "must be at least " + strconv.FormatFloat(*s.Min, 'f', -1, 64)
		}
	case "maximum":
		if s.Max != nil {
			return path, "must be at most " + strconv.FormatFloat(*s.Max, 'f', -1, 64)
		}
	case "minLength":
		if s.MinLength == 1 {
			return path, "must not be empty"
		}
		return path, fmt.Sprintf("must be at least %d characters long", s.MinLength)
	case "maxLength":
		if s.MaxLength != nil {
			return path, fmt.Sprintf("must be at most %d characters long", *s.MaxLength)
		}
	case "minItems":
		return path, fmt.Sprintf("must hold at least %d item(s)", s.MinItems)
	case "maxItems":
		if s.MaxItems != nil {
			return path, fmt.Sprintf("must hold at most %d item(s)", *s.MaxItems)
		}
	case "pattern":
		return path, fmt.Sprintf("must match the regular expression %s", s.Pattern)
	case "discriminator":
		if d := s.Discriminator; d != nil {
			path = append(path, d.PropertyName)
			switch {
			case strings.Contains(e.Reason, "does not contain"):
				return path, "is required"
			case strings.Contains(e.Reason, "is not a string"):
				return path, "must be a string"
			default:
				keys := make([]any, 0, len(d.Mapping))
				for k := range d.Mapping {
					keys = append(keys, k)
				}
				slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
				return path, "must be one of " + quoteList(keys)
			}
		}
	}
	return path, e.Reason
}

func typeRule(s *openapi3.Schema) string {
	if s.Type == nil || len(*s.Type) == 0 {
		return "has the wrong type"
	}
	t := (*s.Type)[0]
	switch t {
	case openapi3.TypeArray, openapi3.TypeObject, openapi3.TypeInteger:
		return "must be an " + t
	}
	return "must be a " + t
}

func quoteList(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = strconv.Quote(fmt.Sprint(v))
	}
	return strings.Join(parts, ", ")
}

// fieldPath renders a JSON pointer as a dotted path with [n] for array
// indices: ["data","added","2"] → "data.added[2]".
func fieldPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil && b.Len() > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

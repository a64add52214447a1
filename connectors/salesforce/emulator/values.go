package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// sfError is one Salesforce error: top-level it is written with "errorCode", inside a
// per-record result with "statusCode".
type sfError struct {
	Code    string
	Message string
	Fields  []string
}

func newErr(code, format string, args ...any) *sfError {
	return &sfError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *sfError) withFields(f ...string) *sfError { e.Fields = f; return e }

// topLevel is the element of a top-level error array.
func (e *sfError) topLevel() map[string]any {
	m := map[string]any{"message": e.Message, "errorCode": e.Code}
	if len(e.Fields) > 0 {
		m["fields"] = e.Fields
	}
	return m
}

// perRecord is the element of a SaveResult's errors list.
func (e *sfError) perRecord() map[string]any {
	fields := e.Fields
	if fields == nil {
		fields = []string{}
	}
	return map[string]any{"statusCode": e.Code, "message": e.Message, "fields": fields}
}

const (
	dateLayout     = "2006-01-02"
	datetimeLayout = "2006-01-02T15:04:05.000-0700"
)

var datetimeInputs = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
	time.RFC3339,
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.000",
	"2006-01-02T15:04:05.999999999",
}

// parseDatetime accepts the ISO 8601 forms Salesforce accepts (and a bare date, as midnight UTC).
func parseDatetime(s string) (time.Time, bool) {
	for _, l := range datetimeInputs {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	if t, err := time.Parse(dateLayout, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

func formatDatetime(t time.Time) string { return t.UTC().Format(datetimeLayout) }

// jsonKind names a decoded JSON value the way Salesforce's parser does in its errors.
func jsonKind(v any) string {
	switch x := v.(type) {
	case string:
		return "VALUE_STRING"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "VALUE_NUMBER_FLOAT"
		}
		return "VALUE_NUMBER_INT"
	case float64, float32:
		return "VALUE_NUMBER_FLOAT"
	case int, int64, int32, uint64:
		return "VALUE_NUMBER_INT"
	case bool:
		if x {
			return "VALUE_TRUE"
		}
		return "VALUE_FALSE"
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	}
	return "VALUE_EMBEDDED_OBJECT"
}

func parserError(javaType string, v any) *sfError {
	return newErr("JSON_PARSER_ERROR", "Cannot deserialize instance of %s from %s value %v or request may be missing a required field",
		javaType, jsonKind(v), v)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

// coerce converts a decoded JSON value to the stored form of the field: strings for text,
// dates ("2006-01-02") and datetimes ("2006-01-02T15:04:05.000+0000"), float64 for
// numbers, bool for checkboxes. A value of the wrong JSON type is a JSON_PARSER_ERROR,
// which fails the whole request as on a real org.
func (f *fieldDef) coerce(v any) (any, *sfError) {
	if v == nil {
		return nil, nil
	}
	switch {
	case f.Type.isText():
		switch x := v.(type) {
		case string:
			return x, nil
		case json.Number:
			return string(x), nil
		case bool:
			return strconv.FormatBool(x), nil
		case float64, int, int64:
			return fmt.Sprint(x), nil
		}
		return nil, parserError("string", v)
	case f.Type == tBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.ToLower(x)); err == nil && (strings.EqualFold(x, "true") || strings.EqualFold(x, "false")) {
				return b, nil
			}
		}
		return nil, parserError("boolean", v)
	case f.Type.isNumber():
		javaType := "double"
		if f.Type == tInt {
			javaType = "int"
		}
		if _, isBool := v.(bool); isBool {
			return nil, parserError(javaType, v)
		}
		n, ok := toFloat(v)
		if !ok {
			return nil, parserError(javaType, v)
		}
		return n, nil
	case f.Type == tDate:
		s, ok := v.(string)
		if !ok {
			return nil, parserError("date", v)
		}
		if t, err := time.Parse(dateLayout, s); err == nil {
			return t.Format(dateLayout), nil
		}
		if t, ok := parseDatetime(s); ok {
			return t.Format(dateLayout), nil
		}
		return nil, parserError("date", v)
	case f.Type == tDatetime:
		s, ok := v.(string)
		if !ok {
			return nil, parserError("datetime", v)
		}
		t, ok := parseDatetime(s)
		if !ok {
			return nil, parserError("datetime", v)
		}
		return formatDatetime(t), nil
	}
	return nil, parserError(string(f.Type), v)
}

// normalize validates a coerced value against the field's constraints that need no other
// record (length, picklist values, email form, numeric range) and returns the value as
// stored: numbers rounded to the field's scale, empty text as nil.
func (f *fieldDef) normalize(v any) (any, *sfError) {
	if v == nil {
		return nil, nil
	}
	switch f.Type {
	case tString, tTextarea, tPhone, tURL, tEmail, tPicklist, tMultipicklist:
		s := v.(string)
		if f.Length > 0 && utf8.RuneCountInString(s) > f.Length {
			return nil, newErr("STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)", f.Label, truncate(s, 80), f.Length).withFields(f.Name)
		}
		if f.Type == tEmail && s != "" {
			if a, err := mail.ParseAddress(s); err != nil || a.Address != s || !strings.Contains(s[strings.LastIndex(s, "@"):], ".") {
				return nil, newErr("INVALID_EMAIL_ADDRESS", "%s: invalid email address: %s", f.Label, s).withFields(f.Name)
			}
		}
		if f.Restricted && f.Type == tPicklist && s != "" && !f.hasPicklistValue(s) {
			return nil, newErr("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "%s: bad value for restricted picklist field: %s", f.Label, s).withFields(f.Name)
		}
		if f.Restricted && f.Type == tMultipicklist {
			for _, part := range strings.Split(s, ";") {
				if part != "" && !f.hasPicklistValue(part) {
					return nil, newErr("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "%s: bad value for restricted picklist field: %s", f.Label, part).withFields(f.Name)
				}
			}
		}
		if s == "" {
			return nil, nil // Salesforce stores an empty string as null
		}
		return s, nil
	case tInt, tDouble, tCurrency, tPercent:
		n := v.(float64)
		scale := f.Scale
		digits := f.Precision - f.Scale
		if f.Type == tInt {
			scale, digits = 0, f.Digits
		}
		p := math.Pow(10, float64(scale))
		n = math.Round(n*p) / p
		if math.Abs(n) >= math.Pow(10, float64(digits)) {
			return nil, newErr("NUMBER_OUTSIDE_VALID_RANGE", "%s: value outside of valid range on numeric field: %v", f.Label, v).withFields(f.Name)
		}
		return n, nil
	}
	return v, nil
}

func (f *fieldDef) hasPicklistValue(s string) bool {
	for _, p := range f.Picklist {
		if p.Active && p.Value == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

// foldKey is the form of a text value under which values Salesforce takes as
// one are identical: external ids, unique fields and SOQL's = and IN ignore
// case. It is the hub's own fold (connectors.KeysCaseInsensitive.Fold): two
// values are one exactly when strings.EqualFold says so (for valid UTF-8),
// so the hub's version guard and the emulator agree on what one key is.
func foldKey(s string) string { return connectors.KeysCaseInsensitive.Fold(s) }

// indexKey is the normalized form of a value in the unique/external-id index.
func (f *fieldDef) indexKey(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if f.Type == tID || f.Type == tReference {
			if id, ok := normalizeID(x); ok {
				return id
			}
		}
		if f.CaseSensitive {
			return x
		}
		return foldKey(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// accepted is the documented answer of an accepted streaming insert or delete: 202
// {"accepted":true}; the request is processed later.
func accepted() *reply { return jsonReply(http.StatusAccepted, map[string]bool{"accepted": true}) }

// reportEntry is one record of details.validationReport: the documented "record" (the
// record as JSON text) and "causingExceptions" (one JSON Schema message per problem, with
// a JSON pointer into the record, as in "#/points: expected type: Number, found: String").
// recordIndex, the record's 0-based index in the data array, is the emulator's addition:
// the documented report does not say which record failed other than by its text.
type reportEntry struct {
	RecordIndex       int      `json:"recordIndex"`
	Record            string   `json:"record"`
	CausingExceptions []string `json:"causingExceptions"`
}

// schemaMismatch is the documented start of the message of a payload that fails validation.
const schemaMismatch = "Bad Request: JSON is properly formatted but has a mismatch with Schema."

// decodeJSON decodes a request body keeping numbers exact (json.Number).
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// handleUpsert is POST /api/v1/ingest/sources/{connector}/{object} with {"data":[{…}]}:
// the records are validated against the object's schema now, all or nothing, and applied
// (upserted by primary key) once processed.
func (s *Server) handleUpsert(r *http.Request, o *object) *reply {
	body, rp := readBody(r)
	if rp != nil {
		return rp
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return apiError(r, http.StatusBadRequest, `Bad Request: the request body is empty; send {"data":[{…}]} with the records to ingest`)
	}
	v, err := decodeJSON(body)
	if err != nil {
		return apiError(r, http.StatusBadRequest, "Bad Request: JSON is not properly formatted: "+err.Error())
	}
	env, _ := v.(map[string]any)
	data, ok := env["data"].([]any)
	switch {
	case env == nil:
		return apiError(r, http.StatusBadRequest, schemaMismatch+` The payload must be a JSON object {"data":[…]}, found: `+jsonTypeName(v)+".")
	case !ok:
		return apiError(r, http.StatusBadRequest, schemaMismatch+` The payload must have a "data" array of records, found: `+jsonTypeName(env["data"])+".")
	case len(data) == 0:
		return apiError(r, http.StatusBadRequest, schemaMismatch+` The "data" array is empty: send at least one record.`)
	}
	var report []reportEntry
	problems := 0
	recs := make([]map[string]any, len(data))
	for i, elem := range data {
		rec, errs := o.validate(elem)
		if len(errs) > 0 {
			text, _ := json.Marshal(elem)
			report = append(report, reportEntry{RecordIndex: i, Record: string(text), CausingExceptions: errs})
			problems += len(errs)
			continue
		}
		recs[i] = rec
	}
	if len(report) > 0 {
		first := report[0]
		msg := fmt.Sprintf("%s Record %d: %s", schemaMismatch, first.RecordIndex, first.CausingExceptions[0])
		if problems > 1 {
			msg += fmt.Sprintf(" (and %d more problems in %d records; see details.validationReport)", problems-1, len(report))
		}
		rp := apiError(r, http.StatusBadRequest, msg)
		rp.body.(*apiErrorBody).Details = &errDetails{ValidationReport: report}
		return rp
	}
	s.enqueue(&batch{obj: o, upserts: recs})
	return accepted()
}

var (
	dateRe     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	dateTimeRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$`)
)

// validate checks one record against the schema and returns it with numbers as float64,
// or its problems as JSON Schema messages. Checked: the record is an object; the primary
// key is present, of its type and not null or ""; every field is declared; every value has
// its field's JSON type, dates are yyyy-MM-dd and date-times yyyy-MM-ddTHH:mm:ss.SSSZ (the
// milliseconds optional, UTC "Z" required). null and "" are accepted as "no value" for the
// other fields, as the docs ask for fields without data. Objects and arrays never are values.
func (o *object) validate(elem any) (map[string]any, []string) {
	rec, ok := elem.(map[string]any)
	if !ok {
		return nil, []string{"#: expected type: JSONObject, found: " + jsonTypeName(elem)}
	}
	var errs []string
	if _, ok := rec[o.pk.Name]; !ok {
		errs = append(errs, "#: required key ["+o.pk.Name+"] not found")
	}
	out := make(map[string]any, len(rec))
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		f, known := o.fields[name]
		if !known {
			errs = append(errs, "#: extraneous key ["+name+"] is not permitted")
			continue
		}
		v, msg := f.check(rec[name])
		if msg != "" {
			errs = append(errs, "#/"+name+": "+msg)
			continue
		}
		out[name] = v
	}
	return out, errs
}

// check validates one value of the field and returns it as stored (json.Number as float64).
func (f Field) check(v any) (any, string) {
	switch x := v.(type) {
	case nil:
		if f.PrimaryKey {
			return nil, "the primary key must have a value; expected type: " + f.jsonType() + ", found: Null"
		}
		return nil, ""
	case string:
		if x == "" {
			if f.PrimaryKey {
				return nil, "the primary key must have a value, found an empty string"
			}
			return x, "" // a blank value
		}
	}
	want := f.jsonType()
	if got := jsonTypeName(v); got != want {
		return nil, "expected type: " + want + ", found: " + got
	}
	switch f.Type {
	case FieldNumber:
		n, err := v.(json.Number).Float64()
		if err != nil {
			return nil, fmt.Sprintf("[%s] is not a valid number", v)
		}
		return n, ""
	case FieldDate:
		s := v.(string)
		if _, err := time.Parse("2006-01-02", s); err != nil || !dateRe.MatchString(s) {
			return nil, fmt.Sprintf("[%s] is not a valid date; expected format yyyy-MM-dd, e.g. 2025-01-02", s)
		}
	case FieldDateTime:
		s := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !dateTimeRe.MatchString(s) {
			return nil, fmt.Sprintf("[%s] is not a valid date-time; expected format yyyy-MM-ddTHH:mm:ss.SSSZ in UTC, e.g. 2025-01-02T10:00:00.000Z", s)
		}
	}
	return v, ""
}

// jsonType is the JSON Schema type name of the field's values.
func (f Field) jsonType() string {
	switch f.Type {
	case FieldNumber:
		return "Number"
	case FieldBoolean:
		return "Boolean"
	}
	return "String"
}

// jsonTypeName names the JSON type of a decoded value as JSON Schema messages do.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case string:
		return "String"
	case json.Number, float64:
		return "Number"
	case bool:
		return "Boolean"
	case []any:
		return "JSONArray"
	case map[string]any:
		return "JSONObject"
	}
	return fmt.Sprintf("%T", v)
}

// handleDelete is DELETE /api/v1/ingest/sources/{connector}/{object} with the primary keys
// to delete in ?ids=a,b (repeated ids parameters are joined) and/or a body {"ids":[…]}: at
// most 200 in all. Unknown keys are accepted and do nothing.
func (s *Server) handleDelete(r *http.Request, o *object) *reply {
	var ids []string
	for _, v := range r.URL.Query()["ids"] {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	body, rp := readBody(r)
	if rp != nil {
		return rp
	}
	if len(bytes.TrimSpace(body)) > 0 {
		v, err := decodeJSON(body)
		if err != nil {
			return apiError(r, http.StatusBadRequest, "Bad Request: JSON is not properly formatted: "+err.Error())
		}
		env, _ := v.(map[string]any)
		list, ok := env["ids"].([]any)
		if !ok {
			return apiError(r, http.StatusBadRequest, `Bad Request: the body must be an object {"ids":[…]} with the primary keys to delete`)
		}
		for i, id := range list {
			switch x := id.(type) {
			case string:
				if x == "" {
					return apiError(r, http.StatusBadRequest, fmt.Sprintf("Bad Request: ids[%d] is an empty string; give primary key values", i))
				}
				ids = append(ids, x)
			case json.Number:
				ids = append(ids, x.String())
			default:
				return apiError(r, http.StatusBadRequest, fmt.Sprintf("Bad Request: ids[%d]: expected type: String, found: %s", i, jsonTypeName(id)))
			}
		}
	}
	switch {
	case len(ids) == 0:
		return apiError(r, http.StatusBadRequest, `Bad Request: no ids: give the primary keys of the records to delete as ?ids=a,b or as a body {"ids":["a","b"]}`)
	case len(ids) > maxDeleteIDs:
		return apiError(r, http.StatusBadRequest, fmt.Sprintf("Bad Request: %d ids; at most %d records can be deleted per request (use a bulk ingestion job for more)", len(ids), maxDeleteIDs))
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = o.key(id)
	}
	s.enqueue(&batch{obj: o, deletes: keys})
	return accepted()
}

package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// decodeJSON decodes a request body keeping numbers exact (json.Number).
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// unknownDataExtension answers a sync call naming no data extension of the account.
// UNVERIFIED: the reference does not show this answer; 400 with the generic errorcode
// 10000 was chosen because SFMC answers problems with the request's content as 400 and
// keeps 404 for unknown routes.
func unknownDataExtension(ref string) *reply {
	return errReply(http.StatusBadRequest, 10000, "Unable to find a data extension with %s.", describeRef(ref))
}

// saveFailed is the aggregate answer of a rowset or row call with invalid rows: 400,
// errorcode 10006, one additionalErrors entry per problem. The top-level message, the
// codes and the empty documentation are as in real responses; the "Row N: " prefix is the
// emulator's (the real messages do not say which row failed).
func saveFailed(t *table, probs []rowProblem) *reply {
	extra := make([]mcError, len(probs))
	for i, p := range probs {
		extra[i] = mcError{Message: fmt.Sprintf("Row %d: %s", p.row, p.message), ErrorCode: 10000}
	}
	return jsonReply(http.StatusBadRequest, mcError{
		Message:          "Unable to save rows for data extension ID " + t.id,
		ErrorCode:        10006,
		AdditionalErrors: extra,
	})
}

type rowProblem struct {
	row int
	problem
}

// rowsetChange validates one rowset element {"keys":{…},"values":{…}} and returns the
// change it makes, or its problems.
func (t *table) rowsetChange(elem any) (*change, []problem) {
	obj, ok := elem.(map[string]any)
	if !ok {
		return nil, []problem{{message: `The row is not an object with "keys" and "values".`}}
	}
	ch := t.newChange()
	var probs []problem
	add := func(p *problem) {
		if p != nil {
			probs = append(probs, *p)
		}
	}
	keys, ok := obj["keys"].(map[string]any)
	if !ok && obj["keys"] != nil {
		probs = append(probs, problem{message: `"keys" must be an object of primary key column names and values.`})
	}
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		v := keys[name]
		ci, known := t.column(name)
		switch {
		case !known:
			probs = append(probs, unknownColumn(name))
		case !t.cols[ci].PrimaryKey:
			probs = append(probs, problem{column: t.cols[ci].Name,
				message: fmt.Sprintf("%s: Column [%s] is not a primary key column; send it in \"values\".", t.cols[ci].Name, t.cols[ci].Name)})
		default:
			add(t.put(ch, ci, v))
		}
	}
	for _, ci := range t.pk {
		if _, given := lookupFold(keys, t.cols[ci].Name); !given {
			n := t.cols[ci].Name
			probs = append(probs, problem{column: n, message: fmt.Sprintf("%s: The primary key column [%s] is missing from \"keys\".", n, n)})
		}
	}
	values, ok := obj["values"].(map[string]any)
	if !ok && obj["values"] != nil {
		probs = append(probs, problem{message: `"values" must be an object of column names and values.`})
	}
	known := 0
	for _, name := range slices.Sorted(maps.Keys(values)) {
		v := values[name]
		ci, ok := t.column(name)
		if !ok {
			probs = append(probs, unknownColumn(name))
			continue
		}
		known++
		c := t.cols[ci]
		if !c.PrimaryKey {
			add(t.put(ch, ci, v))
			continue
		}
		// a key column repeated in values must agree with keys
		text, _, p := c.convert(v)
		if p != nil {
			probs = append(probs, *p)
		} else if ch.set[ci] && c.indexKey(text) != c.indexKey(ch.texts[ci]) {
			probs = append(probs, problem{column: c.Name,
				message: fmt.Sprintf("%s: The value of primary key column [%s] in \"values\" differs from the one in \"keys\".", c.Name, c.Name)})
		}
	}
	if known == 0 && len(t.pk) < len(t.cols) {
		// Quoted from real responses (reported by Segment's SFMC connector).
		probs = append(probs, problem{message: "At least one existing field is required in the values property."})
	}
	return ch, probs
}

func unknownColumn(name string) problem {
	return problem{column: name, message: fmt.Sprintf("%s: The column [%s] does not exist in the data extension.", name, name)}
}

func lookupFold(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// echo is a written row as the success answer shows it: the key columns and the columns
// the call wrote, with their stored text.
func (t *table) echo(ch *change) map[string]map[string]string {
	keys, values := map[string]string{}, map[string]string{}
	for ci, c := range t.cols {
		switch {
		case c.PrimaryKey:
			keys[c.Name] = ch.texts[ci]
		case ch.set[ci]:
			values[c.Name] = ch.texts[ci]
		}
	}
	return map[string]map[string]string{"keys": keys, "values": values}
}

// upsertAll validates and applies rowset elements all-or-nothing.
func (s *Server) upsertAll(t *table, elems []any) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	work := overlay{base: t.rows, upd: map[string][]string{}}
	var probs []rowProblem
	changes := make([]*change, len(elems))
	for i, elem := range elems {
		ch, ps := t.rowsetChange(elem)
		if len(ps) == 0 {
			ps = t.apply(work, ch, false)
		}
		for _, p := range ps {
			probs = append(probs, rowProblem{row: i, problem: p})
		}
		changes[i] = ch
	}
	if len(probs) > 0 {
		return saveFailed(t, probs)
	}
	maps.Copy(t.rows, work.upd)
	out := make([]map[string]map[string]string, len(changes))
	for i, ch := range changes {
		out[i] = t.echo(ch)
	}
	// UNVERIFIED: the reference only says the upserted rows are echoed; this is the request's
	// shape with each value as stored (Boolean as True/False, null as "").
	return jsonReply(http.StatusOK, out)
}

// handleRowset is POST /hub/v1/dataevents/key:{key}/rowset (or /{id}/rowset): upsert rows
// by primary key, all or nothing.
func (s *Server) handleRowset(ref string, body []byte) *reply {
	t := s.lookup(ref)
	if t == nil {
		return unknownDataExtension(ref)
	}
	v, err := decodeJSON(body)
	if err != nil {
		return errReply(http.StatusBadRequest, 10004, "Invalid message format: the body is not valid JSON: %v", err)
	}
	elems, ok := v.([]any)
	if !ok {
		return errReply(http.StatusBadRequest, 10004, `Invalid message format: the rowset body must be a JSON array of {"keys":{…},"values":{…}} rows.`)
	}
	if len(elems) == 0 {
		return errReply(http.StatusBadRequest, 10004, "Invalid message format: the rowset is empty.")
	}
	return s.upsertAll(t, elems)
}

// handleRow is PUT /hub/v1/dataevents/key:{key}/rows/{PKName}:{PKValue} with
// {"values":{…}}: upsert one row of a data extension with a single-column primary key.
func (s *Server) handleRow(ref, pkSeg string, body []byte) *reply {
	t := s.lookup(ref)
	if t == nil {
		return unknownDataExtension(ref)
	}
	if len(t.pk) != 1 {
		names := make([]string, len(t.pk))
		for i, ci := range t.pk {
			names[i] = t.cols[ci].Name
		}
		return errReply(http.StatusBadRequest, 10000, "Data extension %s has a composite primary key (%s): upsert its rows with POST /hub/v1/dataevents/key:%s/rowset.",
			t.key, strings.Join(names, ", "), t.key)
	}
	pk := t.cols[t.pk[0]]
	name, value, ok := strings.Cut(pkSeg, ":")
	if !ok || !strings.EqualFold(name, pk.Name) {
		return errReply(http.StatusBadRequest, 10000, "Invalid row path %q: want /rows/%s:{value}, naming the primary key column.", pkSeg, pk.Name)
	}
	v, err := decodeJSON(body)
	if err != nil {
		return errReply(http.StatusBadRequest, 10004, "Invalid message format: the body is not valid JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errReply(http.StatusBadRequest, 10004, `Invalid message format: the body must be an object {"values":{…}}.`)
	}
	rp := s.upsertAll(t, []any{map[string]any{"keys": map[string]any{pk.Name: value}, "values": obj["values"]}})
	if rows, ok := rp.body.([]map[string]map[string]string); ok {
		rp.body = rows[0] // UNVERIFIED: one row object, not an array
	}
	return rp
}

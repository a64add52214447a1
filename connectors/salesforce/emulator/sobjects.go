package emulator

import (
	"net/http"
	"strings"
)

// recordURL is the attributes.url of a record.
func recordURL(base string, o *objectDef, id string) string {
	return base + "/sobjects/" + o.Name + "/" + id
}

// renderRecord writes a record as the REST API returns it: attributes, then the fields
// (all of them in describe order when fields is nil).
func renderRecord(base string, o *objectDef, r *record, fields []*fieldDef) *ordered {
	out := orderedOf("attributes", orderedOf("type", o.Name, "url", recordURL(base, o, r.id)))
	if fields == nil {
		fields = o.Fields
	}
	for _, f := range fields {
		out.set(f.Name, r.fields[f.Name])
	}
	return out
}

// decodeBody decodes a JSON object body; a missing or non-object body is a parser error.
func decodeBody(c *call) (map[string]any, *sfError) {
	var raw map[string]any
	if err := decodeJSON(c.body, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, newErr("JSON_PARSER_ERROR", "The request body must be a JSON object")
	}
	return raw, nil
}

func saveResult(id string) *ordered {
	return orderedOf("id", id, "success", true, "errors", []any{})
}

func (s *Server) handleCreate(c *call, obj *objectDef) *response {
	raw, perr := decodeBody(c)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	in, perr := decodeRecord(obj, raw)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	if lerr := s.recordLock("sobject.create", obj.Name, ""); lerr != nil {
		return errResp(http.StatusBadRequest, lerr)
	}
	var id string
	var err *sfError
	s.withWrite(c, func(tx *txn) { id, err = s.create(tx, in, "") })
	if err != nil {
		return errResp(http.StatusBadRequest, err)
	}
	resp := jsonResp(http.StatusCreated, saveResult(id))
	resp.header = map[string]string{"Location": recordURL(c.base(), obj, id)}
	return resp
}

// resolveRowID checks the id of a /sobjects/{Obj}/{id} path.
func resolveRowID(obj *objectDef, raw string) (string, *response) {
	id, ok := normalizeID(raw)
	if !ok {
		return "", errResp(http.StatusNotFound, newErr("NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s", raw))
	}
	if id[:3] != obj.KeyPrefix {
		return "", errResp(http.StatusNotFound, errNotFound)
	}
	return id, nil
}

// selectedFields parses ?fields=a,b for a record GET.
func selectedFields(c *call, obj *objectDef) ([]*fieldDef, *response) {
	list := c.query.Get("fields")
	if list == "" {
		return nil, nil
	}
	var out []*fieldDef
	seenID := false
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		f := obj.field(name)
		if f == nil {
			return nil, errResp(http.StatusBadRequest, newErr("INVALID_FIELD",
				"No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, obj.Name))
		}
		seenID = seenID || f.Name == "Id"
		out = append(out, f)
	}
	if !seenID {
		out = append(out, obj.field("Id"))
	}
	return out, nil
}

func (s *Server) handleGet(c *call, obj *objectDef, rawID string) *response {
	id, resp := resolveRowID(obj, rawID)
	if resp != nil {
		return resp
	}
	fields, resp := selectedFields(c, obj)
	if resp != nil {
		return resp
	}
	var out *response
	s.withRead(c, func() {
		r := s.st.table(obj).recs[id]
		switch {
		case r == nil:
			out = errResp(http.StatusNotFound, errNotFound)
		case r.deleted:
			out = errResp(http.StatusNotFound, errDeleted)
		default:
			out = jsonResp(http.StatusOK, renderRecord(c.base(), obj, r, fields))
		}
	})
	return out
}

// notFoundStatus maps update/remove errors to the HTTP status of a single-record call.
func notFoundStatus(err *sfError) int {
	if err == errNotFound || err == errDeleted {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func (s *Server) handleUpdate(c *call, obj *objectDef, rawID string) *response {
	id, resp := resolveRowID(obj, rawID)
	if resp != nil {
		return resp
	}
	raw, perr := decodeBody(c)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	in, perr := decodeRecord(obj, raw)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	if in.has("Id") {
		return errResp(http.StatusBadRequest, newErr("INVALID_FIELD", "The Id field should not be specified in the sobject data."))
	}
	if lerr := s.recordLock("sobject.update", obj.Name, id); lerr != nil {
		return errResp(http.StatusBadRequest, lerr)
	}
	var err *sfError
	s.withWrite(c, func(tx *txn) { err = s.update(tx, obj, id, in) })
	if err != nil {
		return errResp(notFoundStatus(err), err)
	}
	return &response{status: http.StatusNoContent}
}

func (s *Server) handleDelete(c *call, obj *objectDef, rawID string) *response {
	id, resp := resolveRowID(obj, rawID)
	if resp != nil {
		return resp
	}
	if lerr := s.recordLock("sobject.delete", obj.Name, id); lerr != nil {
		return errResp(http.StatusBadRequest, lerr)
	}
	var err *sfError
	s.withWrite(c, func(tx *txn) { err = s.remove(tx, obj, id) })
	if err != nil {
		return errResp(notFoundStatus(err), err)
	}
	return &response{status: http.StatusNoContent}
}

// externalKey checks that f can be used as an external id in a URL.
func externalKey(obj *objectDef, f *fieldDef) *response {
	if f.ExternalID || f.IDLookup {
		return nil
	}
	return errResp(http.StatusBadRequest, newErr("INVALID_FIELD", "Field %s is not an External ID or indexed field for %s", f.Name, obj.Name))
}

// multipleChoices is the 300 answer listing the records an external id matched.
func multipleChoices(base string, obj *objectDef, ids []string) *response {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = recordURL(base, obj, id)
	}
	return jsonResp(http.StatusMultipleChoices, urls)
}

func (s *Server) handleUpsert(c *call, obj *objectDef, f *fieldDef, value string) *response {
	if resp := externalKey(obj, f); resp != nil {
		return resp
	}
	if f.Name == "Id" && value != "" && c.method == http.MethodPost {
		return errResp(http.StatusMethodNotAllowed, newErr("METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,DELETE"))
	}
	raw, perr := decodeBody(c)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	in, perr := decodeRecord(obj, raw)
	if perr != nil {
		return errResp(http.StatusBadRequest, perr)
	}
	if in.has("Id") {
		return errResp(http.StatusBadRequest, newErr("INVALID_FIELD", "The Id field should not be specified in the sobject data."))
	}
	if lerr := s.recordLock("sobject.upsert", obj.Name, ""); lerr != nil {
		return errResp(http.StatusBadRequest, lerr)
	}
	updateOnly := strings.EqualFold(c.query.Get("updateOnly"), "true")
	var res upsertResult
	var err *sfError
	s.withWrite(c, func(tx *txn) {
		if updateOnly && f.Name != "Id" {
			if v, perr := f.coerce(value); perr == nil && len(s.st.table(obj).lookup(f, v)) == 0 {
				err = errNotFound
				return
			}
		}
		res, err = s.upsert(tx, in, f, value)
	})
	switch {
	case res.matches != nil:
		return multipleChoices(c.base(), obj, res.matches)
	case err != nil:
		return errResp(notFoundStatus(err), err)
	}
	if c.verNum < 46 {
		if !res.created {
			return &response{status: http.StatusNoContent}
		}
		return jsonResp(http.StatusCreated, saveResult(res.id))
	}
	body := saveResult(res.id)
	body.set("created", res.created)
	if res.created {
		resp := jsonResp(http.StatusCreated, body)
		resp.header = map[string]string{"Location": recordURL(c.base(), obj, res.id)}
		return resp
	}
	return jsonResp(http.StatusOK, body)
}

// matchExternal finds the live records whose external id field f has the URL value.
func (s *Server) matchExternal(obj *objectDef, f *fieldDef, value string) ([]*record, *sfError) {
	v, perr := f.coerce(value)
	if perr != nil {
		return nil, perr
	}
	return s.st.table(obj).lookup(f, v), nil
}

func (s *Server) handleGetByExternalID(c *call, obj *objectDef, f *fieldDef, value string) *response {
	if resp := externalKey(obj, f); resp != nil {
		return resp
	}
	fields, resp := selectedFields(c, obj)
	if resp != nil {
		return resp
	}
	var out *response
	s.withRead(c, func() {
		matches, err := s.matchExternal(obj, f, value)
		switch {
		case err != nil:
			out = errResp(http.StatusBadRequest, err)
		case len(matches) == 0:
			out = errResp(http.StatusNotFound, errNotFound)
		case len(matches) > 1:
			ids := make([]string, len(matches))
			for i, r := range matches {
				ids[i] = r.id
			}
			out = multipleChoices(c.base(), obj, ids)
		default:
			out = jsonResp(http.StatusOK, renderRecord(c.base(), obj, matches[0], fields))
		}
	})
	return out
}

func (s *Server) handleDeleteByExternalID(c *call, obj *objectDef, f *fieldDef, value string) *response {
	if resp := externalKey(obj, f); resp != nil {
		return resp
	}
	var out *response
	s.withWrite(c, func(tx *txn) {
		matches, err := s.matchExternal(obj, f, value)
		switch {
		case err != nil:
			out = errResp(http.StatusBadRequest, err)
		case len(matches) == 0:
			out = errResp(http.StatusNotFound, errNotFound)
		case len(matches) > 1:
			ids := make([]string, len(matches))
			for i, r := range matches {
				ids[i] = r.id
			}
			out = multipleChoices(c.base(), obj, ids)
		default:
			if lerr := s.recordLock("sobject.delete", obj.Name, matches[0].id); lerr != nil {
				out = errResp(http.StatusBadRequest, lerr)
				return
			}
			if err := s.remove(tx, obj, matches[0].id); err != nil {
				out = errResp(notFoundStatus(err), err)
				return
			}
			out = &response{status: http.StatusNoContent}
		}
	})
	return out
}

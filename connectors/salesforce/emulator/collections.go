package emulator

import (
	"net/http"
	"strconv"
	"strings"
)

// maxCollection is the sObject Collections record limit.
const maxCollection = 200

// maxChunks is how many runs of consecutive same-type records one request may hold.
const maxChunks = 10

type collectionBody struct {
	AllOrNone bool             `json:"allOrNone"`
	Records   []map[string]any `json:"records"`
}

// recResult is the outcome of one record of a collection.
type recResult struct {
	id         string
	idKnown    bool // the id is reported even on failure (update, delete, upsert match)
	err        *sfError
	created    bool
	rolledBack bool
}

var errRolledBack = newErr("ALL_OR_NONE_OPERATION_ROLLED_BACK",
	"Record rolled back because not all records were valid and the request was using AllOrNone header")

func renderResults(rs []recResult, withCreated bool) []*ordered {
	out := make([]*ordered, len(rs))
	for i, r := range rs {
		o := &ordered{vals: map[string]any{}}
		switch {
		case r.err == nil && !r.rolledBack:
			o.set("id", r.id)
			o.set("success", true)
			o.set("errors", []any{})
			if withCreated {
				o.set("created", r.created)
			}
		default:
			if r.idKnown && r.id != "" {
				o.set("id", r.id)
			}
			o.set("success", false)
			e := r.err
			if r.rolledBack && e == nil {
				e = errRolledBack
			}
			o.set("errors", []any{e.perRecord()})
		}
		out[i] = o
	}
	return out
}

// runRecords applies op to each of n records in one transaction. With allOrNone (or when
// the enclosing composite request is allOrNone) a single failure rolls every record back.
// It reports whether any record failed.
func (s *Server) runRecords(c *call, allOrNone bool, n int, op func(tx *txn, i int) recResult) ([]recResult, bool) {
	results := make([]recResult, n)
	failed := false
	s.withWrite(c, func(tx *txn) {
		sp := tx.savepoint()
		for i := 0; i < n; i++ {
			results[i] = op(tx, i)
			if results[i].err != nil {
				failed = true
			}
		}
		if failed && (allOrNone || c.allOrNone) {
			tx.rollbackTo(sp)
			for i := range results {
				if results[i].err == nil {
					results[i].rolledBack = true
					if !results[i].idKnown {
						results[i].id = ""
					}
				}
			}
		}
	})
	return results, failed
}

// decodeCollection reads {"allOrNone":…,"records":[…]} and checks the record limit.
func decodeCollection(c *call) (*collectionBody, *response) {
	var body collectionBody
	if err := decodeJSON(c.body, &body); err != nil {
		return nil, errResp(http.StatusBadRequest, err)
	}
	if len(body.Records) > maxCollection {
		return nil, errResp(http.StatusBadRequest, newErr("EXCEEDED_ID_LIMIT",
			"record limit reached. cannot submit more than %d records into this call", maxCollection))
	}
	return &body, nil
}

// recordType returns the object named by a record's attributes.type.
func (s *Server) recordType(raw map[string]any, i int) (*objectDef, *sfError) {
	attrs, _ := raw["attributes"].(map[string]any)
	typ, _ := attrs["type"].(string)
	if typ == "" {
		return nil, newErr("INVALID_TYPE", "records[%d]: each record must have an attributes map with a value for type, e.g. \"attributes\":{\"type\":\"Account\"}", i)
	}
	obj := s.schema.object(typ)
	if obj == nil {
		return nil, newErr("INVALID_TYPE", "sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", typ)
	}
	return obj, nil
}

// decodeRecords maps every record of the body onto its type; any unknown type, unknown
// field or badly typed value fails the whole request.
func (s *Server) decodeRecords(records []map[string]any) ([]*recordInput, *response) {
	ins := make([]*recordInput, len(records))
	chunks := 0
	for i, raw := range records {
		if raw == nil {
			return nil, errResp(http.StatusBadRequest, newErr("JSON_PARSER_ERROR", "records[%d] is null", i))
		}
		obj, err := s.recordType(raw, i)
		if err != nil {
			return nil, errResp(http.StatusBadRequest, err)
		}
		in, err := decodeRecord(obj, raw)
		if err != nil {
			return nil, errResp(http.StatusBadRequest, err)
		}
		if i == 0 || ins[i-1].obj != obj {
			chunks++
		}
		ins[i] = in
	}
	if chunks > maxChunks {
		return nil, errResp(http.StatusBadRequest, newErr("EXCEEDED_MAX_TYPES_LIMIT",
			"Cannot have more than %d chunks in a single operation. Please rearrange the data to reduce chunking.", maxChunks))
	}
	return ins, nil
}

func collectionResponse(results []recResult, failed, withCreated bool) *response {
	return &response{status: http.StatusOK, body: renderResults(results, withCreated), recordFailures: failed}
}

// handleCollectionCreate is POST /composite/sobjects.
func (s *Server) handleCollectionCreate(c *call) *response {
	body, resp := decodeCollection(c)
	if resp != nil {
		return resp
	}
	ins, resp := s.decodeRecords(body.Records)
	if resp != nil {
		return resp
	}
	results, failed := s.runRecords(c, body.AllOrNone, len(ins), func(tx *txn, i int) recResult {
		return s.createOne(tx, "collections.create", ins[i])
	})
	return collectionResponse(results, failed, false)
}

// handleCollectionUpdate is PATCH /composite/sobjects.
func (s *Server) handleCollectionUpdate(c *call) *response {
	body, resp := decodeCollection(c)
	if resp != nil {
		return resp
	}
	ins, resp := s.decodeRecords(body.Records)
	if resp != nil {
		return resp
	}
	results, failed := s.runRecords(c, body.AllOrNone, len(ins), func(tx *txn, i int) recResult {
		return s.updateOne(tx, "collections.update", ins[i])
	})
	return collectionResponse(results, failed, false)
}

// handleCollectionDelete is DELETE /composite/sobjects?ids=…&allOrNone=….
func (s *Server) handleCollectionDelete(c *call) *response {
	idsParam := c.query.Get("ids")
	if idsParam == "" {
		return errResp(http.StatusBadRequest, newErr("MISSING_ARGUMENT", "The ids parameter is required: ?ids=id1,id2"))
	}
	ids := strings.Split(idsParam, ",")
	if len(ids) > maxCollection {
		return errResp(http.StatusBadRequest, newErr("EXCEEDED_ID_LIMIT", "Exceeded max limit of %d ids", maxCollection))
	}
	allOrNone, _ := strconv.ParseBool(c.query.Get("allOrNone"))
	results, failed := s.runRecords(c, allOrNone, len(ids), func(tx *txn, i int) recResult {
		return s.deleteOne(tx, "collections.delete", nil, strings.TrimSpace(ids[i]))
	})
	return collectionResponse(results, failed, false)
}

// handleCollectionUpsert is PATCH /composite/sobjects/{Obj}/{ExtField}.
func (s *Server) handleCollectionUpsert(c *call, objName, extName string) *response {
	obj := s.schema.object(objName)
	if obj == nil {
		return errResp(http.StatusNotFound, newErr("NOT_FOUND", "The requested resource does not exist"))
	}
	ext := obj.field(extName)
	if ext == nil || !(ext.ExternalID || ext.IDLookup) {
		return errResp(http.StatusBadRequest, newErr("INVALID_FIELD", "Provided external ID field does not exist or is not accessible: %s", extName))
	}
	body, resp := decodeCollection(c)
	if resp != nil {
		return resp
	}
	ins, resp := s.decodeRecords(body.Records)
	if resp != nil {
		return resp
	}
	for i, in := range ins {
		if in.obj != obj {
			return errResp(http.StatusBadRequest, newErr("INVALID_TYPE",
				"records[%d] has attributes.type %s but this upsert is for %s: all records must be of the type in the URL", i, in.obj.Name, obj.Name))
		}
	}
	repeated := repeatedKeys(ins, ext)
	results, failed := s.runRecords(c, body.AllOrNone, len(ins), func(tx *txn, i int) recResult {
		return s.upsertOne(tx, "collections.upsert", ins[i], ext, repeated[i])
	})
	return collectionResponse(results, failed, true)
}

// The operations on one record of a write of many (sObject Collections, Bulk API
// jobs). op is the call kind that record-level faults match.

// createOne creates one record.
func (s *Server) createOne(tx *txn, op string, in *recordInput) recResult {
	if err := s.recordLock(op, in.obj.Name, ""); err != nil {
		return recResult{err: err}
	}
	id, err := s.create(tx, in, "")
	return recResult{id: id, err: err, created: err == nil}
}

// updateOne updates the record named by the Id of in.
func (s *Server) updateOne(tx *txn, op string, in *recordInput) recResult {
	raw, _ := in.values["Id"].(string)
	if raw == "" {
		return recResult{err: newErr("MISSING_ARGUMENT", "Id not specified in an update call")}
	}
	id, ok := normalizeID(raw)
	if !ok || id[:3] != in.obj.KeyPrefix {
		return recResult{err: newErr("MALFORMED_ID", "%s ID: id value of incorrect type: %s", in.obj.Label, raw).withFields("Id")}
	}
	if err := s.recordLock(op, in.obj.Name, id); err != nil {
		return recResult{id: id, idKnown: true, err: err}
	}
	err := s.update(tx, in.obj, id, in)
	if err == errNotFound {
		err = newErr("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	return recResult{id: id, idKnown: true, err: err}
}

// deleteOne deletes the record with id raw. obj is the object the id must belong to,
// or nil for any object of the emulator.
func (s *Server) deleteOne(tx *txn, op string, obj *objectDef, raw string) recResult {
	id, ok := normalizeID(raw)
	of := s.objectOfID(id)
	if !ok || of == nil {
		return recResult{id: raw, idKnown: true, err: newErr("MALFORMED_ID", "malformed id %s", raw)}
	}
	if obj != nil && of != obj {
		return recResult{id: raw, idKnown: true, err: newErr("MALFORMED_ID", "%s ID: id value of incorrect type: %s", obj.Label, raw).withFields("Id")}
	}
	if err := s.recordLock(op, of.Name, id); err != nil {
		return recResult{id: id, idKnown: true, err: err}
	}
	err := s.remove(tx, of, id)
	if err == errNotFound {
		err = newErr("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	return recResult{id: id, idKnown: true, err: err}
}

// upsertOne creates or updates the record keyed by the value of ext in in; repeated
// says that another record of the same request has the same key.
func (s *Server) upsertOne(tx *txn, op string, in *recordInput, ext *fieldDef, repeated bool) recResult {
	if repeated {
		return recResult{err: newErr("DUPLICATE_EXTERNAL_ID", "Duplicate external id specified: %v", in.values[ext.Name]).withFields(ext.Name)}
	}
	if err := s.recordLock(op, in.obj.Name, ""); err != nil {
		return recResult{err: err}
	}
	value := in.values[ext.Name]
	if value == nil {
		return recResult{err: newErr("MISSING_ARGUMENT", "%s not specified", ext.Name).withFields(ext.Name)}
	}
	res, err := s.upsert(tx, in, ext, value)
	return recResult{id: res.id, idKnown: !res.created, err: err, created: res.created}
}

// repeatedKeys reports, for each input, whether its value of ext occurs in another
// input too (nil inputs are skipped).
func repeatedKeys(ins []*recordInput, ext *fieldDef) []bool {
	keys := make([]string, len(ins))
	count := map[string]int{}
	for i, in := range ins {
		if in == nil {
			continue
		}
		if v := in.values[ext.Name]; v != nil {
			if nv, err := ext.normalize(v); err == nil && nv != nil {
				keys[i] = ext.indexKey(nv)
				count[keys[i]]++
			}
		}
	}
	out := make([]bool, len(ins))
	for i, k := range keys {
		out[i] = k != "" && count[k] > 1
	}
	return out
}

// handleCollectionGet is GET /composite/sobjects/{Obj}?ids=…&fields=….
func (s *Server) handleCollectionGet(c *call, objName string) *response {
	obj := s.schema.object(objName)
	if obj == nil {
		return errResp(http.StatusNotFound, newErr("NOT_FOUND", "The requested resource does not exist"))
	}
	if c.query.Get("fields") == "" || c.query.Get("ids") == "" {
		return errResp(http.StatusBadRequest, newErr("MISSING_ARGUMENT", "The ids and fields parameters are required: ?ids=id1,id2&fields=Name"))
	}
	ids := strings.Split(c.query.Get("ids"), ",")
	if len(ids) > 2000 {
		return errResp(http.StatusBadRequest, newErr("EXCEEDED_ID_LIMIT", "Exceeded max limit of 2000 ids"))
	}
	fields, resp := selectedFields(c, obj)
	if resp != nil {
		return resp
	}
	out := make([]any, len(ids))
	s.withRead(c, func() {
		t := s.st.table(obj)
		for i, raw := range ids {
			if id, ok := normalizeID(strings.TrimSpace(raw)); ok {
				if r := t.live(id); r != nil {
					out[i] = renderRecord(c.base(), obj, r, fields)
				}
			}
		}
	})
	return jsonResp(http.StatusOK, out)
}

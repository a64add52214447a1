package emulator

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// recordInput is one record of a request body, mapped to the object's fields.
type recordInput struct {
	obj    *objectDef
	values map[string]any // canonical field name → coerced value
	names  []string       // canonical names in body order
}

func (in *recordInput) has(name string) bool { _, ok := in.values[name]; return ok }

// decodeRecord maps a JSON object onto obj. An unknown field is INVALID_FIELD and a value
// of the wrong JSON type is JSON_PARSER_ERROR: both fail the whole request, as a real org
// rejects the body before any record is processed. "attributes" is ignored.
func decodeRecord(obj *objectDef, raw map[string]any) (*recordInput, *sfError) {
	in := &recordInput{obj: obj, values: make(map[string]any, len(raw))}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "attributes" {
			continue
		}
		f := obj.field(k)
		if f == nil {
			return nil, newErr("INVALID_FIELD", "No such column '%s' on sobject of type %s", k, obj.Name)
		}
		v, err := f.coerce(raw[k])
		if err != nil {
			return nil, err
		}
		if _, dup := in.values[f.Name]; !dup {
			in.names = append(in.names, f.Name)
		}
		in.values[f.Name] = v
	}
	return in, nil
}

func (s *Server) now() string { return formatDatetime(time.Now()) }

// normalizeInput validates each given value on its own and returns the stored forms.
func (s *Server) normalizeInput(in *recordInput, self string) (map[string]any, *sfError) {
	out := make(map[string]any, len(in.values))
	for _, name := range in.names {
		f := in.obj.field(name)
		v, err := f.normalize(in.values[name])
		if err != nil {
			return nil, err
		}
		if v != nil && f.Type == tReference {
			id, rerr := s.checkReference(f, v.(string), self)
			if rerr != nil {
				return nil, rerr
			}
			v = id
		}
		out[name] = v
	}
	return out, nil
}

// checkReference validates an id given to a lookup field; it returns the 18-char form.
func (s *Server) checkReference(f *fieldDef, v, self string) (string, *sfError) {
	id, ok := normalizeID(v)
	if !ok {
		return "", newErr("MALFORMED_ID", "%s: id value of incorrect type: %s", f.Label, v).withFields(f.Name)
	}
	emulated := false
	for _, name := range f.ReferenceTo {
		target := s.schema.object(name)
		if target == nil {
			continue
		}
		emulated = true
		if target.KeyPrefix != id[:3] {
			continue
		}
		if id == self {
			return id, nil
		}
		r := s.st.table(target).recs[id]
		switch {
		case r == nil:
			return "", newErr("INVALID_CROSS_REFERENCE_KEY", "%s: invalid cross reference id", f.Label).withFields(f.Name)
		case r.deleted:
			return "", newErr("ENTITY_IS_DELETED", "%s: entity is deleted", f.Label).withFields(f.Name)
		}
		return id, nil
	}
	if emulated {
		return "", newErr("FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s", f.Label, v).withFields(f.Name)
	}
	return id, nil
}

func notWritable(obj *objectDef, fields []string) *sfError {
	return newErr("INVALID_FIELD_FOR_INSERT_UPDATE",
		"Unable to create/update fields: %s. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
		strings.Join(fields, ", ")).withFields(fields...)
}

// checkUnique reports a DUPLICATE_VALUE when another live record has the same value in a
// unique field.
func checkUnique(t *table, values map[string]any, self string) *sfError {
	for _, f := range t.def.Fields {
		if !f.Unique && f.uniqueWith == "" {
			continue
		}
		v, ok := values[f.Name]
		if !ok || v == nil {
			continue
		}
		for _, r := range t.lookup(f, v) {
			if r.id == self {
				continue
			}
			if f.uniqueWith != "" && r.fields[f.uniqueWith] != values[f.uniqueWith] {
				continue
			}
			return newErr("DUPLICATE_VALUE", "duplicate value found: %s duplicates value on record with id: %s", f.Name, r.id)
		}
	}
	return nil
}

// create inserts a record. explicitID is only used for seed records.
func (s *Server) create(tx *txn, in *recordInput, explicitID string) (string, *sfError) {
	obj := in.obj
	if in.has("Id") && explicitID == "" {
		return "", newErr("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call").withFields("Id")
	}
	var bad []string
	for _, name := range in.names {
		if name != "Id" && !obj.field(name).Createable {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return "", notWritable(obj, bad)
	}
	given := maps.Clone(in.values)
	delete(given, "Id")
	norm, err := s.normalizeInput(&recordInput{obj: obj, values: given, names: without(in.names, "Id")}, "")
	if err != nil {
		return "", err
	}
	t := s.st.table(obj)
	fields := make(map[string]any, len(obj.Fields))
	var missing []string
	for _, f := range obj.Fields {
		v, ok := norm[f.Name]
		if !ok && f.DefaultedOnCreate && f.DefaultValue != nil {
			v = f.DefaultValue
		}
		if v == nil && f.required() {
			missing = append(missing, f.Name)
		}
		if f.Type == tBoolean && v == nil {
			v = false
		}
		fields[f.Name] = v
	}
	if len(missing) > 0 {
		return "", newErr("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]", strings.Join(missing, ", ")).withFields(missing...)
	}
	if err := checkUnique(t, fields, ""); err != nil {
		return "", err
	}
	id := explicitID
	if id == "" {
		id = t.newID()
	}
	now := s.now()
	fields["Id"] = id
	fields["IsDeleted"] = false
	for _, name := range []string{"CreatedDate", "LastModifiedDate", "SystemModstamp"} {
		fields[name] = now
	}
	fields["CreatedById"], fields["LastModifiedById"] = s.userID, s.userID
	if f := obj.field("OwnerId"); f != nil && fields["OwnerId"] == nil {
		fields["OwnerId"] = s.userID
	}
	for _, f := range obj.Fields {
		if f.AutoNumber {
			t.autoNum[f.Name]++
			fields[f.Name] = fmt.Sprintf(f.autoFormat, t.autoNum[f.Name])
		}
	}
	computeFields(obj, fields)
	s.st.seq++
	tx.put(t, &record{id: id, seq: s.st.seq, fields: fields})
	tx.wrote(obj.Name, id, norm)
	return id, nil
}

// computeFields fills formula-like standard fields.
func computeFields(obj *objectDef, fields map[string]any) {
	if obj.Name == "Contact" {
		parts := []string{}
		if v, _ := fields["FirstName"].(string); v != "" {
			parts = append(parts, v)
		}
		if v, _ := fields["LastName"].(string); v != "" {
			parts = append(parts, v)
		}
		fields["Name"] = strings.Join(parts, " ")
	}
}

func without(names []string, drop string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

// errNotFound and errDeleted are returned by update and remove for a missing record; the
// callers turn them into the status or per-record code of their resource.
var (
	errNotFound = newErr("NOT_FOUND", "The requested resource does not exist")
	errDeleted  = newErr("ENTITY_IS_DELETED", "entity is deleted")
)

// update changes the given fields of an existing record.
func (s *Server) update(tx *txn, obj *objectDef, id string, in *recordInput) *sfError {
	t := s.st.table(obj)
	cur := t.recs[id]
	if cur == nil {
		return errNotFound
	}
	if cur.deleted {
		return errDeleted
	}
	var bad []string
	for _, name := range in.names {
		if name != "Id" && !obj.field(name).Updateable {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return notWritable(obj, bad)
	}
	given := maps.Clone(in.values)
	delete(given, "Id")
	norm, err := s.normalizeInput(&recordInput{obj: obj, values: given, names: without(in.names, "Id")}, id)
	if err != nil {
		return err
	}
	var missing []string
	for _, name := range without(in.names, "Id") {
		f := obj.field(name)
		if norm[name] == nil && f.required() {
			missing = append(missing, name)
		}
		if f.Type == tBoolean && norm[name] == nil {
			norm[name] = false
		}
	}
	if len(missing) > 0 {
		return newErr("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]", strings.Join(missing, ", ")).withFields(missing...)
	}
	fields := maps.Clone(cur.fields)
	maps.Copy(fields, norm)
	if err := checkUnique(t, fields, id); err != nil {
		return err
	}
	now := s.now()
	fields["LastModifiedDate"], fields["SystemModstamp"], fields["LastModifiedById"] = now, now, s.userID
	computeFields(obj, fields)
	tx.put(t, &record{id: id, seq: cur.seq, fields: fields})
	tx.wrote(obj.Name, id, norm)
	return nil
}

// upsertResult is the outcome of one upsert.
type upsertResult struct {
	id      string
	created bool
	matches []string // set when more than one record matched (HTTP 300)
}

// upsert creates or updates the record whose external id field ext has value extValue.
func (s *Server) upsert(tx *txn, in *recordInput, ext *fieldDef, extValue any) (upsertResult, *sfError) {
	obj := in.obj
	t := s.st.table(obj)
	if ext.Name == "Id" {
		idStr, _ := extValue.(string)
		if idStr == "" {
			id, err := s.create(tx, in, "")
			return upsertResult{id: id, created: true}, err
		}
		id, ok := normalizeID(idStr)
		if !ok || id[:3] != obj.KeyPrefix {
			return upsertResult{}, newErr("MALFORMED_ID", "%s ID: id value of incorrect type: %s", obj.Label, idStr).withFields("Id")
		}
		err := s.update(tx, obj, id, in)
		return upsertResult{id: id}, err
	}
	v, perr := ext.coerce(extValue)
	if perr != nil {
		return upsertResult{}, perr
	}
	nv, nerr := ext.normalize(v)
	if nerr != nil {
		return upsertResult{}, nerr
	}
	if nv == nil {
		return upsertResult{}, newErr("MISSING_ARGUMENT", "%s not specified", ext.Name).withFields(ext.Name)
	}
	if bodyV, ok := in.values[ext.Name]; ok && bodyV != nil && ext.indexKey(bodyV) != ext.indexKey(nv) {
		return upsertResult{}, newErr("INVALID_FIELD", "The value of %s in the request body (%v) does not match the external id value in the URL (%v)", ext.Name, bodyV, nv).withFields(ext.Name)
	}
	matches := t.lookup(ext, nv)
	switch len(matches) {
	case 0:
		withKey := &recordInput{obj: obj, values: maps.Clone(in.values), names: in.names}
		if !withKey.has(ext.Name) {
			withKey.names = append(append([]string{}, in.names...), ext.Name)
		}
		withKey.values[ext.Name] = nv
		id, err := s.create(tx, withKey, "")
		return upsertResult{id: id, created: true}, err
	case 1:
		upd := &recordInput{obj: obj, values: maps.Clone(in.values), names: in.names}
		if !upd.has(ext.Name) {
			// the key is part of what was written, for OnWrite; it is unchanged
			upd.names = append(append([]string{}, in.names...), ext.Name)
			upd.values[ext.Name] = nv
			if !ext.Updateable {
				delete(upd.values, ext.Name)
				upd.names = in.names
			}
		}
		err := s.update(tx, obj, matches[0].id, upd)
		return upsertResult{id: matches[0].id}, err
	}
	ids := make([]string, len(matches))
	for i, r := range matches {
		ids[i] = r.id
	}
	return upsertResult{matches: ids}, newErr("DUPLICATE_EXTERNAL_ID",
		"%s: more than one record found for external id field: [%s]", ext.Name, strings.Join(ids, ", ")).withFields(ext.Name)
}

// remove deletes a record (it stays as a tombstone: queryAll sees it, updates get
// ENTITY_IS_DELETED).
func (s *Server) remove(tx *txn, obj *objectDef, id string) *sfError {
	t := s.st.table(obj)
	cur := t.recs[id]
	if cur == nil {
		return errNotFound
	}
	if cur.deleted {
		return errDeleted
	}
	fields := maps.Clone(cur.fields)
	now := s.now()
	fields["IsDeleted"] = true
	fields["LastModifiedDate"], fields["SystemModstamp"] = now, now
	tx.put(t, &record{id: id, seq: cur.seq, deleted: true, fields: fields})
	return nil
}

// objectOfID finds the object an id belongs to by its key prefix.
func (s *Server) objectOfID(id string) *objectDef {
	if len(id) < 3 {
		return nil
	}
	return s.schema.byPrefix[id[:3]]
}

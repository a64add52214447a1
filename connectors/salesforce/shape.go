package salesforce

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Create-only fields (LoyaltyProgramMember.ProgramId) can be set when a
// record is created, not when it is updated: Salesforce refuses an upsert
// that matches an existing record and sets one
// (INVALID_FIELD_FOR_INSERT_UPDATE). A mapping sets them for the records it
// creates, so the connector decides, record by record, which of its mapped
// fields an upsert sends (its shape):
//
//   - a record the hub's cross-reference knows (Record.TargetID) most likely
//     exists: it is sent without its required create-only fields. Had the
//     target lost it (a deleted record, a refreshed org), the upsert creates
//     it and Salesforce refuses it with REQUIRED_FIELD_MISSING, loudly. A
//     create-only field that is not required is sent: left out, it would be
//     missing from a record created again, silently;
//   - a record refused because it sets create-only fields exists: it is sent
//     again without them;
//   - a record sent without them and refused with REQUIRED_FIELD_MISSING for
//     one of them no longer exists: it is sent again with all its fields, so
//     the upsert creates it, and its result names the new record.
//
// Which fields are create-only comes from the object's describe. When the
// describe fails, the records whose shape depends on it are not sent: they
// get a result of the describe's failure (retryable for a 429, a 5xx or a
// timeout, with its Retry-After), and the next Write describes again, as
// DescribeObject keeps answers only.

// recordShape is which of record i's mapped fields are sent.
type recordShape struct {
	decided bool     // omit holds the first decision
	omit    []string // fields left out, as the record names them
	changes int      // times Salesforce's answers changed the shape
}

// maxShapeChanges bounds how often a record's shape changes in one Write:
// once for what Salesforce answered, once more if the record was created or
// deleted by someone else meanwhile.
const maxShapeChanges = 2

// shape decides the first shape of record i. It returns false, with the
// record's Result set, when the record cannot be sent.
func (w *batchWriter) shape(ctx context.Context, i int) bool {
	sh := &w.shapes[i]
	if sh.decided {
		return true
	}
	rec := w.req.Records[i]
	if w.req.Operation == connectors.Upsert && rec.TargetID != "" {
		createOnly, err := w.createOnlyFields(ctx)
		if err != nil {
			w.results[i] = w.describeFailure(err)
			return false
		}
		for name := range rec.Fields {
			if createOnly[strings.ToLower(name)] == requiredOnCreate {
				sh.omit = append(sh.omit, name)
			}
		}
		slices.Sort(sh.omit)
	}
	sh.decided = true
	return true
}

// fields returns the fields of record i to send: its mapped fields but the
// ones its shape leaves out, in a new map.
func (w *batchWriter) fields(i int) map[string]any {
	rec, omit := w.req.Records[i], w.shapes[i].omit
	m := make(map[string]any, len(rec.Fields)+2)
	for k, v := range rec.Fields {
		if !slices.Contains(omit, k) {
			m[k] = v
		}
	}
	return m
}

// refused handles the errors Salesforce gave record i. It returns true when
// the record is to be sent again in another shape (its Result is left
// unset); otherwise it sets the record's Result.
func (w *batchWriter) refused(ctx context.Context, i int, errs []sfError) bool {
	if again, handled := w.reshape(ctx, i, errs); handled {
		return again
	}
	if r, ok := w.lostTarget(i, errs); ok {
		w.results[i] = r
		return false
	}
	if r, ok := w.lostReference(i, errs); ok {
		w.results[i] = r
		return false
	}
	w.results[i] = recordFailure(errs)
	return false
}

// reshape changes the shape of upsert record i after Salesforce refused it
// with errs, when the refusal is about its create-only fields (see above).
// handled is false when it is not; when it is, again says whether to send
// the record again, and the record's Result is set when not.
func (w *batchWriter) reshape(ctx context.Context, i int, errs []sfError) (again, handled bool) {
	if w.req.Operation != connectors.Upsert || len(errs) == 0 {
		return false, false
	}
	sh, rec := &w.shapes[i], w.req.Records[i]
	var next []string
	switch {
	case len(errs) == 1 && errs[0].code() == "INVALID_FIELD_FOR_INSERT_UPDATE":
		// The record exists. Whether the fields refused are create-only
		// (leave them out) or not writable at all (the mapping's fault)
		// takes the describe.
		createOnly, err := w.createOnlyFields(ctx)
		if err != nil {
			w.results[i] = w.describeFailure(err)
			return false, true
		}
		for _, f := range errorFields(errs[0]) {
			if createOnly[strings.ToLower(f)] == 0 || !hasField(rec.Fields, f) {
				return false, false
			}
		}
		for name := range rec.Fields {
			if createOnly[strings.ToLower(name)] != 0 {
				next = append(next, name)
			}
		}
		slices.Sort(next)
		if len(next) == 0 || slices.Equal(next, sh.omit) {
			return false, false
		}
	case len(sh.omit) > 0 && w.missingOmitted(i, errs):
		// The record was sent without create-only fields, and the upsert,
		// matching no record (the target lost it), could not create it
		// without them: send them too.
		next = nil
	default:
		return false, false
	}
	if sh.changes >= maxShapeChanges {
		msgs := make([]string, len(errs))
		for k, e := range errs {
			msgs[k] = describeError(e.code(), e.Message, e.Fields)
		}
		w.results[i] = connectors.Result{Status: connectors.StatusRetryable, Code: errs[0].code(),
			Message: fmt.Sprintf("record %q was created or deleted in Salesforce while it was being written (sent %d times, with and without its create-only fields): retried: %s",
				rec.Key, sh.changes+1, strings.Join(msgs, "; "))}
		return false, true
	}
	sh.changes++
	sh.omit = next
	return true, true
}

// missingOmitted reports whether errs hold a REQUIRED_FIELD_MISSING for a
// field record i's shape left out (or for fields it does not name).
func (w *batchWriter) missingOmitted(i int, errs []sfError) bool {
	for _, e := range errs {
		if e.code() != "REQUIRED_FIELD_MISSING" {
			continue
		}
		named := errorFields(e)
		if len(named) == 0 {
			return true
		}
		for _, f := range named {
			if slices.ContainsFunc(w.shapes[i].omit, func(o string) bool { return strings.EqualFold(o, f) }) {
				return true
			}
		}
	}
	return false
}

// lostTarget is the Result of an update whose target record no longer
// exists: mode update has no fields to create it from in general (nor may
// it create records), so the failure is permanent, and says so.
func (w *batchWriter) lostTarget(i int, errs []sfError) (connectors.Result, bool) {
	if w.req.Operation != connectors.Update || len(errs) != 1 {
		return connectors.Result{}, false
	}
	e := errs[0]
	switch e.code() {
	case "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND":
	default:
		return connectors.Result{}, false
	}
	if len(e.Fields) > 1 || (len(e.Fields) == 1 && !strings.EqualFold(e.Fields[0], "Id")) {
		return connectors.Result{}, false // a lookup field names a missing record
	}
	rec := w.req.Records[i]
	return connectors.Result{Status: connectors.StatusPermanent, Code: e.code(), Message: fmt.Sprintf(
		"the target record %s of %q no longer exists in %s (%s): it was deleted, or the org was refreshed, since the hub wrote it; "+
			"mode update does not create records: use mode upsert by an external id, or write the record again through the sync that creates it (a backfill), then replay this dead letter",
		rec.TargetID, rec.Key, w.req.Object, describeError(e.code(), e.Message, e.Fields))}, true
}

// lostReference is the Result of a record refused because a record it
// refers to does not exist (INVALID_CROSS_REFERENCE_KEY, ENTITY_IS_DELETED
// on a lookup field: a transaction journal's MemberId after the org lost the
// member). Such an id comes from the cross-reference, which is right again
// once the referenced record's own sync writes it again: the record is
// retryable, and the retry maps it anew. (An id written in the mapping
// itself fails the same way until the attempts run out.)
func (w *batchWriter) lostReference(i int, errs []sfError) (connectors.Result, bool) {
	if w.req.Operation == connectors.Delete || len(errs) != 1 {
		return connectors.Result{}, false
	}
	e := errs[0]
	if code := e.code(); code != "INVALID_CROSS_REFERENCE_KEY" && code != "ENTITY_IS_DELETED" {
		return connectors.Result{}, false
	}
	rec := w.req.Records[i]
	fields := slices.DeleteFunc(slices.Clone(errorFields(e)), func(f string) bool { return strings.EqualFold(f, "Id") })
	which := ""
	if len(fields) == 0 {
		which = "one of "
		if w.req.Operation == connectors.Update {
			return connectors.Result{}, false // the target itself (lostTarget)
		}
		// Bulk API 2.0 results name no field: the record's ids are the suspects.
		for name, v := range rec.Fields {
			if s, ok := v.(string); ok && recordIDRE.MatchString(s) {
				fields = append(fields, name)
			}
		}
		slices.Sort(fields)
	}
	if len(fields) == 0 {
		return connectors.Result{}, false
	}
	refs := make([]string, len(fields))
	for k, f := range fields {
		refs[k] = fmt.Sprintf("%s = %v", f, fieldValue(rec.Fields, f))
	}
	return connectors.Result{Status: connectors.StatusRetryable, Code: e.code(), Message: fmt.Sprintf(
		"%s: a record %q refers to (%s%s) does not exist in Salesforce: deleted, or the org was refreshed; retried, so that a lookup through the cross-reference maps it again once its own sync writes it",
		describeError(e.code(), e.Message, e.Fields), rec.Key, which, strings.Join(refs, ", "))}, true
}

// fieldValue is the value of the field named name (in any case).
func fieldValue(fields map[string]any, name string) any {
	for k, v := range fields {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Values of the createOnlyFields map.
const (
	optionalOnCreate = 1
	requiredOnCreate = 2
)

// createOnlyFields returns the object's fields that are createable but not
// updateable, by lower-case name: requiredOnCreate or optionalOnCreate. The
// object is described once per Write; a failed describe is kept for this
// Write only (DescribeObject keeps answers, not failures).
func (w *batchWriter) createOnlyFields(ctx context.Context) (map[string]int, error) {
	if w.createOnly != nil || w.describeErr != nil {
		return w.createOnly, w.describeErr
	}
	schema, err := w.c.DescribeObject(ctx, w.req.Object)
	if err != nil {
		w.describeErr = err
		w.c.logger.Warn("cannot describe the object to find its create-only fields: the records that depend on them are not written",
			"object", w.req.Object, "kind", connectors.KindOf(err), "error", err)
		return nil, err
	}
	w.createOnly = map[string]int{}
	for _, f := range schema.Fields {
		switch {
		case !f.Createable || f.Updateable:
		case f.Required:
			w.createOnly[strings.ToLower(f.Name)] = requiredOnCreate
		default:
			w.createOnly[strings.ToLower(f.Name)] = optionalOnCreate
		}
	}
	return w.createOnly, nil
}

// describeFailure is the Result of a record not sent because the describe
// that decides its shape failed: the describe's kind (retryable unless the
// object cannot be described at all), code, message and Retry-After.
func (w *batchWriter) describeFailure(err error) connectors.Result {
	r := resultFromError(err)
	r.Message = fmt.Sprintf("not sent: the describe of %s, which says which of the record's fields can be set on create only, failed: %v", w.req.Object, err)
	return r
}

var (
	// "Required fields are missing: [ProgramId, EnrollmentDate]"
	bracketFieldsRE = regexp.MustCompile(`\[([A-Za-z0-9_, ]*)\]`)
	// "Unable to create/update fields: ProgramId, Name. Please check ..."
	listedFieldsRE = regexp.MustCompile(`fields: ([A-Za-z0-9_]+(?:, ?[A-Za-z0-9_]+)*)`)
)

// errorFields returns the fields an error names: its fields list, else the
// ones its message lists (Bulk API 2.0 results carry the message only).
func errorFields(e sfError) []string {
	if len(e.Fields) > 0 {
		return e.Fields
	}
	m := bracketFieldsRE.FindStringSubmatch(e.Message)
	if m == nil {
		m = listedFieldsRE.FindStringSubmatch(e.Message)
	}
	if m == nil {
		return nil
	}
	var out []string
	for f := range strings.SplitSeq(m[1], ",") {
		if f = strings.TrimSpace(f); apiNameRE.MatchString(f) {
			out = append(out, f)
		}
	}
	return out
}

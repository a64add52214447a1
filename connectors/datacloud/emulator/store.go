package emulator

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
)

// object is one object of the connector's schema and its processed records. records is
// guarded by Server.mu.
type object struct {
	name    string
	fields  map[string]Field
	names   []string // field names in declaration order
	pk      Field
	records map[string]map[string]any // by primary key (see key)
}

func newObject(o Object) *object {
	obj := &object{name: o.Name, fields: map[string]Field{}, records: map[string]map[string]any{}}
	for _, f := range o.Fields {
		obj.fields[f.Name] = f
		obj.names = append(obj.names, f.Name)
		if f.PrimaryKey {
			obj.pk = f
		}
	}
	return obj
}

// key is the identity of a record with primary key value v (a string, a json.Number or a
// float64): numbers compare by value, other keys as text.
func (o *object) key(v any) string {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if o.pk.Type == FieldNumber {
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
		return x
	}
	return ""
}

// batch is one accepted ingest request, waiting to be processed: upserts (whole records,
// numbers as float64) or deletes (primary keys).
type batch struct {
	obj     *object
	due     time.Time
	upserts []map[string]any
	deletes []string
}

// enqueue accepts a request; it is processed once ProcessDelay has passed (at once when
// the delay is 0), in order of acceptance.
func (s *Server) enqueue(b *batch) {
	now := time.Now()
	b.due = now.Add(s.cfg.ProcessDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, b)
	s.processLocked(now)
}

// processLocked applies the pending requests due at now (every one for a zero now), oldest
// first. s.mu is held.
func (s *Server) processLocked(now time.Time) {
	n := 0
	for _, b := range s.pending {
		if !now.IsZero() && b.due.After(now) {
			break
		}
		n++
		for _, rec := range b.upserts {
			b.obj.records[b.obj.key(rec[b.obj.pk.Name])] = rec
		}
		for _, k := range b.deletes {
			delete(b.obj.records, k)
		}
	}
	s.pending = slices.Delete(s.pending, 0, n)
}

// Flush processes every accepted request now, whatever ProcessDelay says.
func (s *Server) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked(time.Time{})
}

// Records returns copies of the processed records of an object: each record as it was
// last upserted (an upsert replaces the whole record; fields it did not send are absent),
// with values as encoding/json decodes them (strings, float64 numbers, booleans, nil),
// sorted by primary key (numerically for a number key). Requests accepted less than
// ProcessDelay ago are not visible yet (see Flush). It returns nil for an unknown object.
func (s *Server) Records(objectName string) []map[string]any {
	o := s.objects[objectName]
	if o == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked(time.Now())
	recs := make([]map[string]any, 0, len(o.records))
	for _, r := range o.records {
		recs = append(recs, maps.Clone(r))
	}
	pk := o.pk.Name
	slices.SortFunc(recs, func(a, b map[string]any) int {
		if x, ok := a[pk].(float64); ok {
			if y, ok := b[pk].(float64); ok {
				return cmp.Compare(x, y)
			}
		}
		return cmp.Compare(o.key(a[pk]), o.key(b[pk]))
	})
	return recs
}

// pendingCount is the number of accepted requests of an object not processed yet.
func (s *Server) pendingCount(o *object) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked(time.Now())
	n := 0
	for _, b := range s.pending {
		if b.obj == o {
			n++
		}
	}
	return n
}

// objectNames returns the names of the objects, sorted.
func (s *Server) objectNames() []string {
	return slices.Sorted(maps.Keys(s.objects))
}

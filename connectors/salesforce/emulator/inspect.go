package emulator

import (
	"fmt"
	"maps"
)

// Objects returns the API names of the emulated objects.
func (s *Server) Objects() []string {
	out := make([]string, len(s.schema.objects))
	for i, o := range s.schema.objects {
		out[i] = o.Name
	}
	return out
}

// Records returns copies of the live records of object, oldest first, as field name →
// stored value (text as string, numbers as float64, checkboxes as bool, dates as
// "2006-01-02", datetimes as "2006-01-02T15:04:05.000+0000", null as nil). It returns nil
// for an unknown object.
func (s *Server) Records(object string) []map[string]any {
	obj := s.schema.object(object)
	if obj == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	recs := s.st.table(obj).liveRecords(false)
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = maps.Clone(r.fields)
	}
	return out
}

// Get returns a copy of one live record by its 15- or 18-character id.
func (s *Server) Get(object, id string) (map[string]any, bool) {
	obj := s.schema.object(object)
	id18, ok := normalizeID(id)
	if obj == nil || !ok {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.st.table(obj).live(id18)
	if r == nil {
		return nil, false
	}
	return maps.Clone(r.fields), true
}

// Find returns copies of the live records of object whose field equals value (compared
// as the org compares external ids: text case-insensitively unless the field is
// case-sensitive), oldest first.
func (s *Server) Find(object, field string, value any) []map[string]any {
	obj := s.schema.object(object)
	if obj == nil {
		return nil
	}
	f := obj.field(field)
	if f == nil {
		return nil
	}
	v, err := f.coerce(jsonValue(value))
	if err != nil {
		return nil
	}
	if nv, err := f.normalize(v); err == nil {
		v = nv
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	for _, r := range s.st.table(obj).lookup(f, v) {
		out = append(out, maps.Clone(r.fields))
	}
	return out
}

// jsonValue turns a Go value into what a JSON body would decode to.
func jsonValue(v any) any {
	return jsonRoundTrip(map[string]any{"v": v})["v"]
}

// Insert creates a record as a create call would (same validation, OnWrite is called)
// without counting an API call. Tests use it to set up data.
func (s *Server) Insert(object string, fields map[string]any) (string, error) {
	obj := s.schema.object(object)
	if obj == nil {
		return "", fmt.Errorf("emulator: unknown object %q", object)
	}
	in, perr := decodeRecord(obj, jsonRoundTrip(fields))
	if perr != nil {
		return "", fmt.Errorf("emulator: insert %s: %s: %s", object, perr.Code, perr.Message)
	}
	var id string
	var err *sfError
	c := &call{}
	s.withWrite(c, func(tx *txn) { id, err = s.create(tx, in, "") })
	if err != nil {
		return "", fmt.Errorf("emulator: insert %s: %s: %s", object, err.Code, err.Message)
	}
	return id, nil
}

// Reset drops every record (the seed records are created again), open query cursors,
// Bulk API jobs, faults, the API usage and the counters. Access tokens stay valid.
func (s *Server) Reset() error {
	// jobs first, so that a job being processed stops before the new store exists
	s.resetBulk()
	if err := s.resetData(); err != nil {
		return err
	}
	s.cursorMu.Lock()
	clear(s.cursors)
	s.cursorMu.Unlock()
	s.ClearFaults()
	s.SetAPIUsage(0)
	s.statsMu.Lock()
	s.stats = newStats()
	s.statsMu.Unlock()
	return nil
}

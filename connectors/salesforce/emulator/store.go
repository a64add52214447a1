package emulator

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// record is one stored row. Records are immutable once stored: a change stores a new
// record, so readers and query cursors may keep pointers without copying.
type record struct {
	id      string
	seq     uint64
	deleted bool
	fields  map[string]any // canonical field name → stored value
}

// table holds the records of one object with indexes on its unique, external-id and
// id-lookup fields (live records only).
type table struct {
	def     *objectDef
	recs    map[string]*record
	index   map[string]map[string]map[string]struct{} // field name → key → ids
	nextID  uint64
	autoNum map[string]uint64
}

// store is the org's data. It is guarded by Server.mu.
type store struct {
	tables map[string]*table // by object name, lower case
	seq    uint64
}

func newStore(sc *schema) *store {
	st := &store{tables: map[string]*table{}}
	for _, o := range sc.objects {
		t := &table{def: o, recs: map[string]*record{}, index: map[string]map[string]map[string]struct{}{}, autoNum: map[string]uint64{}}
		for _, f := range o.Fields {
			if f.indexed() {
				t.index[f.Name] = map[string]map[string]struct{}{}
			}
		}
		st.tables[strings.ToLower(o.Name)] = t
	}
	return st
}

func (st *store) table(obj *objectDef) *table { return st.tables[strings.ToLower(obj.Name)] }

// newID returns an unused id for the table.
func (t *table) newID() string {
	for {
		t.nextID++
		id := makeID(t.def.KeyPrefix, t.nextID)
		if _, used := t.recs[id]; !used {
			return id
		}
	}
}

// live returns the record with that id if it exists and is not deleted.
func (t *table) live(id string) *record {
	r := t.recs[id]
	if r == nil || r.deleted {
		return nil
	}
	return r
}

// set replaces the record under id (next nil removes it), keeping the indexes right.
func (t *table) set(id string, next *record) {
	if prev := t.recs[id]; prev != nil && !prev.deleted {
		for name, idx := range t.index {
			if v := prev.fields[name]; v != nil {
				key := t.def.field(name).indexKey(v)
				delete(idx[key], id)
				if len(idx[key]) == 0 {
					delete(idx, key)
				}
			}
		}
	}
	if next == nil {
		delete(t.recs, id)
		return
	}
	t.recs[id] = next
	if next.deleted {
		return
	}
	for name, idx := range t.index {
		if v := next.fields[name]; v != nil {
			key := t.def.field(name).indexKey(v)
			if idx[key] == nil {
				idx[key] = map[string]struct{}{}
			}
			idx[key][id] = struct{}{}
		}
	}
}

// lookup returns the live records whose indexed field f has the value v, oldest first.
func (t *table) lookup(f *fieldDef, v any) []*record {
	var out []*record
	if f.Name == "Id" {
		if s, ok := v.(string); ok {
			if id, ok := normalizeID(s); ok {
				if r := t.live(id); r != nil {
					out = append(out, r)
				}
			}
		}
		return out
	}
	idx, ok := t.index[f.Name]
	if !ok {
		// not indexed: scan
		key := f.indexKey(v)
		for _, r := range t.recs {
			if !r.deleted && r.fields[f.Name] != nil && f.indexKey(r.fields[f.Name]) == key {
				out = append(out, r)
			}
		}
	} else {
		for id := range idx[f.indexKey(v)] {
			out = append(out, t.recs[id])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// liveRecords returns the table's records, oldest first; deleted ones only if withDeleted.
func (t *table) liveRecords(withDeleted bool) []*record {
	out := make([]*record, 0, len(t.recs))
	for _, r := range t.recs {
		if withDeleted || !r.deleted {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// txn collects the changes of one write request so they can be rolled back (allOrNone)
// and reported to OnWrite once committed. It is only used under Server.mu held for writing.
type txn struct {
	st     *store
	undo   []undoEntry
	writes []writeEvent
}

type undoEntry struct {
	t    *table
	id   string
	prev *record
}

type writeEvent struct {
	object, id string
	fields     map[string]any
}

type savepoint struct{ undo, writes int }

func (tx *txn) put(t *table, r *record) {
	tx.undo = append(tx.undo, undoEntry{t: t, id: r.id, prev: t.recs[r.id]})
	t.set(r.id, r)
}

func (tx *txn) wrote(object, id string, fields map[string]any) {
	tx.writes = append(tx.writes, writeEvent{object: object, id: id, fields: maps.Clone(fields)})
}

func (tx *txn) savepoint() savepoint { return savepoint{len(tx.undo), len(tx.writes)} }

// rollbackTo undoes every change made after sp.
func (tx *txn) rollbackTo(sp savepoint) {
	for i := len(tx.undo) - 1; i >= sp.undo; i-- {
		e := tx.undo[i]
		e.t.set(e.id, e.prev)
	}
	tx.undo = slices.Delete(tx.undo, sp.undo, len(tx.undo))
	tx.writes = slices.Delete(tx.writes, sp.writes, len(tx.writes))
}

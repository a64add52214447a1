package emulator

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// table is one data extension and its rows. Rows are guarded by Server.mu.
type table struct {
	key, name, id string
	cols          []*column
	byName        map[string]int // lower-case column name → index in cols
	pk            []int          // indexes of the primary key columns, in declaration order
	rows          map[string][]string
}

func newTable(de DataExtension) *table {
	t := &table{key: de.Key, name: de.Name, id: strings.ToLower(de.ID), byName: map[string]int{}, rows: map[string][]string{}}
	if t.name == "" {
		t.name = de.Key
	}
	if t.id == "" {
		t.id = newGUID()
	}
	for i, f := range de.Fields {
		c := &column{Field: f, maxLen: defaultLength(f.Type)}
		if f.Length > 0 && c.maxLen > 0 {
			c.maxLen = f.Length
		}
		if f.PrimaryKey {
			c.Required = true
			t.pk = append(t.pk, i)
		}
		t.cols = append(t.cols, c)
		t.byName[strings.ToLower(f.Name)] = i
	}
	return t
}

// column finds a column by name; SFMC matches column names case-insensitively.
func (t *table) column(name string) (int, bool) {
	i, ok := t.byName[strings.ToLower(name)]
	return i, ok
}

// rowKey is the identity of a row whose primary key columns hold texts.
func (t *table) rowKey(texts []string) string {
	parts := make([]string, len(t.pk))
	for i, ci := range t.pk {
		parts[i] = t.cols[ci].indexKey(texts[ci])
	}
	return strings.Join(parts, "\x00")
}

// change is one validated row write: the texts of the columns it sets (set[i] true).
type change struct {
	texts []string
	set   []bool
}

func (t *table) newChange() *change {
	return &change{texts: make([]string, len(t.cols)), set: make([]bool, len(t.cols))}
}

// put records the value of one column; a problem is returned for an invalid value.
func (t *table) put(ch *change, ci int, v any) *problem {
	c := t.cols[ci]
	text, null, p := c.convert(v)
	if p != nil {
		return p
	}
	if null && c.Required {
		np := nullProblem(c.Name)
		return &np
	}
	ch.texts[ci], ch.set[ci] = text, true
	return nil
}

// overlay is a working set of rows over a table's rows: writes go to upd, reads see upd
// first. A call that must be all-or-nothing writes to a fresh upd and commits it at the end;
// otherwise upd is the table's own map.
type overlay struct {
	base, upd map[string][]string
}

func (o overlay) get(k string) ([]string, bool) {
	if r, ok := o.upd[k]; ok {
		return r, true
	}
	r, ok := o.base[k]
	return r, ok
}

// apply upserts a change whose primary key columns are all set. With insertOnly, an
// existing row is a problem. An existing row is updated column by column; a new row must
// give every required column a value.
func (t *table) apply(rows overlay, ch *change, insertOnly bool) []problem {
	k := t.rowKey(ch.texts)
	old, exists := rows.get(k)
	if exists && insertOnly {
		return []problem{{message: fmt.Sprintf("Violation of PRIMARY KEY constraint 'PK_%s'. Cannot insert duplicate key in object '%s'. The duplicate key value is (%s).",
			t.key, t.key, strings.Join(t.pkTexts(ch.texts), ", "))}}
	}
	if !exists {
		var probs []problem
		for i, c := range t.cols {
			if c.Required && !ch.set[i] {
				probs = append(probs, nullProblem(c.Name))
			}
		}
		if len(probs) > 0 {
			return probs
		}
		rows.upd[k] = slices.Clone(ch.texts)
		return nil
	}
	row := slices.Clone(old)
	for i := range t.cols {
		if ch.set[i] && !t.cols[i].PrimaryKey {
			row[i] = ch.texts[i]
		}
	}
	rows.upd[k] = row
	return nil
}

func (t *table) pkTexts(texts []string) []string {
	out := make([]string, len(t.pk))
	for i, ci := range t.pk {
		out[i] = texts[ci]
	}
	return out
}

// sortedRows returns the rows as column name → stored text, sorted by primary key values.
func (t *table) sortedRows() []map[string]string {
	rows := slices.Collect(maps.Values(t.rows))
	slices.SortFunc(rows, func(a, b []string) int {
		for _, ci := range t.pk {
			if c := cmp.Compare(a[ci], b[ci]); c != 0 {
				return c
			}
		}
		return 0
	})
	out := make([]map[string]string, len(rows))
	for i, r := range rows {
		m := make(map[string]string, len(t.cols))
		for ci, c := range t.cols {
			m[c.Name] = r[ci]
		}
		out[i] = m
	}
	return out
}

// newGUID returns a random (version 4) GUID in SFMC's lower-case form.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

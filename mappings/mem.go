package mappings

import "unsafe"

// A result is a map[string]any of small values: most of the cost of a
// record is allocating them (and collecting them later), not computing them.
// recordMem cuts that cost without changing what a result holds: the
// record's data is read in place, not copied; text taken from it (a name,
// an id, a date) is copied only when it is part of the result (keep), into
// one buffer per record, where the transforms write the text they make too
// (textBuf), instead of one allocation per text. (Values are boxed into
// `any` the ordinary way: boxing them from a slab saved 17 allocations a
// record but needs the runtime's private interface layout.)
//
// The buffers of a record are never written again once a value points into
// them, and a record never gets memory another record's result uses: each
// record starts new chunks, sized by what the previous record of the same
// state used. So results stay immutable and independent, as if each value
// had been allocated on its own.
type recordMem struct {
	// doc is the caller's data, read in place for this call only: no
	// string pointing into it may leave Apply (see keep).
	doc string

	text []byte // text copied out of doc or made by transforms; len = used

	// What the previous record used, to size the next record's chunk.
	textHint, textUsed int
}

// Chunk sizes: at least enough for a small result; at most what a large
// one needs, so one outsized record does not make the next one allocate
// (and its result keep) much more than it uses.
const (
	minTextChunk = 64
	maxTextChunk = 4 << 10
)

// start prepares for a record whose data is doc.
func (r *recordMem) start(doc string) {
	r.doc = doc
}

// finish forgets the record: the chunks stay with the result, the next
// record starts new ones.
func (r *recordMem) finish() {
	r.doc = ""
	r.text = nil
	r.textHint = min(r.textUsed, maxTextChunk)
	r.textUsed = 0
}

// inDoc reports whether s points into the caller's data.
func (r *recordMem) inDoc(s string) bool {
	if len(s) == 0 || len(r.doc) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	base := uintptr(unsafe.Pointer(unsafe.StringData(r.doc)))
	return p >= base && p < base+uintptr(len(r.doc))
}

// keep returns s, copied out of the caller's data if it points into it, so
// it can be part of the result: the caller may reuse its buffer once Apply
// returns.
func (r *recordMem) keep(s string) string {
	if !r.inDoc(s) {
		return s
	}
	return r.textDone(append(r.textBuf(len(s)), s...))
}

// textBuf returns the record's text buffer with room for n more bytes (it
// may take more): append one string's bytes to it, then call textDone. A
// nil recordMem (outside a record) gives a new buffer.
func (r *recordMem) textBuf(n int) []byte {
	if r == nil {
		return make([]byte, 0, n)
	}
	if cap(r.text)-len(r.text) < n {
		r.text = make([]byte, 0, max(r.textHint, n, minTextChunk))
	}
	return r.text
}

// textDone returns the bytes appended to b (from textBuf) as a string. If
// they did not fit, append moved them to a new array: it becomes the
// buffer.
func (r *recordMem) textDone(b []byte) string {
	i := 0
	if r != nil {
		i = len(r.text)
		r.text = b
		r.textUsed += len(b) - i
	}
	if len(b) == i {
		return ""
	}
	// The bytes from i on are never written again: a string may view them.
	return unsafe.String(&b[i], len(b)-i)
}

// copyText is string(b), in the record's text buffer.
func (r *recordMem) copyText(b []byte) string {
	return r.textDone(append(r.textBuf(len(b)), b...))
}

// str is any(s) with s kept (see keep).
func (r *recordMem) str(s string) any { return r.keep(s) }

// float is any(f).
func (r *recordMem) float(f float64) any { return f }

// int is any(i).
func (r *recordMem) int(i int64) any { return i }

// detach makes v safe to return: text pointing into the caller's data is
// copied (see keep), in composites too. It returns v itself when nothing
// needed copying.
func (r *recordMem) detach(v any) any {
	switch x := v.(type) {
	case string:
		if r.inDoc(x) {
			return r.str(x)
		}
	case []any:
		for i, e := range x {
			x[i] = r.detach(e)
		}
	case map[string]any:
		rekey := false
		for k, e := range x {
			x[k] = r.detach(e)
			rekey = rekey || r.inDoc(k)
		}
		if rekey {
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[r.keep(k)] = e
			}
			return out
		}
	}
	return v
}

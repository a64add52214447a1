package emulator

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	// maxCursors is how many query cursors stay open; older ones are dropped, as a real
	// org keeps a limited number of open query locators per user.
	maxCursors = 10
	// cursorIdle is how long an unused cursor lives.
	cursorIdle = 15 * time.Minute
)

// cursor holds the remaining rows of a query that did not fit in one page.
type cursor struct {
	id       string
	rows     []*ordered
	pageSize int
	last     time.Time
}

func (s *Server) pageSize(c *call) int {
	size := s.cfg.QueryPageSize
	for _, opt := range strings.Split(c.header.Get("Sforce-Query-Options"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "batchSize") {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 200 && n <= 2000 && n < size {
				size = n
			}
		}
	}
	return size
}

// handleQuery is GET /query?q=… (and /queryAll, which includes deleted records).
func (s *Server) handleQuery(c *call, all bool) *response {
	q := c.query.Get("q")
	if strings.TrimSpace(q) == "" {
		return errResp(http.StatusBadRequest, newErr("MALFORMED_QUERY", "A query string has to be specified"))
	}
	sq, qerr := s.parseSOQL(q)
	if qerr != nil {
		return errResp(http.StatusBadRequest, qerr.toSF(q))
	}
	sq.deleted = all
	var rows []*ordered
	var total int
	s.withRead(c, func() { rows, total = s.execute(c.base(), sq) })
	if sq.count {
		return jsonResp(http.StatusOK, orderedOf("totalSize", total, "done", true, "records", []any{}))
	}
	size := s.pageSize(c)
	if len(rows) <= size {
		return jsonResp(http.StatusOK, orderedOf("totalSize", total, "done", true, "records", rows))
	}
	cur := s.openCursor(rows, size)
	return s.page(c, cur, 0)
}

// handleQueryMore is GET /query/<locator>-<offset>.
func (s *Server) handleQueryMore(c *call, locator string) *response {
	id, offStr, ok := strings.Cut(locator, "-")
	off, err := strconv.Atoi(offStr)
	if !ok || err != nil || off < 0 {
		return errResp(http.StatusBadRequest, newErr("INVALID_QUERY_LOCATOR", "invalid query locator"))
	}
	s.cursorMu.Lock()
	cur := s.cursors[id]
	if cur != nil && time.Since(cur.last) > cursorIdle {
		delete(s.cursors, id)
		cur = nil
	}
	if cur != nil {
		cur.last = time.Now()
	}
	s.cursorMu.Unlock()
	if cur == nil || off > len(cur.rows) {
		return errResp(http.StatusBadRequest, newErr("INVALID_QUERY_LOCATOR", "invalid query locator"))
	}
	return s.page(c, cur, off)
}

func (s *Server) openCursor(rows []*ordered, size int) *cursor {
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	s.curSeq++
	cur := &cursor{id: makeID("01g", s.curSeq), rows: rows, pageSize: size, last: time.Now()}
	for len(s.cursors) >= maxCursors {
		var oldest *cursor
		for _, c := range s.cursors {
			if oldest == nil || c.last.Before(oldest.last) {
				oldest = c
			}
		}
		delete(s.cursors, oldest.id)
	}
	s.cursors[cur.id] = cur
	return cur
}

func (s *Server) page(c *call, cur *cursor, off int) *response {
	end := min(off+cur.pageSize, len(cur.rows))
	body := orderedOf("totalSize", len(cur.rows), "done", end >= len(cur.rows))
	if end < len(cur.rows) {
		body.set("nextRecordsUrl", c.base()+"/query/"+cur.id+"-"+strconv.Itoa(end))
	} else {
		s.cursorMu.Lock()
		delete(s.cursors, cur.id)
		s.cursorMu.Unlock()
	}
	body.set("records", cur.rows[off:end])
	return jsonResp(http.StatusOK, body)
}

// execute runs the query against the store (read lock held) and renders the rows.
func (s *Server) execute(base string, sq *soqlQuery) ([]*ordered, int) {
	t := s.st.table(sq.object)
	var matched []*record
	for _, r := range t.liveRecords(sq.deleted) {
		if sq.where == nil || s.eval(sq.where, r) {
			matched = append(matched, r)
		}
	}
	if len(sq.order) > 0 {
		sort.SliceStable(matched, func(i, j int) bool {
			for _, o := range sq.order {
				a, b := s.valueOf(matched[i], o.path), s.valueOf(matched[j], o.path)
				switch {
				case a == nil && b == nil:
					continue
				case a == nil:
					return o.nullsFirst
				case b == nil:
					return !o.nullsFirst
				}
				c := compareValues(o.path.leaf, a, b)
				if c == 0 {
					continue
				}
				if o.desc {
					return c > 0
				}
				return c < 0
			}
			return false
		})
	}
	if sq.offset > 0 {
		if sq.offset >= len(matched) {
			matched = nil
		} else {
			matched = matched[sq.offset:]
		}
	}
	if sq.limit >= 0 && len(matched) > sq.limit {
		matched = matched[:sq.limit]
	}
	if sq.count {
		return nil, len(matched)
	}
	rows := make([]*ordered, len(matched))
	for i, r := range matched {
		out := orderedOf("attributes", orderedOf("type", sq.object.Name, "url", recordURL(base, sq.object, r.id)))
		for _, fp := range sq.fields {
			s.setPath(base, out, r, fp, 0)
		}
		rows[i] = out
	}
	return rows, len(rows)
}

// parent returns the live record a relationship of r points to.
func (s *Server) parent(r *record, rel *fieldDef, obj *objectDef) *record {
	id, _ := r.fields[rel.Name].(string)
	if id == "" || !strings.HasPrefix(id, obj.KeyPrefix) {
		return nil
	}
	return s.st.table(obj).live(id)
}

// valueOf reads a field path from a record, following relationships.
func (s *Server) valueOf(r *record, fp fieldPath) any {
	for i, rel := range fp.rels {
		r = s.parent(r, rel, fp.objs[i])
		if r == nil {
			return nil
		}
	}
	return r.fields[fp.leaf.Name]
}

// setPath writes a selected field into a row; relationship fields nest under the
// relationship name, as {"Member": {"attributes": …, "MembershipNumber": …}}.
func (s *Server) setPath(base string, out *ordered, r *record, fp fieldPath, depth int) {
	if depth == len(fp.rels) {
		out.set(fp.leaf.Name, r.fields[fp.leaf.Name])
		return
	}
	rel, obj := fp.rels[depth], fp.objs[depth]
	pr := s.parent(r, rel, obj)
	existing, ok := out.get(rel.RelationshipName)
	if pr == nil {
		if !ok {
			out.set(rel.RelationshipName, nil)
		}
		return
	}
	child, _ := existing.(*ordered)
	if child == nil {
		child = orderedOf("attributes", orderedOf("type", obj.Name, "url", recordURL(base, obj, pr.id)))
		out.set(rel.RelationshipName, child)
	}
	s.setPath(base, child, pr, fp, depth+1)
}

// compareValues orders two non-nil stored values of field f; text compares
// case-insensitively, as SOQL does: equal when foldKey says so, as external
// ids match, else in lower-case order.
func compareValues(f *fieldDef, a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		if f.Type == tID || f.Type == tReference {
			return strings.Compare(x, y)
		}
		if foldKey(x) == foldKey(y) {
			return 0
		}
		if c := strings.Compare(strings.ToLower(x), strings.ToLower(y)); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	case float64:
		y, _ := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return 0
}

func (s *Server) eval(c cond, r *record) bool {
	switch x := c.(type) {
	case andCond:
		for _, e := range x {
			if !s.eval(e, r) {
				return false
			}
		}
		return true
	case orCond:
		for _, e := range x {
			if s.eval(e, r) {
				return true
			}
		}
		return false
	case notCond:
		return !s.eval(x.c, r)
	case groupCond:
		return s.eval(x.c, r)
	case inCond:
		v := s.valueOf(r, x.path)
		found := false
		for _, want := range x.vals {
			if (v == nil && want == nil) || (v != nil && want != nil && compareValues(x.path.leaf, v, want) == 0) {
				found = true
				break
			}
		}
		return found != x.not
	case cmpCond:
		v := s.valueOf(r, x.path)
		switch x.op {
		case "like":
			str, ok := v.(string)
			return ok && x.like.MatchString(str)
		case "=":
			if x.val == nil || v == nil {
				return x.val == nil && v == nil
			}
			return compareValues(x.path.leaf, v, x.val) == 0
		case "!=":
			if x.val == nil || v == nil {
				return (x.val == nil) != (v == nil)
			}
			return compareValues(x.path.leaf, v, x.val) != 0
		}
		if v == nil {
			return false
		}
		cmp := compareValues(x.path.leaf, v, x.val)
		switch x.op {
		case "<":
			return cmp < 0
		case "<=":
			return cmp <= 0
		case ">":
			return cmp > 0
		case ">=":
			return cmp >= 0
		}
	}
	return false
}

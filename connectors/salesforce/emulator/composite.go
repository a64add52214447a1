package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

const (
	maxSubrequests = 25
	// maxHeavySubrequests is how many sObject Collections or query subrequests one
	// composite request may hold.
	maxHeavySubrequests = 5
)

type compositeBody struct {
	AllOrNone          bool           `json:"allOrNone"`
	CollateSubrequests *bool          `json:"collateSubrequests"`
	CompositeRequest   []compositeSub `json:"compositeRequest"`
}

type compositeSub struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        json.RawMessage   `json:"body"`
	HTTPHeaders map[string]string `json:"httpHeaders"`
}

var (
	refIDRe     = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	referenceRe = regexp.MustCompile(`@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[[0-9]+\])*)\}`)
	subPathRe   = regexp.MustCompile(`^/services/data/v([0-9]+)\.0(/.*)?$`)
)

var errHalted = newErr("PROCESSING_HALTED", "The transaction was rolled back since another operation in the same transaction failed.")

// parsedSub is a validated subrequest.
type parsedSub struct {
	sub    compositeSub
	verNum int
	rt     route
}

// handleComposite is POST /composite: up to 25 subrequests in one call and, with
// allOrNone, one transaction.
func (s *Server) handleComposite(c *call) *response {
	if c.sub {
		return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "A composite request cannot contain another composite request"))
	}
	var body compositeBody
	if err := decodeJSON(c.body, &body); err != nil {
		return errResp(http.StatusBadRequest, err)
	}
	n := len(body.CompositeRequest)
	if n == 0 {
		return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest: at least one subrequest is required"))
	}
	if n > maxSubrequests {
		return errResp(http.StatusBadRequest, newErr("LIMIT_EXCEEDED", "compositeRequest holds %d subrequests: a composite request can hold at most %d", n, maxSubrequests))
	}
	subs := make([]parsedSub, n)
	seen := map[string]bool{}
	heavy := 0
	for i, sub := range body.CompositeRequest {
		if !refIDRe.MatchString(sub.ReferenceID) {
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest[%d].referenceId %q: a reference id of letters, digits and underscores is required", i, sub.ReferenceID))
		}
		if seen[sub.ReferenceID] {
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "Duplicate ReferenceId provided in the request: %s", sub.ReferenceID))
		}
		seen[sub.ReferenceID] = true
		switch sub.Method {
		case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		default:
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest[%d].method %q: want GET, POST, PATCH, PUT or DELETE", i, sub.Method))
		}
		path, _, _ := strings.Cut(sub.URL, "?")
		m := subPathRe.FindStringSubmatch(path)
		if m == nil {
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest[%d].url %q: want a URL starting with /services/data/vXX.X/", i, sub.URL))
		}
		ver, _ := strconv.Atoi(m[1])
		segs := pathSegments(strings.TrimPrefix(m[2], "/"))
		if len(segs) > 0 && segs[len(segs)-1] == "" {
			segs = segs[:len(segs)-1]
		}
		rt := s.route(sub.Method, segs)
		if rt.kind == "composite" {
			return errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest[%d]: a composite request cannot contain another composite request", i))
		}
		if strings.HasPrefix(rt.kind, "collections.") || rt.kind == "query" || rt.kind == "queryMore" {
			heavy++
		}
		subs[i] = parsedSub{sub: sub, verNum: ver, rt: rt}
	}
	if heavy > maxHeavySubrequests {
		return errResp(http.StatusBadRequest, newErr("LIMIT_EXCEEDED",
			"compositeRequest holds %d sObject Collections or query subrequests: a composite request can hold at most %d of them", heavy, maxHeavySubrequests))
	}

	results := make([]*ordered, n)
	bodies := map[string]any{} // referenceId → decoded response body, for @{…} references
	failedRefs := map[string]bool{}
	s.mu.Lock()
	tx := &txn{st: s.st}
	halted := false
	for i, ps := range subs {
		sub := ps.sub
		if halted {
			results[i] = subResult(sub.ReferenceID, errResp(http.StatusBadRequest, errHalted))
			continue
		}
		target, rerr := substitute(sub.URL, bodies, failedRefs, true)
		var subBody []byte
		if rerr == nil && len(sub.Body) > 0 && sub.Method != http.MethodGet && sub.Method != http.MethodDelete {
			var b string
			b, rerr = substitute(string(sub.Body), bodies, failedRefs, false)
			subBody = []byte(b)
		}
		var resp *response
		if rerr != nil {
			resp = errResp(http.StatusBadRequest, rerr)
		} else if u, err := url.Parse(target); err != nil || subPathRe.FindStringSubmatch(u.Path) == nil {
			resp = errResp(http.StatusBadRequest, newErr("INVALID_INPUT", "compositeRequest[%d].url %q is not a valid URL after references were replaced", i, target))
		} else {
			path, _, _ := strings.Cut(target, "?")
			m := subPathRe.FindStringSubmatch(path)
			segs := pathSegments(strings.TrimPrefix(m[2], "/"))
			if len(segs) > 0 && segs[len(segs)-1] == "" {
				segs = segs[:len(segs)-1]
			}
			rt := s.route(sub.Method, segs)
			hdr := http.Header{}
			for k, v := range sub.HTTPHeaders {
				hdr.Set(k, v)
			}
			sc := &call{version: strconv.Itoa(ps.verNum) + ".0", verNum: ps.verNum, method: sub.Method, segs: segs,
				query: u.Query(), header: hdr, body: subBody, tx: tx, allOrNone: body.AllOrNone, sub: true}
			s.countSub(rt.kind)
			if ps.verNum < minAPIVersion || ps.verNum > s.cfg.apiVersionNumber() {
				resp = errResp(http.StatusNotFound, errNotFound)
			} else {
				resp = rt.handler(sc)
			}
		}
		failed := resp.status >= 400 || (body.AllOrNone && resp.recordFailures)
		results[i] = subResult(sub.ReferenceID, resp)
		if failed {
			failedRefs[sub.ReferenceID] = true
			if body.AllOrNone {
				tx.rollbackTo(savepoint{})
				halted = true
				for j := 0; j < i; j++ {
					results[j] = subResult(subs[j].sub.ReferenceID, errResp(http.StatusBadRequest, errHalted))
				}
			}
			continue
		}
		bodies[sub.ReferenceID] = generic(resp.body)
	}
	s.commit(tx)
	return jsonResp(http.StatusOK, orderedOf("compositeResponse", results))
}

func subResult(ref string, resp *response) *ordered {
	headers := map[string]string{}
	for k, v := range resp.header {
		if k != "Allow" {
			headers[k] = v
		}
	}
	return orderedOf("body", resp.body, "httpHeaders", headers, "httpStatusCode", resp.status, "referenceId", ref)
}

// generic turns a response body into plain JSON values for reference lookups.
func generic(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&out) != nil {
		return nil
	}
	return out
}

// substitute replaces @{ref.path} references with values from earlier responses. In a
// URL the value is path-escaped; in a JSON body it is escaped for a JSON string.
func substitute(text string, bodies map[string]any, failed map[string]bool, inURL bool) (string, *sfError) {
	var serr *sfError
	out := referenceRe.ReplaceAllStringFunc(text, func(m string) string {
		if serr != nil {
			return m
		}
		sm := referenceRe.FindStringSubmatch(m)
		ref, path := sm[1], sm[2]
		body, ok := bodies[ref]
		if !ok {
			if failed[ref] {
				serr = newErr("PROCESSING_HALTED", "Invalid reference specified. No value for %s%s found in %s. Provided referenceId ('%s') must be a successful subrequest before it is used.", ref, path, ref, ref)
			} else {
				serr = newErr("PROCESSING_HALTED", "Invalid reference specified. Provided referenceId ('%s') must be defined before it is used.", ref)
			}
			return m
		}
		v, found := walkPath(body, path)
		if !found {
			serr = newErr("PROCESSING_HALTED", "Invalid reference specified. No value for %s%s found in %s.", ref, path, ref)
			return m
		}
		str := fmt.Sprint(v)
		if v == nil {
			str = ""
		}
		if inURL {
			return url.PathEscape(str)
		}
		b, _ := json.Marshal(str)
		return string(b[1 : len(b)-1])
	})
	return out, serr
}

var pathTokRe = regexp.MustCompile(`\.([A-Za-z0-9_]+)|\[([0-9]+)\]`)

// walkPath follows ".field" and "[n]" steps into a decoded JSON value. Field names match
// case-insensitively, as Salesforce field names do.
func walkPath(v any, path string) (any, bool) {
	for _, tok := range pathTokRe.FindAllStringSubmatch(path, -1) {
		switch {
		case tok[1] != "":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			val, ok := m[tok[1]]
			if !ok {
				for k, x := range m {
					if strings.EqualFold(k, tok[1]) {
						val, ok = x, true
						break
					}
				}
			}
			if !ok {
				return nil, false
			}
			v = val
		default:
			a, ok := v.([]any)
			idx, _ := strconv.Atoi(tok[2])
			if !ok || idx >= len(a) {
				return nil, false
			}
			v = a[idx]
		}
	}
	return v, true
}

package openapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxJSONDepth is how deeply an ingress body may nest objects and arrays.
// CloudEvents of the hub's entities nest a few levels; a body nesting
// deeper is an attack on parsers, not an event.
const MaxJSONDepth = 64

// jsonFault is what scanJSON found wrong with a body that encoding/json
// accepted: a key repeated in one object, nesting deeper than
// MaxJSONDepth, or a string escape that decodes to no character.
type jsonFault struct {
	// path is where, as keys and array indexes from the top ("0", "data",
	// "version").
	path []string
	// offset is the byte offset of the fault in the body.
	offset int
	rule   string
	// depth is true for a nesting fault: the body cannot be read on.
	depth bool
}

// scanJSON checks what encoding/json lets through and the hub must not:
// repeated keys (encoding/json keeps the last, gjson the first, so two
// readers of one event would disagree on what it says), nesting beyond
// MaxJSONDepth, and escapes of lone UTF-16 surrogates (which decode to
// U+FFFD, so the bytes and the value would differ). body must be valid JSON
// and valid UTF-8 (the caller checked both). Keys are compared as decoded,
// so "version" and "ver\u0073ion" are one key.
func scanJSON(body []byte) []jsonFault {
	type frame struct {
		object bool
		keys   map[string]struct{}
		key    string // the current key (object) ...
		index  int    // ... or element index (array)
		expect bool   // object: the next string is a key
	}
	var (
		faults []jsonFault
		stack  []*frame
	)
	path := func(last string) []string {
		out := make([]string, 0, len(stack)+1)
		for _, f := range stack {
			if f.object {
				out = append(out, f.key)
			} else {
				out = append(out, strconv.Itoa(f.index))
			}
		}
		if last != "" {
			out[len(out)-1] = last
		}
		return out
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case '{', '[':
			if len(stack) >= MaxJSONDepth {
				faults = append(faults, jsonFault{path: path(""), offset: i, depth: true,
					rule: fmt.Sprintf("must nest objects and arrays at most %d levels deep", MaxJSONDepth)})
				return faults
			}
			stack = append(stack, &frame{object: c == '{', expect: c == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := stack[len(stack)-1]; top.object {
				top.expect = true
			} else {
				top.index++
			}
		case '"':
			end, escaped := stringEnd(body, i)
			raw := body[i : end+1]
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expect
			if escaped {
				if bad := loneSurrogate(raw); bad >= 0 {
					at, rule := pathOrTop(path("")), `must not escape a lone UTF-16 surrogate (\ud800 to \udfff without its pair): it decodes to no character`
					if isKey {
						// The key's object, not the key before it.
						at, rule = pathOrTop(path("")[:len(stack)-1]), "must not escape a lone UTF-16 surrogate in a key (\\ud800 to \\udfff without its pair): it decodes to no character"
					}
					faults = append(faults, jsonFault{path: at, offset: i + bad, rule: rule})
				}
			}
			if isKey {
				top := stack[len(stack)-1]
				key := string(raw[1 : len(raw)-1])
				if escaped {
					_ = json.Unmarshal(raw, &key) // raw is a valid JSON string
				}
				top.key, top.expect = key, false
				if top.keys == nil {
					top.keys = make(map[string]struct{}, 8)
				}
				if _, dup := top.keys[key]; dup {
					faults = append(faults, jsonFault{path: path(key), offset: i,
						rule: "must appear once in its object: the key is repeated, and readers differ on which copy counts"})
				}
				top.keys[key] = struct{}{}
			}
			i = end
		}
	}
	return faults
}

func pathOrTop(p []string) []string {
	if len(p) == 0 {
		return nil
	}
	return p
}

// stringEnd returns the index of the closing quote of the JSON string
// starting at body[start], and whether it holds a backslash escape.
func stringEnd(body []byte, start int) (end int, escaped bool) {
	for j := start + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return len(body) - 1, escaped
}

// loneSurrogate returns the offset in raw (a JSON string with its quotes)
// of a \u escape of a surrogate that is not part of a valid pair, or -1.
func loneSurrogate(raw []byte) int {
	for j := 1; j < len(raw)-1; j++ {
		if raw[j] != '\\' {
			continue
		}
		if raw[j+1] != 'u' || j+6 > len(raw)-1 {
			j++
			continue
		}
		r1, ok := hex4(raw[j+2 : j+6])
		if !ok || !utf16IsSurrogate(r1) {
			j += 5
			continue
		}
		// A high surrogate must be followed by \u and a low one.
		if r1 < 0xDC00 && j+12 <= len(raw)-1 && raw[j+6] == '\\' && raw[j+7] == 'u' {
			if r2, ok := hex4(raw[j+8 : j+12]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				j += 11
				continue
			}
		}
		return j
	}
	return -1
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

func hex4(b []byte) (rune, bool) {
	n, err := strconv.ParseUint(string(b), 16, 32)
	return rune(n), err == nil
}

// invalidUTF8 returns the offset of the first byte of body that is not
// valid UTF-8, or -1. encoding/json replaces such bytes with U+FFFD, so the
// stored bytes and the value read from them would differ.
func invalidUTF8(body []byte) int {
	if utf8.Valid(body) {
		return -1
	}
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

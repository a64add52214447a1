package emulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Rows returns copies of the stored rows of the data extension with external key deKey
// (case-insensitive): column name → stored text, every column present ("" for null),
// sorted by primary key values (as text, in key column order). Stored text is Boolean as
// "True"/"False", Number as decimal integer text, Decimal and Date as given, text as given.
// It returns nil for an unknown key.
func (s *Server) Rows(deKey string) []map[string]string {
	t := s.byKey[strings.ToLower(deKey)]
	if t == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.sortedRows()
}

// DataExtensions returns the external keys of the data extensions, sorted.
func (s *Server) DataExtensions() []string {
	out := make([]string, len(s.tables))
	for i, t := range s.tables {
		out[i] = t.key
	}
	slices.Sort(out)
	return out
}

// deSummary describes a data extension on GET /__emulator/dataextensions.
type deSummary struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	ID   string `json:"id"`
	Rows int    `json:"rows"`
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

const adminHelp = "see GET /__emulator/dataextensions, GET /__emulator/dataextensions/{key}/rows, GET /__emulator/calls, " +
	"GET/POST/DELETE /__emulator/faults[/{id}], POST /__emulator/tokens/expire"

// handleAdmin serves /__emulator/: inspection and controls for demos and tests. It is not
// part of Marketing Cloud's API and needs no token.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	segs := pathSegments(strings.TrimPrefix(r.URL.EscapedPath(), "/__emulator"))
	route := r.Method + " " + segs[0]
	switch {
	case route == "GET dataextensions" && len(segs) == 1:
		out := make([]deSummary, 0, len(s.tables))
		s.mu.Lock()
		for _, t := range s.tables {
			out = append(out, deSummary{Key: t.key, Name: t.name, ID: t.id, Rows: len(t.rows)})
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b deSummary) int { return strings.Compare(a.Key, b.Key) })
		adminJSON(w, http.StatusOK, out)
	case route == "GET dataextensions" && len(segs) == 3 && segs[2] == "rows":
		rows := s.Rows(segs[1])
		if rows == nil {
			adminError(w, http.StatusNotFound, "unknown data extension key "+segs[1]+"; keys: "+strings.Join(s.DataExtensions(), ", "))
			return
		}
		adminJSON(w, http.StatusOK, rows)
	case route == "GET calls" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.Calls())
	case route == "GET faults" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.Faults())
	case route == "POST faults" && len(segs) == 1:
		var f Fault // JSON with the latency as a duration string
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			adminError(w, http.StatusBadRequest, "fault body: "+err.Error()+` (want {"kind":"http_429","count":3,"latency":"250ms","operations":["rowset.upsert"]})`)
			return
		}
		id, err := s.AddFault(f)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.ID = id
		adminJSON(w, http.StatusCreated, f)
	case route == "DELETE faults" && len(segs) == 1:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case route == "DELETE faults" && len(segs) == 2:
		if !s.RemoveFault(segs[1]) {
			adminError(w, http.StatusNotFound, "no active fault "+segs[1])
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case route == "POST tokens" && len(segs) == 2 && segs[1] == "expire":
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	default:
		adminError(w, http.StatusNotFound, "unknown emulator resource "+r.Method+" "+r.URL.Path+"; "+adminHelp)
	}
}

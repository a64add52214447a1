package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
)

// objectSummary describes an object on GET /__emulator/objects.
type objectSummary struct {
	Name       string `json:"name"`
	PrimaryKey string `json:"primaryKey"`
	Records    int    `json:"records"`
	Pending    int    `json:"pending"` // accepted requests not processed yet
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

const adminHelp = "see GET /__emulator/objects, GET /__emulator/objects/{object}/records, GET /__emulator/calls, " +
	"GET/POST/DELETE /__emulator/faults[/{id}], POST /__emulator/tokens/expire, POST /__emulator/flush"

// handleAdmin serves /__emulator/: inspection and controls for demos and tests. It is not
// part of Salesforce's API and needs no token.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	segs := pathSegments(strings.TrimPrefix(r.URL.EscapedPath(), "/__emulator"))
	route := r.Method + " " + segs[0]
	switch {
	case route == "GET objects" && len(segs) == 1:
		out := make([]objectSummary, 0, len(s.objects))
		for _, name := range s.objectNames() {
			o := s.objects[name]
			out = append(out, objectSummary{Name: name, PrimaryKey: o.pk.Name, Records: len(s.Records(name)), Pending: s.pendingCount(o)})
		}
		adminJSON(w, http.StatusOK, out)
	case route == "GET objects" && len(segs) == 3 && segs[2] == "records":
		recs := s.Records(segs[1])
		if recs == nil {
			adminError(w, http.StatusNotFound, "unknown object "+segs[1]+"; objects: "+strings.Join(s.objectNames(), ", "))
			return
		}
		adminJSON(w, http.StatusOK, recs)
	case route == "GET calls" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.Calls())
	case route == "GET faults" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.Faults())
	case route == "POST faults" && len(segs) == 1:
		var f Fault // JSON with the latency as a duration string
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			adminError(w, http.StatusBadRequest, "fault body: "+err.Error()+` (want {"kind":"http_429","count":3,"latency":"250ms","operations":["ingest.upsert"]})`)
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
	case route == "POST flush" && len(segs) == 1:
		s.Flush()
		w.WriteHeader(http.StatusNoContent)
	default:
		adminError(w, http.StatusNotFound, "unknown emulator resource "+r.Method+" "+r.URL.Path+"; "+adminHelp)
	}
}

package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// faultJSON is a Fault on the admin API, with latency as a duration string ("250ms").
type faultJSON struct {
	ID          string    `json:"id,omitempty"`
	Kind        FaultKind `json:"kind"`
	Probability float64   `json:"probability,omitempty"`
	Count       int       `json:"count,omitempty"`
	Latency     string    `json:"latency,omitempty"`
	Operations  []string  `json:"operations,omitempty"`
	Objects     []string  `json:"objects,omitempty"`
	Fired       int       `json:"fired"`
}

func toFaultJSON(f Fault) faultJSON {
	out := faultJSON{ID: f.ID, Kind: f.Kind, Probability: f.Probability, Count: f.Count,
		Operations: f.Operations, Objects: f.Objects, Fired: f.Fired}
	if f.Latency > 0 {
		out.Latency = f.Latency.String()
	}
	return out
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

// handleAdmin serves /__emulator/: emulator controls that are not part of Salesforce.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/__emulator"), "/"), "/")
	route := r.Method + " " + segs[0]
	switch {
	case route == "GET faults" && len(segs) == 1:
		faults := s.Faults()
		out := make([]faultJSON, len(faults))
		for i, f := range faults {
			out[i] = toFaultJSON(f)
		}
		adminJSON(w, http.StatusOK, out)
	case route == "POST faults" && len(segs) == 1:
		var in faultJSON
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			adminError(w, http.StatusBadRequest, "fault body: "+err.Error()+` (want {"kind":"http_429","probability":0.5,"count":3,"latency":"250ms","operations":["collections"],"objects":["Contact"]})`)
			return
		}
		f := Fault{Kind: in.Kind, Probability: in.Probability, Count: in.Count, Operations: in.Operations, Objects: in.Objects}
		if in.Latency != "" {
			d, err := time.ParseDuration(in.Latency)
			if err != nil {
				adminError(w, http.StatusBadRequest, "fault latency "+in.Latency+": want a duration such as 250ms")
				return
			}
			f.Latency = d
		}
		id, err := s.AddFault(f)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.ID = id
		adminJSON(w, http.StatusCreated, toFaultJSON(f))
	case route == "DELETE faults" && len(segs) == 1:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case route == "DELETE faults" && len(segs) == 2:
		if !s.RemoveFault(segs[1]) {
			adminError(w, http.StatusNotFound, "no active fault "+segs[1])
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case route == "GET records" && len(segs) == 2:
		recs := s.Records(segs[1])
		if recs == nil {
			adminError(w, http.StatusNotFound, "unknown object "+segs[1]+"; objects: "+strings.Join(s.Objects(), ", "))
			return
		}
		adminJSON(w, http.StatusOK, recs)
	case route == "GET jobs" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.BulkJobs())
	case route == "GET stats" && len(segs) == 1:
		adminJSON(w, http.StatusOK, s.Stats())
	case route == "POST reset" && len(segs) == 1:
		if err := s.Reset(); err != nil {
			adminError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case route == "POST usage" && len(segs) == 1:
		var in struct {
			Used *int `json:"used"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Used == nil || *in.Used < 0 {
			adminError(w, http.StatusBadRequest, `usage body: want {"used":N} with N >= 0`)
			return
		}
		s.SetAPIUsage(*in.Used)
		w.WriteHeader(http.StatusNoContent)
	case route == "POST sessions" && len(segs) == 2 && segs[1] == "expire":
		s.ExpireSessions()
		w.WriteHeader(http.StatusNoContent)
	default:
		adminError(w, http.StatusNotFound, "unknown emulator admin resource "+r.Method+" "+r.URL.Path+
			"; see GET/POST/DELETE /__emulator/faults, GET /__emulator/records/{Obj}, GET /__emulator/jobs, GET /__emulator/stats, POST /__emulator/reset, POST /__emulator/usage, POST /__emulator/sessions/expire")
	}
}

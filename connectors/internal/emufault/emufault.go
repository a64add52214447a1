// Package emufault is the fault injection and call counting the SaaS
// emulators share: rules that make a call answer 429 or 500, or wait, before
// the emulator processes it, each limited to some operations and a number of
// firings. What a 429 or a 500 looks like is each emulator's own.
package emufault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind names an injectable failure.
type Kind string

const (
	// TooManyRequests answers HTTP 429 before the call is processed.
	TooManyRequests Kind = "http_429"
	// ServerError answers HTTP 500 before the call is processed.
	ServerError Kind = "http_500"
	// Latency delays the call by Fault.Latency before it is processed.
	Latency Kind = "latency"
)

var kinds = []Kind{TooManyRequests, ServerError, Latency}

// Fault is one injected failure rule. A call matching Operations fires the
// first matching fault of each kind: latency first, then 429, then 500. A
// fault with Count > 0 is removed after firing Count times; with Count 0 it
// stays until removed. On the admin API a fault is JSON with the latency as
// a duration string: {"kind":"latency","latency":"250ms","count":3}.
type Fault struct {
	// ID identifies the fault; set by Set.Add.
	ID string
	// Kind of failure. Required.
	Kind Kind
	// Count is how many times the fault fires before it is removed. Default 0: unlimited.
	Count int
	// Latency added by a Latency fault, e.g. 250ms. Required for that kind.
	Latency time.Duration
	// Operations restricts the fault to these operations, named as the
	// emulator counts its calls. Default: the emulator's default set.
	Operations []string
	// Fired is how many times the fault has fired (read-only).
	Fired int
}

// faultJSON is a Fault on the wire.
type faultJSON struct {
	ID         string   `json:"id,omitempty"`
	Kind       Kind     `json:"kind"`
	Count      int      `json:"count,omitempty"`
	Latency    string   `json:"latency,omitempty"`
	Operations []string `json:"operations,omitempty"`
	Fired      int      `json:"fired"`
}

// MarshalJSON writes the latency as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	out := faultJSON{ID: f.ID, Kind: f.Kind, Count: f.Count, Operations: f.Operations, Fired: f.Fired}
	if f.Latency > 0 {
		out.Latency = f.Latency.String()
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a fault strictly (unknown fields are errors), the
// latency as a duration string.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var in faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*f = Fault{ID: in.ID, Kind: in.Kind, Count: in.Count, Operations: in.Operations, Fired: in.Fired}
	if in.Latency != "" {
		d, err := time.ParseDuration(in.Latency)
		if err != nil {
			return fmt.Errorf("fault latency %s: want a duration such as 250ms", in.Latency)
		}
		f.Latency = d
	}
	return nil
}

// Set holds an emulator's active faults and counts its calls.
type Set struct {
	ops          []string
	defaultMatch func(op string) bool

	mu     sync.Mutex
	faults []*Fault
	seq    int
	calls  map[string]int
}

// New returns an empty set for an emulator whose operations are ops; a
// fault without Operations fires on the operations defaultMatch takes.
func New(ops []string, defaultMatch func(op string) bool) *Set {
	return &Set{ops: ops, defaultMatch: defaultMatch, calls: map[string]int{}}
}

func (s *Set) validate(f *Fault) error {
	if !slices.Contains(kinds, f.Kind) {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		return fmt.Errorf("fault Kind %q: want one of %s", f.Kind, strings.Join(names, ", "))
	}
	if f.Count < 0 {
		return fmt.Errorf("fault Count %d: want 0 (unlimited) or more", f.Count)
	}
	if f.Kind == Latency && f.Latency <= 0 {
		return fmt.Errorf("fault Latency %s: a latency fault needs a positive latency", f.Latency)
	}
	for _, op := range f.Operations {
		if !slices.Contains(s.ops, op) {
			return fmt.Errorf("fault Operations: %q is not an operation; want some of %s", op, strings.Join(s.ops, ", "))
		}
	}
	return nil
}

// Add activates a fault and returns its id.
func (s *Set) Add(f Fault) (string, error) {
	if err := s.validate(&f); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	f.ID = "f" + strconv.Itoa(s.seq)
	f.Fired = 0
	f.Operations = slices.Clone(f.Operations)
	s.faults = append(s.faults, &f)
	return f.ID, nil
}

// Remove deactivates one fault; it reports whether the fault was active.
func (s *Set) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.ID == id {
			s.faults = slices.Delete(s.faults, i, i+1)
			return true
		}
	}
	return false
}

// Clear deactivates every fault.
func (s *Set) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// List returns copies of the active faults.
func (s *Set) List() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
		out[i].Operations = slices.Clone(f.Operations)
	}
	return out
}

// fire fires the first active fault of kind matching op and returns a copy.
func (s *Set) fire(kind Kind, op string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		match := slices.Contains(f.Operations, op) || (len(f.Operations) == 0 && s.defaultMatch(op))
		if f.Kind != kind || !match {
			continue
		}
		f.Fired++
		fired := *f
		if f.Count > 0 && f.Fired >= f.Count {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &fired
	}
	return nil
}

// Apply applies the faults of a call of op: it waits out a latency fault
// (or until ctx ends), then returns TooManyRequests or ServerError when such
// a fault fires, for the emulator to answer; "" lets the call through.
func (s *Set) Apply(ctx context.Context, op string) Kind {
	if f := s.fire(Latency, op); f != nil {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	for _, k := range []Kind{TooManyRequests, ServerError} {
		if s.fire(k, op) != nil {
			return k
		}
	}
	return ""
}

// Count counts one call of op.
func (s *Set) Count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

// Calls returns the calls counted, by operation.
func (s *Set) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls forgets the calls counted.
func (s *Set) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

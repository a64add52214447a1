package connectors

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Spec registers a built-in connector under a name ("salesforce").
type Spec struct {
	Name string
	// New returns an unconfigured connector; it must not do I/O.
	New func(logger *slog.Logger) Connector
}

var (
	mu    sync.RWMutex
	specs = map[string]Spec{}
)

// Register adds a built-in connector; it panics on a duplicate name, as two
// connectors with one name is a programming error.
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := specs[s.Name]; dup {
		panic(fmt.Sprintf("connectors: %q registered twice", s.Name))
	}
	specs[s.Name] = s
}

// Lookup returns the built-in connector registered under name.
func Lookup(name string) (Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := specs[name]
	return s, ok
}

// Names lists the registered connectors, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(specs))
	for n := range specs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

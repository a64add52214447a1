package connectors

import (
	"errors"
	"sync"
)

// Settings keeps what a connector builds at Configure (its parsed config,
// an HTTP client) until Close, safe for concurrent use: Get gives it, or a
// Permanent error saying the connector is not configured or closed.
type Settings[T any] struct {
	mu     sync.Mutex
	cur    *T
	closed bool
}

// Set replaces the settings; op names the caller in the error once closed.
func (s *Settings[T]) Set(op string, v T) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return E(op, Permanent, errors.New("connector is closed"))
	}
	s.cur = &v
	return nil
}

// Get returns the settings.
func (s *Settings[T]) Get(op string) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	switch {
	case s.closed:
		return zero, E(op, Permanent, errors.New("connector is closed"))
	case s.cur == nil:
		return zero, E(op, Permanent, errors.New("connector is not configured: call Configure first"))
	}
	return *s.cur, nil
}

// Close marks the connector closed and returns the last settings, to
// release them; false when it was never configured.
func (s *Settings[T]) Close() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cur == nil {
		var zero T
		return zero, false
	}
	return *s.cur, true
}

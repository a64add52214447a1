package store

import "time"

// SetClock replaces the clock of s (a *SQLite or *Postgres) for tests of
// time-dependent behaviour (Prune, timestamps). Call it before using s.
func SetClock(s Store, now func() time.Time) {
	switch s := s.(type) {
	case *SQLite:
		s.now = now
	case *Postgres:
		s.now = now
	default:
		panic("store.SetClock: unknown store type")
	}
}

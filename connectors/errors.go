package connectors

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error so callers branch on it, never on message text.
// Values cross the plugin wire: append only.
type Kind int

const (
	// Other is unclassified; the hub treats it as Transient.
	Other Kind = iota
	// Transient: try again later (network, 5xx, 429, locks, limits).
	Transient
	// Permanent: the same request will fail again (bad input, bad config).
	Permanent
	// Auth: credentials are wrong or expired and could not be refreshed.
	Auth
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Auth:
		return "auth"
	}
	return "other"
}

// Error is an error with an operation, a kind and an optional wait.
type Error struct {
	Op         string
	Kind       Kind
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error.
func E(op string, kind Kind, err error) error {
	return &Error{Op: op, Kind: kind, Err: err}
}

// KindOf returns the Kind of the outermost *Error in err's chain, Other if none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// RetryAfterOf returns the wait asked for by the first *Error in err's chain.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

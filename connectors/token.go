package connectors

import (
	"context"
	"sync"
	"time"
)

// TokenCache keeps a connector's access token (T: the token and what goes
// with it, such as the instance URL) until shortly before it expires, and
// renews it once for all the callers that find it stale at the same time.
type TokenCache[T any] struct {
	// Slack is how long before its expiry a token is renewed. Default 1m.
	Slack time.Duration

	renew sync.Mutex // one renewal at a time
	mu    sync.Mutex // guards cur and expires
	cur   *T
	exp   time.Time
}

// Get returns the cached token, or a new one from fetch when there is none,
// it is about to expire, or fresh is set (the target refused it: a 401).
// fetch returns the token and when it expires. A caller that waited while
// another renewed the token takes that one.
func (c *TokenCache[T]) Get(ctx context.Context, fresh bool, fetch func(context.Context) (*T, time.Time, error)) (*T, error) {
	old, ok := c.valid()
	if ok && !fresh {
		return old, nil
	}
	c.renew.Lock()
	defer c.renew.Unlock()
	if cur, ok := c.valid(); ok && cur != old {
		return cur, nil // renewed by another caller meanwhile
	}
	t, exp, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cur, c.exp = t, exp
	c.mu.Unlock()
	return t, nil
}

// Drop forgets the token (new credentials, or the connector closing).
func (c *TokenCache[T]) Drop() {
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
}

func (c *TokenCache[T]) valid() (*T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	slack := c.Slack
	if slack == 0 {
		slack = time.Minute
	}
	return c.cur, c.cur != nil && time.Until(c.exp) > slack
}

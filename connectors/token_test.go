package connectors_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

func TestTokenCache(t *testing.T) {
	var c connectors.TokenCache[string]
	var fetches atomic.Int32
	fetch := func(ttl time.Duration) func(context.Context) (*string, time.Time, error) {
		return func(context.Context) (*string, time.Time, error) {
			n := fetches.Add(1)
			s := string(rune('a' + n - 1))
			time.Sleep(10 * time.Millisecond)
			return &s, time.Now().Add(ttl), nil
		}
	}
	ctx := context.Background()

	// Many callers at once: one fetch.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Get(ctx, false, fetch(time.Hour))
			assert.NoError(t, err)
			assert.Equal(t, "a", *tok)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), fetches.Load())

	// fresh renews; a token about to expire is renewed.
	tok, err := c.Get(ctx, true, fetch(30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, "b", *tok)
	tok, err = c.Get(ctx, false, fetch(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "c", *tok, "30s left is under the one-minute slack")
	c.Drop()
	tok, _ = c.Get(ctx, false, fetch(time.Hour))
	assert.Equal(t, "d", *tok)
}

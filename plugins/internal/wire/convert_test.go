package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

func TestValuesKeepTheirGoTypes(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"int64 beyond float precision", int64(1)<<60 + 1, int64(1)<<60 + 1},
		{"int widens to int64", 42, int64(42)},
		{"float64 stays float even when whole", 3.0, 3.0},
		{"json.Number int", json.Number("12"), int64(12)},
		{"json.Number float", json.Number("1.25"), 1.25},
		{"nested", map[string]any{"a": []any{int64(1), "x", nil, map[string]any{}}}, map[string]any{"a": []any{int64(1), "x", nil, map[string]any{}}}},
		{"time goes as its JSON string", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05Z"},
		{"[]string goes as a list", []string{"a", "b"}, []any{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv, err := wire.ValueToPB(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, wire.ValueFromPB(pv))
		})
	}
	_, err := wire.ValueToPB(uint64(1) << 63)
	assert.ErrorContains(t, err, "larger than int64")
	_, err = wire.FieldsToPB(map[string]any{"f": func() {}})
	assert.ErrorContains(t, err, `field "f"`)
}

func TestErrorsKeepKindAndRetryAfter(t *testing.T) {
	for _, k := range []connectors.Kind{connectors.Other, connectors.Transient, connectors.Permanent, connectors.Auth} {
		in := fmt.Errorf("wrapped: %w", &connectors.Error{Op: "x.Write", Kind: k, RetryAfter: 1500 * time.Millisecond, Err: errors.New("boom")})
		out := wire.ErrorFromPB("plugin p: write", wire.ErrorToPB(in))
		assert.Equal(t, k, connectors.KindOf(out))
		assert.Equal(t, 1500*time.Millisecond, connectors.RetryAfterOf(out))
		assert.Equal(t, "plugin p: write: wrapped: x.Write: boom", out.Error())
	}
	assert.Equal(t, connectors.Other, connectors.KindOf(wire.ErrorFromPB("op", wire.ErrorToPB(errors.New("plain")))))
	assert.Nil(t, wire.ErrorToPB(nil))
	assert.NoError(t, wire.ErrorFromPB("op", nil))
}

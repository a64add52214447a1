//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sockdir

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shortDir is a fresh directory with a short path (t.TempDir's holds the
// test's name; a socket path must fit in about 100 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lh")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// dead makes the directory of a hub that died: created, never removed, its
// lock gone with the process.
func dead(t *testing.T, parent string) string {
	t.Helper()
	h, err := Create(parent)
	require.NoError(t, err)
	child, err := h.NewChild()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(child, "plugin123"), nil, 0o600)) // a killed child's socket
	require.NoError(t, h.lock.Close())
	return h.Dir
}

func TestSweepRemovesTheDirectoriesOfDeadHubsOnly(t *testing.T) {
	parent := shortDir(t)
	gone := dead(t, parent)
	live, err := Create(parent)
	require.NoError(t, err)
	defer live.Remove()
	other := filepath.Join(parent, "loyaltyhub-e2e-123") // not a hub directory
	require.NoError(t, os.Mkdir(other, 0o700))

	assert.Equal(t, []string{gone}, Sweep(parent))
	assert.NoDirExists(t, gone)
	assert.DirExists(t, live.Dir, "a live hub's directory stays")
	assert.DirExists(t, other)

	require.NoError(t, live.Remove())
	assert.NoDirExists(t, live.Dir)
}

func TestRemoveAbandoned(t *testing.T) {
	parent := shortDir(t)
	t.Run("the hub is gone and the last child leaves", func(t *testing.T) {
		hubDir := dead(t, parent)
		own := filepath.Join(hubDir, "1")
		require.NoError(t, os.Remove(filepath.Join(own, "plugin123"))) // the child's listener removed its socket
		t.Setenv(EnvSocketDir, own)
		t.Setenv(EnvHubDir, hubDir)
		RemoveAbandoned(0)
		assert.NoDirExists(t, hubDir)
	})
	t.Run("a sibling still runs", func(t *testing.T) {
		h, err := Create(parent)
		require.NoError(t, err)
		own, err := h.NewChild()
		require.NoError(t, err)
		sibling, err := h.NewChild()
		require.NoError(t, err)
		require.NoError(t, h.lock.Close())
		t.Setenv(EnvSocketDir, own)
		t.Setenv(EnvHubDir, h.Dir)
		RemoveAbandoned(0)
		assert.NoDirExists(t, own)
		assert.DirExists(t, sibling)
	})
	t.Run("the hub lives", func(t *testing.T) {
		h, err := Create(parent)
		require.NoError(t, err)
		defer h.Remove()
		own, err := h.NewChild()
		require.NoError(t, err)
		t.Setenv(EnvSocketDir, own)
		t.Setenv(EnvHubDir, h.Dir)
		RemoveAbandoned(0)
		assert.NoDirExists(t, own)
		assert.DirExists(t, h.Dir, "a live hub's directory stays, even empty")
	})
	t.Run("the hub's lock comes free a moment later", func(t *testing.T) {
		h, err := Create(parent)
		require.NoError(t, err)
		own, err := h.NewChild()
		require.NoError(t, err)
		t.Setenv(EnvSocketDir, own)
		t.Setenv(EnvHubDir, h.Dir)
		time.AfterFunc(100*time.Millisecond, func() { _ = h.lock.Close() }) // the dying hub's last thread ends
		RemoveAbandoned(2 * time.Second)
		assert.NoDirExists(t, h.Dir)
	})
	t.Run("another kind of host", func(t *testing.T) {
		own := filepath.Join(parent, "theirs")
		require.NoError(t, os.Mkdir(own, 0o700))
		t.Setenv(EnvSocketDir, own)
		t.Setenv(EnvHubDir, "")
		RemoveAbandoned(0)
		RemoveOwn()
		assert.DirExists(t, own, "a directory no loyaltyhub hub handed out stays")
	})
}

func TestNewChildRefusesAPathTooLongForASocket(t *testing.T) {
	long := filepath.Join(t.TempDir(), "a-directory-name-long-enough-to-push-the-socket-path-past-the-limit")
	require.NoError(t, os.Mkdir(long, 0o700))
	h, err := Create(long)
	require.NoError(t, err)
	defer h.Remove()
	_, err = h.NewChild()
	assert.ErrorIs(t, err, ErrPathTooLong)
}

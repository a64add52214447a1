//go:build unix

package host_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/plugins/host"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
)

// The lifecycle tests point TMPDIR, where the host and its children keep
// their sockets, at a directory of their own and check what is left in it.

// ownTempDir makes TMPDIR a fresh directory for the rest of the test (the
// children inherit it) and returns it. Its path is short, unlike
// t.TempDir's, which holds the test's name: a Unix socket's path must fit
// in about 100 bytes, and the host falls back to the bare TMPDIR otherwise.
func ownTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lh")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
	return dir
}

// leftovers lists everything under dir, sockets marked "(socket)".
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.Type()&fs.ModeSocket != 0 {
			rel += " (socket)"
		}
		out = append(out, rel)
		return nil
	})
	require.NoError(t, err)
	return out
}

// sockets lists the sockets under dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, l := range leftovers(t, dir) {
		if strings.HasSuffix(l, " (socket)") {
			out = append(out, l)
		}
	}
	return out
}

// gone reports whether process pid has exited (a zombie counts as exited:
// nobody may reap an orphan in a container).
func gone(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// pid (comm) state ...; comm may hold spaces and parentheses.
		rest := b[bytes.LastIndexByte(b, ')')+1:]
		f := strings.Fields(string(rest))
		return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

func waitGone(t *testing.T, pid int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: process %d still runs %v later", what, pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func builtinFakeConfig(t *testing.T) host.Config {
	t.Helper()
	sum, err := host.FileSHA256(bins["selfhost"])
	require.NoError(t, err)
	return host.Config{Name: "fake", Path: bins["selfhost"], Args: []string{"connector", "serve", "fake"}, SHA256: sum, HealthInterval: -1}
}

// TestSignalsStopThePlugin: SIGTERM and SIGINT each make a plugin process,
// vendor (sdk.Serve) or built-in (host.ServeBuiltin), close its connector
// and exit within a few seconds, leaving no socket behind.
func TestSignalsStopThePlugin(t *testing.T) {
	for _, kind := range []string{"vendor", "builtin"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			t.Run(kind+"/"+sig.String(), func(t *testing.T) {
				data := t.TempDir() // before TMPDIR moves, so not in it
				tmp := ownTempDir(t)
				cfg := fakeConfig(t, "fake")
				if kind == "builtin" {
					cfg = builtinFakeConfig(t)
				}
				p := start(t, cfg, nil)
				configure(t, p, fakeconn.Config{Dir: data})
				pid := p.PID()
				require.NotZero(t, pid)
				require.NotEmpty(t, sockets(t, tmp), "the plugin's socket is under TMPDIR")

				require.NoError(t, syscall.Kill(pid, sig))
				waitGone(t, pid, 5*time.Second, "after "+sig.String())
				assert.FileExists(t, fakeconn.ClosedMarker(data, pid), "the plugin closed its connector before exiting")
				assert.Empty(t, sockets(t, tmp), "the plugin left its socket behind")
				require.NoError(t, p.Close())
				assert.Empty(t, leftovers(t, tmp), "something is left in TMPDIR after Close")
			})
		}
	}
}

// TestNothingLeftBehindAfterClose: once the host closes its plugins, nothing
// of theirs is left in TMPDIR, whether the plugin only ran, was killed
// (SIGKILL: it cannot clean up) and restarted, or was refused at start.
func TestNothingLeftBehindAfterClose(t *testing.T) {
	t.Run("normal close", func(t *testing.T) {
		tmp := ownTempDir(t)
		p := start(t, fakeConfig(t, "fake"), nil)
		configure(t, p, fakeconn.Config{})
		require.NoError(t, p.Check(context.Background()))
		require.NoError(t, p.Close())
		assert.Empty(t, leftovers(t, tmp))
	})
	t.Run("killed and restarted", func(t *testing.T) {
		tmp := ownTempDir(t)
		p := start(t, fakeConfig(t, "fake"), nil)
		configure(t, p, fakeconn.Config{})
		for i := 0; i < 3; i++ {
			pid := p.PID()
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			waitGone(t, pid, 5*time.Second, "after SIGKILL")
			_, err := p.Write(context.Background(), things(i*10, 10))
			require.NoError(t, err)
		}
		assert.Equal(t, 3, p.Restarts())
		assert.Len(t, sockets(t, tmp), 1, "the killed processes' sockets are removed at restart")
		require.NoError(t, p.Close())
		assert.Empty(t, leftovers(t, tmp))
	})
	t.Run("refused at start", func(t *testing.T) {
		tmp := ownTempDir(t)
		sum, err := host.FileSHA256(bins["wrongversion"])
		require.NoError(t, err)
		_, err = host.Start(context.Background(), host.Config{Name: "old", Path: bins["wrongversion"], SHA256: sum}, nil)
		require.Error(t, err)
		assert.Empty(t, leftovers(t, tmp))
	})
}

// TestHubDeathStopsItsPlugins: a hub (selfhost hold) killed with SIGKILL
// runs no code, yet its connector process closes its connector and exits
// within a few seconds, and nothing is left in TMPDIR.
func TestHubDeathStopsItsPlugins(t *testing.T) {
	data := t.TempDir() // before TMPDIR moves, so not in it
	tmp := ownTempDir(t)
	hub := exec.Command(bins["selfhost"], "hold", data)
	var hubLog bytes.Buffer
	hub.Stderr = &hubLog
	out, err := hub.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, hub.Start())
	t.Cleanup(func() { _ = hub.Process.Kill(); _ = hub.Wait() })

	var pids struct {
		PID    int `json:"pid"`
		HubPID int `json:"hub_pid"`
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	require.NoError(t, err, "hub log:\n%s", &hubLog)
	require.NoError(t, json.Unmarshal(line, &pids))
	require.Equal(t, hub.Process.Pid, pids.HubPID)
	require.False(t, gone(pids.PID))
	t.Cleanup(func() { _ = syscall.Kill(pids.PID, syscall.SIGKILL) }) // should it survive the test
	require.NotEmpty(t, sockets(t, tmp))

	require.NoError(t, hub.Process.Kill())
	_ = hub.Wait()
	waitGone(t, pids.PID, 5*time.Second, "after its hub was killed")
	assert.FileExists(t, fakeconn.ClosedMarker(data, pids.PID), "the orphan closed its connector before exiting")
	assert.Eventually(t, func() bool { return len(leftovers(t, tmp)) == 0 }, 2*time.Second, 20*time.Millisecond)
	assert.Empty(t, leftovers(t, tmp), "left in TMPDIR after the hub died")
}

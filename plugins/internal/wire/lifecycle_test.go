//go:build unix

package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/sockdir"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/wire"
)

// The test binary plays two more parts, chosen by roleEnv: a "hub" that
// starts a "plugin" the plain way, without the parent-death signal the real
// host sets on Linux, and that plugin.
const (
	roleEnv   = "WIRE_LIFECYCLE_ROLE"
	markerEnv = "WIRE_LIFECYCLE_MARKER"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "plugin":
		wire.Serve(context.Background(), closer{marker: os.Getenv(markerEnv)}, nil)
		return
	case "hub":
		if err := playHub(); err != nil {
			fmt.Fprintln(os.Stderr, "hub:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// closer is a connector that leaves a file behind when it is closed.
type closer struct{ marker string }

func (closer) Describe(context.Context) (connectors.Description, error) {
	return connectors.Description{Name: "closer"}, nil
}
func (closer) Configure(context.Context, json.RawMessage) error { return nil }
func (closer) Check(context.Context) error                      { return nil }
func (c closer) Close() error                                   { return os.WriteFile(c.marker, nil, 0o600) }

// playHub makes a hub socket directory in TMPDIR, starts the plugin with its
// stdout and stderr on pipes of its own, waits for the handshake line,
// prints the plugin's pid and waits to be killed.
func playHub() error {
	hub, err := sockdir.Create("")
	if err != nil {
		return err
	}
	dir, err := hub.NewChild()
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=plugin", wire.Handshake.MagicCookieKey+"="+wire.Handshake.MagicCookieValue)
	cmd.Env = append(cmd.Env, hub.Env(dir)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if _, err := cmd.StderrPipe(); err != nil { // never read: it breaks when the hub dies
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the handshake: %w", err)
	}
	if !strings.Contains(line, "|unix|"+dir+"/") {
		return fmt.Errorf("the plugin's socket is not in %s: %s", dir, line)
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}

func gone(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// TestPluginExitsWhenItsParentDies: with no parent-death signal (macOS, the
// BSDs, or a host that sets none), a plugin notices that its parent is gone,
// closes its connector, exits, and removes its socket, its socket directory
// and the dead hub's directory.
func TestPluginExitsWhenItsParentDies(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "closed")
	tmp, err := os.MkdirTemp("", "lh") // short: a socket path must fit in ~100 bytes
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })

	hub := exec.Command(os.Args[0])
	hub.Env = append(os.Environ(), roleEnv+"=hub", markerEnv+"="+marker, "TMPDIR="+tmp)
	var hubErr bytes.Buffer
	hub.Stderr = &hubErr
	out, err := hub.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, hub.Start())
	t.Cleanup(func() { _ = hub.Process.Kill(); _ = hub.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "hub: %s", &hubErr)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // should it survive the test
	require.False(t, gone(pid))

	require.NoError(t, hub.Process.Kill())
	_ = hub.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.True(t, gone(pid), "the plugin still runs 5s after its parent died")
	assert.FileExists(t, marker, "the plugin closed its connector")
	ents, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, ents, "left in TMPDIR: the dead hub's directory")
}

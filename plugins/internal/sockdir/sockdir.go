// Package sockdir lays out where a hub's connector processes keep their Unix
// sockets, so that none is left behind however a process ends.
//
// go-plugin's server creates its socket in PLUGIN_UNIX_SOCKET_DIR, or in the
// system temp directory when that is unset; a process killed with SIGKILL
// cannot remove it, so by default such sockets pile up in /tmp. Instead each
// hub process owns one directory, TMPDIR/loyaltyhub-PID-RANDOM, and gives
// each child process a directory of its own inside it:
//
//	$TMPDIR/loyaltyhub-4242-1234567/     the hub's; flock-ed while the hub lives
//	$TMPDIR/loyaltyhub-4242-1234567/3/   one child's PLUGIN_UNIX_SOCKET_DIR
//	$TMPDIR/loyaltyhub-4242-1234567/3/plugin987654   its socket
//
// Who removes what:
//   - the child removes its socket and its directory on every exit that can
//     run code (the Go SDK does), and the hub's directory as well when it
//     exits because the hub died and the directory is then empty and
//     unlocked (RemoveAbandoned);
//   - the hub removes a child's directory after the child is gone (killed,
//     crashed, refused at start), and its own directory once it closes its
//     last plugin (Hub.Remove);
//   - a hub creating its directory removes those of hubs that died without
//     cleaning up, found by their lock being free (Sweep).
//
// Liveness is told by flock(2) on the hub's directory, not by a process id
// that the system may have given to another process since.
package sockdir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Environment variables the hub sets for each child process.
const (
	// EnvSocketDir is go-plugin's: the directory in which the child creates
	// its Unix socket. The hub sets it to a directory for that child alone.
	EnvSocketDir = "PLUGIN_UNIX_SOCKET_DIR"
	// EnvHubDir is the hub's own directory, EnvSocketDir's parent. Its
	// presence tells the child that both directories are the hub's and
	// that the child may remove them as RemoveAbandoned says.
	EnvHubDir = "LOYALTYHUB_HUB_DIR"
)

// prefix starts the name of every hub directory, so Sweep finds them.
const prefix = "loyaltyhub-"

// maxSocketPath bounds the path of a socket: sun_path holds 108 bytes on
// Linux and 104 on macOS and the BSDs, the terminating NUL included.
const maxSocketPath = 103

// socketNameLen is the length of go-plugin's socket name in a child's
// directory ("/plugin" and up to 10 digits).
const socketNameLen = len("/plugin") + 10

// Hub is the socket directory of one hub process.
type Hub struct {
	// Dir is the hub's directory.
	Dir  string
	lock io.Closer
	next atomic.Int64
}

// Create makes a hub directory in parent (os.TempDir() when empty) and
// locks it for as long as the hub lives.
func Create(parent string) (*Hub, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	// Between MkdirTemp and the lock, another hub's Sweep may take the new
	// directory for a dead hub's and remove it; lockDir notices, and the
	// next attempt makes another.
	var err error
	for range 3 {
		var dir string
		dir, err = os.MkdirTemp(parent, prefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return nil, fmt.Errorf("creating the plugins' socket directory: %w", err)
		}
		var lock io.Closer
		if lock, err = lockDir(dir); err == nil {
			return &Hub{Dir: dir, lock: lock}, nil
		}
		_ = os.Remove(dir)
	}
	return nil, fmt.Errorf("locking the plugins' socket directory: %w", err)
}

// ErrPathTooLong is returned by NewChild when a socket in the child's
// directory would not fit in a Unix socket address.
var ErrPathTooLong = errors.New("socket path too long for a Unix socket address")

// NewChild makes the directory of one child process and returns it.
func (h *Hub) NewChild() (string, error) {
	dir := filepath.Join(h.Dir, strconv.FormatInt(h.next.Add(1), 10))
	if len(dir)+socketNameLen > maxSocketPath {
		return "", fmt.Errorf("%s: %w", dir, ErrPathTooLong)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// Env returns the environment entries that place a child's socket in dir,
// a directory NewChild made.
func (h *Hub) Env(dir string) []string {
	return []string{EnvSocketDir + "=" + dir, EnvHubDir + "=" + h.Dir}
}

// Remove removes the hub's directory with whatever is left in it and
// releases its lock.
func (h *Hub) Remove() error {
	err := os.RemoveAll(h.Dir)
	if cerr := h.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sweep removes from parent (os.TempDir() when empty) the directories of
// hubs that are gone: those whose lock nobody holds. It returns what it
// removed. A directory it cannot open or lock, another user's say, stays.
func Sweep(parent string) []string {
	if parent == "" {
		parent = os.TempDir()
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !isHubDirName(e.Name()) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if removeIfUnlocked(dir, os.RemoveAll) {
			removed = append(removed, dir)
		}
	}
	return removed
}

// isHubDirName tells a hub directory's name (loyaltyhub-PID-RANDOM) from
// other loyaltyhub-* names, such as the tests' loyaltyhub-e2e-*.
func isHubDirName(name string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	pid, random, ok := strings.Cut(rest, "-")
	return ok && isDigits(pid) && isDigits(random)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RemoveAbandoned is the child's part, for a child whose hub is gone: it
// removes the child's own socket directory (from EnvSocketDir) if it is
// empty, then the hub's directory (from EnvHubDir) if that is empty too and
// no live hub holds its lock. A dying hub may hold the lock a moment longer
// than it takes the child to get here, so it waits up to wait for the lock
// to come free (only while the hub's directory is otherwise empty: the last
// child out does the work). It does nothing unless the hub set EnvHubDir as
// EnvSocketDir's parent, so it never removes a directory that another kind
// of host handed out.
func RemoveAbandoned(wait time.Duration) {
	own, hub := os.Getenv(EnvSocketDir), os.Getenv(EnvHubDir)
	if !IsHubChild(own, hub) {
		return
	}
	_ = os.Remove(own)
	deadline := time.Now().Add(wait)
	for {
		if ents, err := os.ReadDir(hub); err != nil || len(ents) > 0 {
			return // gone already, or a sibling still runs
		}
		if removeIfUnlocked(hub, os.Remove) || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RemoveOwn removes the child's own socket directory if it is empty, on any
// exit: no one else uses it. Like RemoveAbandoned, it needs EnvHubDir.
func RemoveOwn() {
	own, hub := os.Getenv(EnvSocketDir), os.Getenv(EnvHubDir)
	if IsHubChild(own, hub) {
		_ = os.Remove(own)
	}
}

// IsHubChild reports whether own is a child's directory inside hub dir hub.
func IsHubChild(own, hub string) bool {
	return own != "" && hub != "" && filepath.Dir(filepath.Clean(own)) == filepath.Clean(hub)
}

// removeIfUnlocked takes dir's lock without waiting and, when it gets it,
// removes dir with remove before letting the lock go.
func removeIfUnlocked(dir string, remove func(string) error) bool {
	lock, ok := tryLockDir(dir)
	if !ok {
		return false
	}
	defer lock.Close()
	return remove(dir) == nil
}

package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Config says how to run one connector plugin.
type Config struct {
	// Name names the plugin in the hub's logs and in errors ("geooffers").
	// Required.
	Name string
	// Path is the plugin executable. Required.
	Path string
	// Args are the executable's arguments. Default: none.
	Args []string
	// Env adds KEY=value entries to the child's environment. The child does
	// not inherit the hub's environment (it may hold the hub's secrets): it
	// gets PATH, HOME, TMPDIR, TZ, LANG, the proxy and CA variables, and Env.
	Env []string
	// SHA256 is the lowercase hex SHA-256 of the executable. The host
	// refuses to start a binary whose digest differs, at every (re)start.
	// Required; `sha256sum PATH` prints it.
	SHA256 string
	// CallTimeout bounds each call to the plugin. Default 30s.
	CallTimeout time.Duration
	// StartTimeout bounds starting the process up to the end of the
	// handshake. Default 10s.
	StartTimeout time.Duration
	// HealthInterval is how often the host checks that the process lives
	// and answers gRPC health checks, restarting it when not. Default 2s;
	// negative disables the checks (calls still restart a dead plugin).
	HealthInterval time.Duration
	// RestartBackoff is the wait before the second of several restarts in a
	// row (the first is immediate); it doubles with each further one. A
	// restart is "in a row" when the process it replaces never answered a
	// call. Default 200ms.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps the wait between restarts. Default 30s.
	MaxRestartBackoff time.Duration
}

func (c *Config) setDefaults() {
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = 200 * time.Millisecond
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = 30 * time.Second
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if c.Path == "" {
		errs = append(errs, errors.New("path is required: the plugin executable"))
	}
	if c.SHA256 == "" {
		errs = append(errs, errors.New("sha256 is required: the hex SHA-256 of the executable (sha256sum PATH prints it)"))
	} else if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != sha256.Size {
		errs = append(errs, fmt.Errorf("sha256 %q is not 64 hex digits", c.SHA256))
	}
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			errs = append(errs, fmt.Errorf("env entry %q is not KEY=value", e))
		}
	}
	if c.CallTimeout < 0 || c.StartTimeout < 0 || c.RestartBackoff < 0 || c.MaxRestartBackoff < 0 {
		errs = append(errs, errors.New("call_timeout, start_timeout and the restart backoffs must not be negative"))
	}
	return errors.Join(errs...)
}

// FileSHA256 returns the lowercase hex SHA-256 of the file at path, the
// value Config.SHA256 pins.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inheritedEnv are the variables of the hub's environment a plugin gets.
var inheritedEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "GOCOVERDIR",
}

func (c Config) environ() []string {
	var env []string
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, c.Env...)
}

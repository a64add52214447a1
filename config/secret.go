package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Redaction replaces a secret value wherever the config is shown.
const Redaction = "[redacted]"

// Secret is a string that never shows itself: fmt, slog, JSON and YAML all
// print Redaction instead (or "" when it is empty). Value returns the secret.
type Secret string

// Value returns the secret in clear.
func (s Secret) Value() string { return string(s) }

// String returns Redaction, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redaction
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Format keeps every fmt verb from printing the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes Redaction: a marshalled config never holds the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", s.String())), nil }

// MarshalYAML writes Redaction: a marshalled config never holds the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// secretKey matches keys whose values are secrets by their name.
var secretKey = regexp.MustCompile(`(?i)(pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential|signing_?key|access_?key|auth_?key|(^|_)pin$)`)

// notSecretKey excludes keys that name where a secret is used, not the secret.
var notSecretKey = regexp.MustCompile(`(?i)(_url|_uri|_endpoint|_file|_path|_type|_id|_name|_header|_ttl|_expiry)$`)

// isSecretKey reports whether a value under key is a secret by its name.
func isSecretKey(key string) bool {
	return secretKey.MatchString(key) && !notSecretKey.MatchString(key)
}

// redactURLs masks the password of every URL in a comma-separated list.
func redactURLs(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return Redaction
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return strings.Replace(u.String(), "xxxxx", Redaction, 1)
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		if isSecretKey(k) {
			q.Set(k, Redaction)
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dsnPassword matches password=... in a key=value DSN, quoted or not.
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN masks the password of a URL or key=value DSN.
func redactDSN(s string) string {
	if strings.Contains(s, "://") {
		return redactURL(s)
	}
	return dsnPassword.ReplaceAllString(s, "${1}"+Redaction)
}

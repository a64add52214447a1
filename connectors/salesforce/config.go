package salesforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Auth flows a Config may name.
const (
	// AuthClientCredentials is the OAuth 2.0 client-credentials flow (a
	// connected app with a run-as user): client_id and client_secret.
	AuthClientCredentials = "client_credentials"
	// AuthPassword is the OAuth 2.0 username-password flow: client_id,
	// client_secret, username, password and, outside trusted IP ranges,
	// security_token.
	AuthPassword = "password"
)

// Defaults of the optional Config fields.
const (
	DefaultLoginURL   = "https://login.salesforce.com"
	DefaultAPIVersion = "v63.0"
	DefaultBatchSize  = 200
	DefaultTimeout    = 30 * time.Second
	// MaxBatchSize is the sObject Collections limit: records per call.
	MaxBatchSize = 200
	// DefaultBulkThreshold is the smallest batch written through Bulk API
	// 2.0 rather than sObject Collections.
	DefaultBulkThreshold = 2000
	DefaultBulkTimeout   = 10 * time.Minute
)

// Config is the connector's config block, given to Configure as JSON.
type Config struct {
	// LoginURL is where the OAuth token request goes: https://login.salesforce.com,
	// https://test.salesforce.com (sandboxes), a My Domain URL, or an emulator's
	// base URL. Later calls go to the instance_url the token response names.
	// Default https://login.salesforce.com.
	LoginURL string `json:"login_url"`
	// Auth is the OAuth 2.0 flow: "client_credentials" or "password".
	// Default "client_credentials".
	Auth string `json:"auth"`
	// ClientID is the connected app's consumer key. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is the connected app's consumer secret. Required. Secret.
	ClientSecret string `json:"client_secret"`
	// Username is the integration user's login; required when Auth is "password".
	Username string `json:"username,omitempty"`
	// Password is the integration user's password; required when Auth is
	// "password". Secret.
	Password string `json:"password,omitempty"`
	// SecurityToken is appended to Password by the password flow; empty when
	// the hub calls from a trusted IP range. Secret.
	SecurityToken string `json:"security_token,omitempty"`
	// APIVersion is the REST API version, "vNN.N". Default "v63.0".
	APIVersion string `json:"api_version"`
	// BatchSize is how many records one sObject Collections call carries,
	// 1..200; 0 means the default, 200.
	BatchSize int `json:"batch_size"`
	// Timeout bounds each HTTP call (login included), as a Go duration
	// string ("30s", "1m"). Default "30s".
	Timeout string `json:"timeout"`
	// BulkThreshold: a batch of at least this many upserts, inserts or
	// updates is written as one Bulk API 2.0 ingest job (a backlog being
	// drained, an initial load), a smaller one through sObject Collections.
	// 0 means the default, 2000; -1 never uses Bulk API 2.0. At most
	// MaxBatch.
	BulkThreshold int `json:"bulk_threshold"`
	// BulkTimeout is how long a Write waits for its Bulk API 2.0 job to
	// finish, as a Go duration. Default "10m".
	BulkTimeout string `json:"bulk_timeout"`

	timeout     time.Duration
	bulkTimeout time.Duration
}

// ParseConfig decodes a config block strictly (unknown fields are errors),
// applies the defaults and validates it, reporting every problem at once.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := connectors.DecodeConfig("salesforce", raw, &c, `{"client_id": "…", "client_secret": "…"}`); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) setDefaults() {
	c.LoginURL = strings.TrimRight(strings.TrimSpace(c.LoginURL), "/")
	if c.LoginURL == "" {
		c.LoginURL = DefaultLoginURL
	}
	if c.Auth == "" {
		c.Auth = AuthClientCredentials
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Timeout == "" {
		c.Timeout = DefaultTimeout.String()
	}
	if c.BulkThreshold == 0 {
		c.BulkThreshold = DefaultBulkThreshold
	}
	if c.BulkTimeout == "" {
		c.BulkTimeout = DefaultBulkTimeout.String()
	}
}

var apiVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// Validate reports every problem of c at once (errors.Join), each naming the
// field and the fix. It expects the defaults applied (ParseConfig does so).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if u, err := url.Parse(c.LoginURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("login_url %q is not an absolute http(s) URL: set it to https://login.salesforce.com, https://test.salesforce.com, your My Domain URL or the emulator's URL", c.LoginURL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("login_url %q has a query or fragment: give the base URL only (https://login.salesforce.com)", c.LoginURL)
	}

	switch c.Auth {
	case AuthClientCredentials:
		for _, f := range []struct{ name, val string }{{"username", c.Username}, {"password", c.Password}, {"security_token", c.SecurityToken}} {
			if f.val != "" {
				bad("auth is %q but %s is set: remove %s, or set auth to %q", AuthClientCredentials, f.name, f.name, AuthPassword)
			}
		}
	case AuthPassword:
		if c.Username == "" {
			bad("auth is %q but username is empty: set username", AuthPassword)
		}
		if c.Password == "" {
			bad("auth is %q but password is empty: set password", AuthPassword)
		} else if c.SecurityToken == "" && len(c.Password) < 2 {
			bad("auth is %q and security_token is empty, so password must be at least 2 characters: set the real password (and security_token outside trusted IP ranges)", AuthPassword)
		}
	default:
		bad("auth %q is not supported: set it to %q or %q", c.Auth, AuthClientCredentials, AuthPassword)
	}
	if c.ClientID == "" {
		bad("client_id is empty: set it to the connected app's consumer key")
	}
	if c.ClientSecret == "" {
		bad("client_secret is empty: set it to the connected app's consumer secret")
	}

	if !apiVersionRE.MatchString(c.APIVersion) {
		bad("api_version %q is not of the form vNN.N: set it like %q", c.APIVersion, DefaultAPIVersion)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch_size %d is out of range: set 1..%d (records per sObject Collections call)", c.BatchSize, MaxBatchSize)
	}
	if d, err := time.ParseDuration(c.Timeout); err != nil {
		bad("timeout %q is not a duration: set it like \"30s\" or \"2m\"", c.Timeout)
	} else if d <= 0 || d > 10*time.Minute {
		bad("timeout %q is out of range: set a duration above 0 and at most 10m (Salesforce's own call limit)", c.Timeout)
	} else {
		c.timeout = d
	}
	if c.BulkThreshold < -1 || c.BulkThreshold > MaxBatch {
		bad("bulk_threshold %d is out of range: set 1..%d records (the smallest batch written through Bulk API 2.0), or -1 to never use it", c.BulkThreshold, MaxBatch)
	}
	if d, err := time.ParseDuration(c.BulkTimeout); err != nil {
		bad("bulk_timeout %q is not a duration: set it like \"10m\"", c.BulkTimeout)
	} else if d < time.Second || d > 24*time.Hour {
		bad("bulk_timeout %q is out of range: set a duration from 1s to 24h", c.BulkTimeout)
	} else {
		c.bulkTimeout = d
	}
	if len(errs) > 0 {
		return fmt.Errorf("salesforce config: %w", errors.Join(errs...))
	}
	return nil
}

// insecureLoginURL reports whether the login URL sends credentials in clear
// text to a host other than the loopback interface.
func (c *Config) insecureLoginURL() bool {
	u, err := url.Parse(c.LoginURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// configSchema is the config block's OpenAPI 3 schema, published in
// Description.ConfigSchema for the config loader and the docs.
const configSchema = `{
  "type": "object",
  "description": "Salesforce connector: writes records through sObject Collections (upsert by external id, insert, update, delete) and describes sObjects.",
  "additionalProperties": false,
  "required": ["client_id", "client_secret"],
  "properties": {
    "login_url": {
      "type": "string",
      "description": "Base URL of the OAuth token endpoint (login URL). Later calls go to the instance_url of the token response.",
      "default": "https://login.salesforce.com",
      "example": "https://test.salesforce.com"
    },
    "auth": {
      "type": "string",
      "enum": ["client_credentials", "password"],
      "description": "OAuth 2.0 flow: client_credentials (connected app with a run-as user) or password (username-password flow).",
      "default": "client_credentials",
      "example": "client_credentials"
    },
    "client_id": {
      "type": "string",
      "minLength": 1,
      "description": "Consumer key of the connected app.",
      "example": "3MVG9loyaltyhubEXAMPLEKEY"
    },
    "client_secret": {
      "type": "string",
      "minLength": 1,
      "description": "Consumer secret of the connected app.",
      "example": "${SALESFORCE_CLIENT_SECRET}",
      "x-secret": true
    },
    "username": {
      "type": "string",
      "description": "Integration user's login; required when auth is password.",
      "default": "",
      "example": "integration@loyaltyhub.example"
    },
    "password": {
      "type": "string",
      "description": "Integration user's password; required when auth is password.",
      "default": "",
      "example": "${SALESFORCE_PASSWORD}",
      "x-secret": true
    },
    "security_token": {
      "type": "string",
      "description": "Security token appended to the password by the password flow; empty inside a trusted IP range.",
      "default": "",
      "example": "${SALESFORCE_SECURITY_TOKEN}",
      "x-secret": true
    },
    "api_version": {
      "type": "string",
      "pattern": "^v[0-9]+\\.[0-9]+$",
      "description": "Salesforce REST API version.",
      "default": "v63.0",
      "example": "v63.0"
    },
    "batch_size": {
      "type": "integer",
      "minimum": 1,
      "maximum": 200,
      "description": "Records per sObject Collections call (one API call each).",
      "default": 200,
      "example": 200
    },
    "bulk_threshold": {
      "type": "integer",
      "minimum": -1,
      "maximum": 10000,
      "default": 2000,
      "description": "Smallest batch of upserts, inserts or updates written as one Bulk API 2.0 ingest job instead of sObject Collections calls; -1 never uses Bulk API 2.0.",
      "example": 2000
    },
    "bulk_timeout": {
      "type": "string",
      "default": "10m",
      "description": "How long a write waits for its Bulk API 2.0 job to finish, a Go duration.",
      "example": "10m"
    },
    "timeout": {
      "type": "string",
      "description": "Bound on each HTTP call, login included, as a Go duration (at most 10m).",
      "default": "30s",
      "example": "45s"
    }
  }
}`

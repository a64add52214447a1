package marketingcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Defaults and limits of the Config fields.
const (
	// DefaultBatchSize is Marketing Cloud's advice for synchronous rowset
	// calls: at most 50 rows a call.
	DefaultBatchSize = 50
	// MaxBatchSize bounds BatchSize. Marketing Cloud calls 50 a soft limit;
	// larger rowsets work but answer slower and fail as a whole.
	MaxBatchSize   = 500
	DefaultTimeout = 30 * time.Second
	// DefaultAsyncThreshold is the smallest batch sent through the
	// asynchronous rows API.
	DefaultAsyncThreshold = 1000
	DefaultAsyncTimeout   = 10 * time.Minute
)

// Config is the connector's config block, given to Configure as JSON.
type Config struct {
	// Subdomain is the tenant subdomain of the installed package's
	// endpoints (the part before .auth.marketingcloudapis.com). Give it or
	// AuthURL.
	Subdomain string `json:"subdomain,omitempty"`
	// AuthURL is the authentication base URL,
	// https://{subdomain}.auth.marketingcloudapis.com, or an emulator's URL.
	// Data calls go to the rest_instance_url the token response names.
	AuthURL string `json:"auth_url,omitempty"`
	// ClientID is the installed package's API integration client id. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is its client secret. Required. Secret.
	ClientSecret string `json:"client_secret"`
	// AccountID is the MID of the business unit to write to; empty: the
	// package's default business unit.
	AccountID string `json:"account_id,omitempty"`
	// Scope limits the token's permissions ("data_extensions_write");
	// empty: the package's scopes.
	Scope string `json:"scope,omitempty"`
	// DataExtensions gives, by external key, the primary key columns of the
	// data extensions written. A data extension not listed has one primary
	// key: the sync's external_id column.
	DataExtensions map[string]DataExtension `json:"data_extensions,omitempty"`
	// BatchSize is how many rows one rowset call carries, 1..500. Default 50.
	BatchSize int `json:"batch_size,omitempty"`
	// Timeout bounds each HTTP call, as a Go duration ("30s"). Default "30s".
	Timeout string `json:"timeout,omitempty"`
	// AsyncThreshold: a batch of at least this many rows goes through the
	// asynchronous rows API (one request for up to 32,000 rows) instead of
	// rowset calls. 0 means the default, 1000; -1 never.
	AsyncThreshold int `json:"async_threshold,omitempty"`
	// AsyncTimeout is how long a write waits for an asynchronous request to
	// complete, as a Go duration. Default "10m".
	AsyncTimeout string `json:"async_timeout,omitempty"`

	timeout, asyncTimeout time.Duration
}

// DataExtension describes one data extension written.
type DataExtension struct {
	// PrimaryKeys are the primary key columns, in the data extension's
	// order. Each must be a field of the sync's mapping.
	PrimaryKeys []string `json:"primary_keys"`
}

// ParseConfig decodes a config block strictly (unknown fields are errors),
// applies the defaults and validates it, reporting every problem at once.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := connectors.DecodeConfig("marketingcloud", raw, &c, `{"subdomain": "…", "client_id": "…", "client_secret": "…"}`); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) setDefaults() {
	c.Subdomain = strings.TrimSpace(c.Subdomain)
	c.AuthURL = strings.TrimRight(strings.TrimSpace(c.AuthURL), "/")
	if c.AuthURL == "" && c.Subdomain != "" {
		c.AuthURL = "https://" + c.Subdomain + ".auth.marketingcloudapis.com"
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Timeout == "" {
		c.Timeout = DefaultTimeout.String()
	}
	if c.AsyncThreshold == 0 {
		c.AsyncThreshold = DefaultAsyncThreshold
	}
	if c.AsyncTimeout == "" {
		c.AsyncTimeout = DefaultAsyncTimeout.String()
	}
}

// A tenant subdomain is 28 characters of lower-case letters and digits;
// accept any DNS label.
var subdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate reports every problem of c at once (errors.Join), each naming the
// field and the fix. It expects the defaults applied (ParseConfig does so).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch {
	case c.AuthURL == "":
		bad("subdomain and auth_url are both empty: set subdomain to your tenant's (the part before .auth.marketingcloudapis.com in the installed package), or auth_url to the emulator's URL")
	case c.Subdomain != "" && !subdomainRE.MatchString(c.Subdomain):
		bad("subdomain %q is not a tenant subdomain: give only the first label, e.g. mc563885gzs27c5t9-63k636ttgm", c.Subdomain)
	default:
		if u, err := url.Parse(c.AuthURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("auth_url %q is not an absolute http(s) URL: set it like https://SUBDOMAIN.auth.marketingcloudapis.com", c.AuthURL)
		} else if u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			bad("auth_url %q has a path, query or fragment: give the base URL only (the connector calls /v2/token)", c.AuthURL)
		}
	}
	if c.ClientID == "" {
		bad("client_id is empty: set it to the installed package's client id")
	}
	if c.ClientSecret == "" {
		bad("client_secret is empty: set it to the installed package's client secret")
	}
	if c.AccountID != "" && strings.Trim(c.AccountID, "0123456789") != "" {
		bad("account_id %q is not a MID: give the business unit's numeric member id, or leave it out", c.AccountID)
	}
	keys := make([]string, 0, len(c.DataExtensions))
	for k := range c.DataExtensions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		de := c.DataExtensions[k]
		if len(de.PrimaryKeys) == 0 {
			bad("data_extensions.%s.primary_keys is empty: list the data extension's primary key columns", k)
		}
		for i, pk := range de.PrimaryKeys {
			if strings.TrimSpace(pk) == "" {
				bad("data_extensions.%s.primary_keys[%d] is empty: give a column name", k, i)
			} else if slices.Contains(de.PrimaryKeys[:i], pk) {
				bad("data_extensions.%s.primary_keys lists %q twice", k, pk)
			}
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch_size %d is out of range: set 1..%d rows per call (Marketing Cloud advises at most %d)", c.BatchSize, MaxBatchSize, DefaultBatchSize)
	}
	if d, err := time.ParseDuration(c.Timeout); err != nil {
		bad("timeout %q is not a duration: set it like \"30s\" or \"2m\"", c.Timeout)
	} else if d <= 0 || d > 10*time.Minute {
		bad("timeout %q is out of range: set a duration above 0 and at most 10m", c.Timeout)
	} else {
		c.timeout = d
	}
	if c.AsyncThreshold < -1 || c.AsyncThreshold > MaxBatch {
		bad("async_threshold %d is out of range: set 1..%d rows (the smallest batch sent through the asynchronous API), or -1 to never use it", c.AsyncThreshold, MaxBatch)
	}
	if d, err := time.ParseDuration(c.AsyncTimeout); err != nil {
		bad("async_timeout %q is not a duration: set it like \"10m\"", c.AsyncTimeout)
	} else if d < time.Second || d > 24*time.Hour {
		bad("async_timeout %q is out of range: set a duration from 1s to 24h", c.AsyncTimeout)
	} else {
		c.asyncTimeout = d
	}
	if len(errs) > 0 {
		return fmt.Errorf("marketingcloud config: %w", errors.Join(errs...))
	}
	return nil
}

// primaryKeys returns the primary key columns of data extension key, the
// external id column when the config does not list it.
func (c *Config) primaryKeys(key, externalID string) []string {
	if de, ok := c.DataExtensions[key]; ok {
		return de.PrimaryKeys
	}
	if externalID == "" {
		return nil
	}
	return []string{externalID}
}

// insecureAuthURL reports whether credentials would go in clear text to a
// host other than the loopback interface.
func (c *Config) insecureAuthURL() bool {
	u, err := url.Parse(c.AuthURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip == nil || !ip.IsLoopback()
}

// configSchema is the config block's OpenAPI 3 schema, published in
// Description.ConfigSchema for the config loader and the docs.
const configSchema = `{
  "type": "object",
  "description": "Marketing Cloud connector: upserts data extension rows through the synchronous rowset API.",
  "additionalProperties": false,
  "required": ["client_id", "client_secret"],
  "properties": {
    "subdomain": {
      "type": "string",
      "description": "Tenant subdomain of the installed package (the part before .auth.marketingcloudapis.com). Give it or auth_url.",
      "default": "",
      "example": "mc563885gzs27c5t9-63k636ttgm"
    },
    "auth_url": {
      "type": "string",
      "description": "Authentication base URL; empty: https://{subdomain}.auth.marketingcloudapis.com. Data calls go to the rest_instance_url of the token response.",
      "default": "",
      "example": "http://127.0.0.1:8082"
    },
    "client_id": {
      "type": "string",
      "minLength": 1,
      "description": "Client id of the installed package's API integration.",
      "example": "loyaltyhub-emulator"
    },
    "client_secret": {
      "type": "string",
      "minLength": 1,
      "description": "Client secret of the installed package's API integration.",
      "example": "${MC_CLIENT_SECRET}",
      "x-secret": true
    },
    "account_id": {
      "type": "string",
      "description": "MID of the business unit written to; empty: the package's default.",
      "default": "",
      "example": "514009708"
    },
    "scope": {
      "type": "string",
      "description": "Space-separated scopes asked for; empty: the package's.",
      "default": "",
      "example": "data_extensions_read data_extensions_write"
    },
    "data_extensions": {
      "type": "object",
      "description": "Primary key columns by data extension external key; a data extension not listed has the sync's external_id as its one primary key.",
      "default": {},
      "additionalProperties": {
        "type": "object",
        "additionalProperties": false,
        "required": ["primary_keys"],
        "properties": {
          "primary_keys": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}, "description": "Primary key columns."}
        }
      },
      "example": {"Loyalty_Segment_Members": {"primary_keys": ["SegmentId", "MembershipNumber"]}}
    },
    "batch_size": {
      "type": "integer",
      "minimum": 1,
      "maximum": 500,
      "default": 50,
      "description": "Rows per rowset call (Marketing Cloud advises at most 50).",
      "example": 50
    },
    "async_threshold": {
      "type": "integer",
      "minimum": -1,
      "maximum": 10000,
      "default": 1000,
      "example": 1000,
      "description": "Smallest batch sent through the asynchronous rows API (one request for up to 32,000 rows) instead of rowset calls; -1 never."
    },
    "async_timeout": {
      "type": "string",
      "default": "10m",
      "example": "10m",
      "description": "How long a write waits for an asynchronous request to complete, a Go duration."
    },
    "timeout": {
      "type": "string",
      "default": "30s",
      "description": "Bound on each HTTP call, a Go duration.",
      "example": "30s"
    }
  }
}`

package datacloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Defaults and limits of the Config fields.
const (
	DefaultLoginURL  = "https://login.salesforce.com"
	DefaultBatchSize = 200
	MaxBatchSize     = 1000
	DefaultTimeout   = 30 * time.Second
	// MaxBodyBytes keeps a streaming ingestion call under Data Cloud's
	// 200 KB limit, with room for the envelope.
	MaxBodyBytes = 190 << 10
)

// Config is the connector's config block, given to Configure as JSON.
type Config struct {
	// LoginURL is the Salesforce org's login URL (its My Domain, or
	// https://login.salesforce.com), or an emulator's. Default
	// https://login.salesforce.com.
	LoginURL string `json:"login_url,omitempty"`
	// ClientID and ClientSecret are the connected app's (client-credentials
	// flow, scopes cdp_ingest_api and api). Required; the secret is secret.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// SourceName is the Ingestion API connector's name in Data Cloud: the
	// source the objects belong to. Required.
	SourceName string `json:"source_name"`
	// BatchSize is the most records one ingestion call carries, 1..1000;
	// calls are also kept under Data Cloud's 200 KB. Default 200.
	BatchSize int `json:"batch_size,omitempty"`
	// Timeout bounds each HTTP call, as a Go duration. Default "30s".
	Timeout string `json:"timeout,omitempty"`

	timeout time.Duration
}

// ParseConfig decodes a config block strictly, applies the defaults and
// validates it, reporting every problem at once.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := connectors.DecodeConfig("datacloud", raw, &c, `{"login_url": "…", "client_id": "…", "client_secret": "…", "source_name": "…"}`); err != nil {
		return Config{}, err
	}
	c.LoginURL = strings.TrimRight(strings.TrimSpace(c.LoginURL), "/")
	if c.LoginURL == "" {
		c.LoginURL = DefaultLoginURL
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Timeout == "" {
		c.Timeout = DefaultTimeout.String()
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// An Ingestion API connector's name: letters, digits and underscores.
var sourceNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Validate reports every problem of c at once, each naming the field and
// the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.LoginURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("login_url %q is not an absolute http(s) URL: set it to your org's My Domain URL, https://login.salesforce.com or the emulator's URL", c.LoginURL)
	}
	if c.ClientID == "" {
		bad("client_id is empty: set it to the connected app's consumer key")
	}
	if c.ClientSecret == "" {
		bad("client_secret is empty: set it to the connected app's consumer secret")
	}
	switch {
	case c.SourceName == "":
		bad("source_name is empty: set it to the Ingestion API connector's name in Data Cloud (Data Cloud Setup > Ingestion API)")
	case !sourceNameRE.MatchString(c.SourceName):
		bad("source_name %q is not an Ingestion API connector name: letters, digits and underscores, starting with a letter", c.SourceName)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch_size %d is out of range: set 1..%d records per call", c.BatchSize, MaxBatchSize)
	}
	if d, err := time.ParseDuration(c.Timeout); err != nil {
		bad("timeout %q is not a duration: set it like \"30s\"", c.Timeout)
	} else if d <= 0 || d > 10*time.Minute {
		bad("timeout %q is out of range: set a duration above 0 and at most 10m", c.Timeout)
	} else {
		c.timeout = d
	}
	if len(errs) > 0 {
		return fmt.Errorf("datacloud config: %w", errors.Join(errs...))
	}
	return nil
}

// configSchema is the config block's OpenAPI 3 schema.
const configSchema = `{
  "type": "object",
  "description": "Data Cloud connector: streams records into Ingestion API objects.",
  "additionalProperties": false,
  "required": ["client_id", "client_secret", "source_name"],
  "properties": {
    "login_url": {"type": "string", "default": "https://login.salesforce.com", "example": "https://acme.my.salesforce.com",
      "description": "The org's login URL (My Domain), or the emulator's; the Data Cloud token is exchanged from the org's token."},
    "client_id": {"type": "string", "minLength": 1, "example": "loyaltyhub-emulator",
      "description": "Consumer key of the connected app (client-credentials flow, scopes cdp_ingest_api and api)."},
    "client_secret": {"type": "string", "minLength": 1, "example": "${DATACLOUD_CLIENT_SECRET}", "x-secret": true,
      "description": "Consumer secret of the connected app."},
    "source_name": {"type": "string", "minLength": 1, "example": "loyalty_hub",
      "description": "The Ingestion API connector's name in Data Cloud."},
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200, "example": 200,
      "description": "Most records per ingestion call (calls also stay under 200 KB)."},
    "timeout": {"type": "string", "default": "30s", "example": "30s", "description": "Bound on each HTTP call, a Go duration."}
  }
}`

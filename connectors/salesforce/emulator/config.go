package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of [Config], as set by [DefaultConfig] and by New for zero fields.
const (
	DefaultUsername      = "admin@loyaltyhub.example"
	DefaultPassword      = "emulator"
	DefaultClientID      = "loyaltyhub-emulator"
	DefaultClientSecret  = "emulator-secret"
	DefaultAPIVersion    = "63.0"
	DefaultDailyAPILimit = 100000
	DefaultTokenTTL      = 2 * time.Hour
	DefaultQueryPageSize = 2000
	// DefaultBulkUploadLimit is the largest Bulk API 2.0 upload accepted, 150 MB, as on
	// a real org.
	DefaultBulkUploadLimit = 150 << 20

	// DefaultProgramName is the Name of the LoyaltyProgram record that DefaultConfig seeds.
	DefaultProgramName = "loyaltyhub"
	// DefaultProgramID is the Id of that seeded LoyaltyProgram record, fixed so that
	// configurations can refer to it (LoyaltyProgramMember.ProgramId is required).
	DefaultProgramID = "0lpEm0000000001IAA"

	// minAPIVersion is the oldest REST API version the emulator answers on.
	minAPIVersion = 20
)

// Config configures a [Server]. Start from [DefaultConfig].
type Config struct {
	// Username is the org user that the password grant authenticates and that every
	// session runs as. Default DefaultUsername.
	Username string
	// Password of Username. The password grant must send Password+SecurityToken.
	// Default DefaultPassword.
	Password string
	// SecurityToken is appended to Password by clients, as on a real org. Default empty
	// (a trusted IP range: the password alone is accepted). Note: go-salesforce only
	// uses the password grant when its Creds.SecurityToken is non-empty.
	SecurityToken string
	// ClientID is the connected app's consumer key. Default DefaultClientID.
	ClientID string
	// ClientSecret is the connected app's consumer secret. Default DefaultClientSecret.
	ClientSecret string
	// APIVersion is the newest REST API version served, as "63.0" (a leading "v" is
	// accepted). Every version from 20.0 up to it is answered. Default DefaultAPIVersion.
	APIVersion string
	// Fields are the custom fields (and custom objects) of the org. Default (DefaultConfig):
	// LoyaltyhubFields(). Nil means the standard schema only.
	Fields Fields
	// Seed lists records created when the server starts and after each reset, by object
	// API name. A record may carry an "Id" (a valid id of that object's key prefix); other
	// fields are validated as on create (OnWrite is not called for them). Default
	// (DefaultConfig): one LoyaltyProgram named DefaultProgramName with Id DefaultProgramID.
	Seed map[string][]map[string]any
	// DailyAPILimit is the org's API request allocation for a rolling 24 hours.
	// Default DefaultDailyAPILimit (100,000 calls).
	DailyAPILimit int
	// TokenTTL is how long an access token stays valid after it is issued. Default 2h.
	TokenTTL time.Duration
	// QueryPageSize is the number of records per query page before nextRecordsUrl;
	// a request's Sforce-Query-Options: batchSize=N (200..2000) lowers it. Default 2000.
	QueryPageSize int
	// BulkUploadLimit is the largest body of one Bulk API 2.0 upload (PUT
	// /jobs/ingest/{id}/batches) accepted, in bytes after gzip decoding; a larger one
	// is answered 413 REQUEST_TOO_LARGE. Default DefaultBulkUploadLimit (150 MB).
	BulkUploadLimit int
	// InstanceURL is the instance_url returned by the token endpoint. Default: the base
	// URL of the request (scheme and Host header), which is the emulator's own address.
	InstanceURL string
	// OnWrite, if set, is called after every committed create, update or upsert with the
	// object API name, the record Id and the fields written (canonical API names, values
	// as stored). Calls happen in commit order, one at a time; OnWrite may read from the
	// server (Get, Find, Records) but must not write to it. Deletes are not reported.
	OnWrite func(object, id string, fields map[string]any)
	// Faults are active from the start (see AddFault). Default none.
	Faults []Fault
	// FaultSeed seeds the random source of probabilistic faults; 0 picks a random seed.
	FaultSeed uint64
	// Logger receives one debug line per request. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults: username admin@loyaltyhub.example,
// password emulator, empty security token, client id loyaltyhub-emulator, client secret
// emulator-secret, API v63.0, 100,000 calls a day, tokens valid 2h, query pages of
// 2000 records, Bulk API uploads of at most 150 MB, the loyaltyhub custom fields and one
// seeded LoyaltyProgram.
func DefaultConfig() Config {
	return Config{
		Username:      DefaultUsername,
		Password:      DefaultPassword,
		ClientID:      DefaultClientID,
		ClientSecret:  DefaultClientSecret,
		APIVersion:    DefaultAPIVersion,
		Fields:        LoyaltyhubFields(),
		Seed:          map[string][]map[string]any{"LoyaltyProgram": {{"Id": DefaultProgramID, "Name": DefaultProgramName, "Status": "Active"}}},
		DailyAPILimit: DefaultDailyAPILimit,
		TokenTTL:      DefaultTokenTTL,
		QueryPageSize: DefaultQueryPageSize,

		BulkUploadLimit: DefaultBulkUploadLimit,
	}
}

func (c *Config) setDefaults() {
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.ClientSecret == "" {
		c.ClientSecret = DefaultClientSecret
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	c.APIVersion = strings.TrimPrefix(c.APIVersion, "v")
	if c.DailyAPILimit == 0 {
		c.DailyAPILimit = DefaultDailyAPILimit
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.QueryPageSize == 0 {
		c.QueryPageSize = DefaultQueryPageSize
	}
	if c.BulkUploadLimit == 0 {
		c.BulkUploadLimit = DefaultBulkUploadLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

var versionRe = regexp.MustCompile(`^([0-9]+)\.0$`)

// Validate reports every problem of the configuration at once. New fills in the
// defaults of zero fields before it validates.
func (c *Config) Validate() error {
	var errs []error
	if m := versionRe.FindStringSubmatch(c.APIVersion); m == nil {
		errs = append(errs, fmt.Errorf("APIVersion %q: want a version such as \"63.0\"", c.APIVersion))
	} else if n, _ := strconv.Atoi(m[1]); n < minAPIVersion {
		errs = append(errs, fmt.Errorf("APIVersion %q: must be %d.0 or later", c.APIVersion, minAPIVersion))
	}
	if c.DailyAPILimit < 0 {
		errs = append(errs, fmt.Errorf("DailyAPILimit %d: must be positive", c.DailyAPILimit))
	}
	if c.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("TokenTTL %s: must be positive", c.TokenTTL))
	}
	if c.QueryPageSize < 0 || c.QueryPageSize > 2000 {
		errs = append(errs, fmt.Errorf("QueryPageSize %d: must be between 1 and 2000", c.QueryPageSize))
	}
	if c.BulkUploadLimit < 0 {
		errs = append(errs, fmt.Errorf("BulkUploadLimit %d: must be positive", c.BulkUploadLimit))
	}
	if c.InstanceURL != "" && !strings.HasPrefix(c.InstanceURL, "http://") && !strings.HasPrefix(c.InstanceURL, "https://") {
		errs = append(errs, fmt.Errorf("InstanceURL %q: want an http:// or https:// base URL", c.InstanceURL))
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("Faults[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) apiVersionNumber() int {
	m := versionRe.FindStringSubmatch(c.APIVersion)
	n, _ := strconv.Atoi(m[1])
	return n
}

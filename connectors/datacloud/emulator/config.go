package emulator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults of [Config], as set by [DefaultConfig] and, for TokenTTL, by New for a zero value.
const (
	DefaultClientID     = "loyaltyhub-emulator"
	DefaultClientSecret = "emulator-secret"
	// DefaultSourceName is the name of the emulated Ingestion API connector: the
	// {connectorName} segment of /api/v1/ingest/sources/{connectorName}/{objectName}.
	DefaultSourceName = "loyalty_hub"
	// DefaultTokenTTL is the lifetime of a token: expires_in 7199 seconds, as the token
	// exchange answers in the reference (UNVERIFIED: Salesforce's own sample shows 7130, an
	// already running clock; both are about the two hours of a default session).
	DefaultTokenTTL = 7199 * time.Second
)

// Object names that DefaultConfig declares.
const (
	MembersObject      = "loyalty_members"
	TransactionsObject = "loyalty_transactions"
)

// FieldType is the type of a field of an Ingestion API object schema, as the connector's
// schema file (OpenAPI) declares it; it decides which JSON value a record must give.
type FieldType string

// The field types the emulator validates values against.
const (
	FieldString   FieldType = "string"   // a JSON string
	FieldNumber   FieldType = "number"   // a JSON number
	FieldBoolean  FieldType = "boolean"  // true or false
	FieldDate     FieldType = "date"     // a string yyyy-MM-dd
	FieldDateTime FieldType = "datetime" // a string yyyy-MM-ddTHH:mm:ss.SSSZ (the .SSS is optional)
)

var fieldTypes = []FieldType{FieldString, FieldNumber, FieldBoolean, FieldDate, FieldDateTime}

// Field is one field of an object's schema.
type Field struct {
	// Name of the field, unique in its object and matched case-sensitively, as JSON
	// Schema matches property names. Required.
	Name string
	// Type of the field. Required.
	Type FieldType
	// PrimaryKey marks the field that identifies a record: upserts replace the record with
	// the same value, deletes name it in ids. Exactly one field of an object has it, and it
	// cannot be a boolean.
	PrimaryKey bool
}

// Object is one object (schema) of the Ingestion API connector, the {objectName} of the
// ingest path.
type Object struct {
	// Name of the object, unique and matched case-sensitively. Required.
	Name string
	// Fields of the object; exactly one of them is the primary key. Required.
	Fields []Field
}

// Config configures a [Server]. Start from [DefaultConfig].
type Config struct {
	// ClientID is the connected app's consumer key, checked by the core Salesforce login
	// (POST /services/oauth2/token, client_credentials grant). Required.
	ClientID string
	// ClientSecret is the connected app's consumer secret. Required.
	ClientSecret string
	// SourceName is the name of the Ingestion API connector, the {connectorName} segment
	// of the ingest paths; another name is answered 404. Required.
	SourceName string
	// Objects are the objects of the connector's schema. Default (DefaultConfig):
	// loyalty_members and loyalty_transactions.
	Objects []Object
	// TokenTTL is how long a token stays valid, core and Data Cloud alike; for Data Cloud
	// tokens it is also expires_in (in whole seconds). Default DefaultTokenTTL (7199 s).
	TokenTTL time.Duration
	// ProcessDelay is how long accepted records (and deletes) wait before they are
	// processed and visible in Records; the real API processes streaming requests in
	// batches about every 3 minutes. Flush processes them at once. Default 0: visible
	// as soon as the 202 is sent.
	ProcessDelay time.Duration
}

// DefaultConfig returns the documented defaults: client id loyaltyhub-emulator, client
// secret emulator-secret, connector loyalty_hub, tokens valid 7199 s, no process delay, and
// two objects:
//
//	loyalty_members: membership_number string (primary key), email string, first_name string,
//	  last_name string, tier string, points_balance number, status string, updated_at datetime
//	loyalty_transactions: txn_id string (primary key), membership_number string,
//	  points number, amount number, activity_ts datetime
func DefaultConfig() Config {
	return Config{
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		SourceName:   DefaultSourceName,
		TokenTTL:     DefaultTokenTTL,
		Objects: []Object{
			{
				Name: MembersObject,
				Fields: []Field{
					{Name: "membership_number", Type: FieldString, PrimaryKey: true},
					{Name: "email", Type: FieldString},
					{Name: "first_name", Type: FieldString},
					{Name: "last_name", Type: FieldString},
					{Name: "tier", Type: FieldString},
					{Name: "points_balance", Type: FieldNumber},
					{Name: "status", Type: FieldString},
					{Name: "updated_at", Type: FieldDateTime},
				},
			},
			{
				Name: TransactionsObject,
				Fields: []Field{
					{Name: "txn_id", Type: FieldString, PrimaryKey: true},
					{Name: "membership_number", Type: FieldString},
					{Name: "points", Type: FieldNumber},
					{Name: "amount", Type: FieldNumber},
					{Name: "activity_ts", Type: FieldDateTime},
				},
			},
		},
	}
}

func (c *Config) setDefaults() {
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
}

// Validate reports every problem of the configuration at once, each naming the field at
// fault. New fills in the defaults of zero fields before it validates.
func (c *Config) Validate() error {
	var errs []error
	if c.ClientID == "" {
		errs = append(errs, errors.New("ClientID is required"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("ClientSecret is required"))
	}
	switch {
	case c.SourceName == "":
		errs = append(errs, errors.New("SourceName is required"))
	case strings.ContainsAny(c.SourceName, "/?#"):
		errs = append(errs, fmt.Errorf("SourceName %q must not contain \"/\", \"?\" or \"#\": it is a path segment", c.SourceName))
	}
	if c.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("TokenTTL %s: must be positive", c.TokenTTL))
	}
	if c.ProcessDelay < 0 {
		errs = append(errs, fmt.Errorf("ProcessDelay %s: must be 0 or more", c.ProcessDelay))
	}
	names := map[string]int{}
	for i, o := range c.Objects {
		where := fmt.Sprintf("Objects[%d]", i)
		if o.Name != "" {
			where += " (" + o.Name + ")"
		}
		switch j, dup := names[o.Name]; {
		case o.Name == "":
			errs = append(errs, fmt.Errorf("%s: Name is required", where))
		case dup:
			errs = append(errs, fmt.Errorf("%s: Name %q is also the name of Objects[%d]", where, o.Name, j))
		case strings.ContainsAny(o.Name, "/?#"):
			errs = append(errs, fmt.Errorf("%s: Name %q must not contain \"/\", \"?\" or \"#\": it is a path segment", where, o.Name))
		default:
			names[o.Name] = i
		}
		errs = append(errs, validateFields(where, o.Fields)...)
	}
	return errors.Join(errs...)
}

func validateFields(where string, fields []Field) []error {
	var errs []error
	if len(fields) == 0 {
		return []error{fmt.Errorf("%s: Fields: at least one field is required", where)}
	}
	seen := map[string]int{}
	pks := 0
	for i, f := range fields {
		fw := fmt.Sprintf("%s: Fields[%d]", where, i)
		if f.Name != "" {
			fw += " (" + f.Name + ")"
		}
		switch j, dup := seen[f.Name]; {
		case f.Name == "":
			errs = append(errs, fmt.Errorf("%s: Name is required", fw))
		case dup:
			errs = append(errs, fmt.Errorf("%s: Name %q is also the name of Fields[%d]", fw, f.Name, j))
		default:
			seen[f.Name] = i
		}
		if !slices.Contains(fieldTypes, f.Type) {
			types := make([]string, len(fieldTypes))
			for k, t := range fieldTypes {
				types[k] = string(t)
			}
			errs = append(errs, fmt.Errorf("%s: Type %q: want one of %s", fw, f.Type, strings.Join(types, ", ")))
		}
		if f.PrimaryKey {
			pks++
			if f.Type == FieldBoolean {
				errs = append(errs, fmt.Errorf("%s: a primary key cannot be a boolean", fw))
			}
		}
	}
	if pks != 1 {
		errs = append(errs, fmt.Errorf("%s: exactly one field must be the primary key, found %d", where, pks))
	}
	return errs
}

package emulator

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults of [Config], as set by [DefaultConfig] and, for TokenTTL, by New for a zero value.
const (
	DefaultClientID     = "loyaltyhub-emulator"
	DefaultClientSecret = "emulator-secret"
	// DefaultTokenTTL is the lifetime of an access token: expires_in 1079 seconds, as the
	// real auth host answers (about 18 of the documented 20 minutes).
	DefaultTokenTTL = 1079 * time.Second

	// Keys (external keys) of the data extensions that DefaultConfig declares.
	SegmentMembersKey = "Loyalty_Segment_Members"
	MembersKey        = "Loyalty_Members"

	// Fixed ids of those data extensions, so that configurations may address them by id.
	SegmentMembersID = "5b0e6f52-3c1a-4d0e-9a57-1f6d2c8e0a01"
	MembersID        = "5b0e6f52-3c1a-4d0e-9a57-1f6d2c8e0a02"
)

// maxTextLength is the longest Text column SFMC allows; a Text field of Length 0 gets it.
const maxTextLength = 4000

// FieldType is the data type of a data extension column, as named in Contact Builder.
type FieldType string

// The data extension field types the emulator validates values against.
const (
	FieldText         FieldType = "Text"
	FieldNumber       FieldType = "Number"  // a whole number in the Int32 range
	FieldDecimal      FieldType = "Decimal" // any decimal number
	FieldBoolean      FieldType = "Boolean"
	FieldDate         FieldType = "Date" // a date or a date and time
	FieldEmailAddress FieldType = "EmailAddress"
	FieldPhone        FieldType = "Phone"
)

var fieldTypes = []FieldType{FieldText, FieldNumber, FieldDecimal, FieldBoolean, FieldDate, FieldEmailAddress, FieldPhone}

// defaultLength is the maximum length of a column of type t whose Field.Length is 0
// (0 for types without a length).
func defaultLength(t FieldType) int {
	switch t {
	case FieldText:
		return maxTextLength
	case FieldEmailAddress:
		return 254
	case FieldPhone:
		return 50
	}
	return 0
}

// Field is one column of a data extension.
type Field struct {
	// Name of the column, unique in its data extension. Required.
	Name string
	// Type of the column. Required.
	Type FieldType
	// Length is the maximum length in characters of a Text, EmailAddress or Phone value.
	// Default 0: 4000 for Text, 254 for EmailAddress, 50 for Phone. Ignored for other types.
	Length int
	// PrimaryKey makes the column part of the primary key. A primary key column is always
	// required, as in SFMC.
	PrimaryKey bool
	// Required is "nullable: false": a new row must give the column a non-null value, and
	// no write may set it to null. Default false.
	Required bool
}

// DataExtension declares one data extension (a table) of the emulated account.
type DataExtension struct {
	// Key is the external key (CustomerKey), used in /key:{Key}/ paths. Required, unique
	// (case-insensitively, as SFMC compares keys).
	Key string
	// Name is the display name. Default: Key.
	Name string
	// ID is the data extension's GUID, used in /{ID}/ paths. Default: a random GUID.
	ID string
	// Fields are the columns, at least one of them a primary key. Required.
	Fields []Field
}

// Config configures a [Server]. Start from [DefaultConfig].
type Config struct {
	// ClientID is the installed package's client id. Required.
	ClientID string
	// ClientSecret is the installed package's client secret. Required.
	ClientSecret string
	// AccountID is the MID of the business unit. When set, a token request whose
	// account_id names another account is refused. Default empty: any account_id is accepted.
	AccountID string
	// TokenTTL is how long an access token stays valid; it is also expires_in in the
	// token response (in whole seconds). Default DefaultTokenTTL (1079 s).
	TokenTTL time.Duration
	// DataExtensions are the data extensions of the account. Default (DefaultConfig):
	// Loyalty_Segment_Members and Loyalty_Members.
	DataExtensions []DataExtension
}

// DefaultConfig returns the documented defaults: client id loyaltyhub-emulator, client
// secret emulator-secret, no account check, tokens valid 1079 s, and the two data
// extensions that loyaltyhub's example mappings write:
//
//	Loyalty_Segment_Members: SegmentId Text(50) PK, MembershipNumber Text(50) PK,
//	  SegmentMemberKey Text(120), Joined Boolean, Joined_At Date, Segment_Version Number
//	Loyalty_Members: MembershipNumber Text(50) PK, Email EmailAddress(254), FirstName Text(80),
//	  LastName Text(80), Tier Text(40), PointsBalance Decimal, Status Text(40), Updated_At Date
func DefaultConfig() Config {
	return Config{
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		TokenTTL:     DefaultTokenTTL,
		DataExtensions: []DataExtension{
			{
				Key:  SegmentMembersKey,
				Name: SegmentMembersKey,
				ID:   SegmentMembersID,
				Fields: []Field{
					{Name: "SegmentId", Type: FieldText, Length: 50, PrimaryKey: true, Required: true},
					{Name: "MembershipNumber", Type: FieldText, Length: 50, PrimaryKey: true, Required: true},
					{Name: "SegmentMemberKey", Type: FieldText, Length: 120},
					{Name: "Joined", Type: FieldBoolean},
					{Name: "Joined_At", Type: FieldDate},
					{Name: "Segment_Version", Type: FieldNumber},
				},
			},
			{
				Key:  MembersKey,
				Name: MembersKey,
				ID:   MembersID,
				Fields: []Field{
					{Name: "MembershipNumber", Type: FieldText, Length: 50, PrimaryKey: true, Required: true},
					{Name: "Email", Type: FieldEmailAddress, Length: 254},
					{Name: "FirstName", Type: FieldText, Length: 80},
					{Name: "LastName", Type: FieldText, Length: 80},
					{Name: "Tier", Type: FieldText, Length: 40},
					{Name: "PointsBalance", Type: FieldDecimal},
					{Name: "Status", Type: FieldText, Length: 40},
					{Name: "Updated_At", Type: FieldDate},
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

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

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
	if c.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("TokenTTL %s: must be positive", c.TokenTTL))
	}
	keys := map[string]int{}
	ids := map[string]int{}
	for i, de := range c.DataExtensions {
		where := fmt.Sprintf("DataExtensions[%d]", i)
		if de.Key != "" {
			where += " (" + de.Key + ")"
		}
		if de.Key == "" {
			errs = append(errs, fmt.Errorf("%s: Key is required", where))
		} else if j, dup := keys[strings.ToLower(de.Key)]; dup {
			errs = append(errs, fmt.Errorf("%s: Key %q is also the key of DataExtensions[%d]", where, de.Key, j))
		} else {
			keys[strings.ToLower(de.Key)] = i
		}
		if strings.ContainsAny(de.Key, "/") {
			errs = append(errs, fmt.Errorf("%s: Key %q must not contain \"/\"", where, de.Key))
		}
		if de.ID != "" {
			if !guidRe.MatchString(de.ID) {
				errs = append(errs, fmt.Errorf("%s: ID %q is not a GUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", where, de.ID))
			} else if j, dup := ids[strings.ToLower(de.ID)]; dup {
				errs = append(errs, fmt.Errorf("%s: ID %q is also the ID of DataExtensions[%d]", where, de.ID, j))
			} else {
				ids[strings.ToLower(de.ID)] = i
			}
		}
		errs = append(errs, validateFields(where, de.Fields)...)
	}
	return errors.Join(errs...)
}

func validateFields(where string, fields []Field) []error {
	var errs []error
	if len(fields) == 0 {
		return []error{fmt.Errorf("%s: Fields: at least one field is required", where)}
	}
	names := map[string]int{}
	pk := false
	for i, f := range fields {
		fw := fmt.Sprintf("%s: Fields[%d]", where, i)
		if f.Name != "" {
			fw += " (" + f.Name + ")"
		}
		if f.Name == "" {
			errs = append(errs, fmt.Errorf("%s: Name is required", fw))
		} else if j, dup := names[strings.ToLower(f.Name)]; dup {
			errs = append(errs, fmt.Errorf("%s: Name %q is also the name of Fields[%d]", fw, f.Name, j))
		} else {
			names[strings.ToLower(f.Name)] = i
		}
		if !slices.Contains(fieldTypes, f.Type) {
			want := make([]string, len(fieldTypes))
			for k, t := range fieldTypes {
				want[k] = string(t)
			}
			errs = append(errs, fmt.Errorf("%s: Type %q: want one of %s", fw, f.Type, strings.Join(want, ", ")))
		}
		if f.Length < 0 {
			errs = append(errs, fmt.Errorf("%s: Length %d: must be 0 (the type's default) or more", fw, f.Length))
		}
		if f.Type == FieldText && f.Length > maxTextLength {
			errs = append(errs, fmt.Errorf("%s: Length %d: a Text column holds at most %d characters", fw, f.Length, maxTextLength))
		}
		pk = pk || f.PrimaryKey
	}
	if !pk {
		errs = append(errs, fmt.Errorf("%s: Fields: at least one field must be a primary key (the rowset API upserts by primary key)", where))
	}
	return errs
}

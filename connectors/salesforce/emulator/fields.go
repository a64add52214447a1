package emulator

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Fields are the custom fields a CRM admin added to the org, by object API name. An
// object name that is not a standard object of the emulator and ends in "__c" declares
// a custom object (with Id, Name, OwnerId and the audit fields) holding those fields.
//
// The file form (YAML or JSON) is the same map:
//
//	LoyaltyProgramMember:
//	  - name: Ledger_Member_Id__c
//	    type: text
//	    length: 64
//	    externalId: true
//	    unique: true
//	  - name: Tier__c
//	    type: picklist
//	    picklist: [Bronze, Silver, Gold, Platinum]
type Fields map[string][]CustomField

// CustomField is one custom field, in the terms of Setup > Object Manager > Fields.
type CustomField struct {
	// Name is the API name; it must end in "__c". Required.
	Name string `yaml:"name" json:"name"`
	// Label shown by describe. Default: Name without "__c", underscores as spaces.
	Label string `yaml:"label,omitempty" json:"label,omitempty"`
	// Type is one of: text (describe type string), textarea, longtextarea, email, phone,
	// url, number (double), currency, percent, int, checkbox (boolean), date, datetime,
	// picklist, multipicklist, lookup (reference). Describe type names are accepted too.
	// Required.
	Type string `yaml:"type" json:"type"`
	// Length is the maximum length in characters of text fields. Default 255 for text and
	// textarea, 32768 for longtextarea; at most 255 for text, 131072 for longtextarea.
	Length int `yaml:"length,omitempty" json:"length,omitempty"`
	// Precision is the total number of digits of number, currency and percent fields.
	// Default 18; at most 18.
	Precision int `yaml:"precision,omitempty" json:"precision,omitempty"`
	// Scale is the number of digits after the decimal point. Default 0; at most Precision.
	Scale int `yaml:"scale,omitempty" json:"scale,omitempty"`
	// ExternalID marks the field usable as an upsert key (text, number, email only).
	ExternalID bool `yaml:"externalId,omitempty" json:"externalId,omitempty"`
	// Unique makes the org reject a second record with the same value (DUPLICATE_VALUE).
	Unique bool `yaml:"unique,omitempty" json:"unique,omitempty"`
	// CaseSensitive makes uniqueness and external-id matching case-sensitive. Default false,
	// as on a real org.
	CaseSensitive bool `yaml:"caseSensitive,omitempty" json:"caseSensitive,omitempty"`
	// Required makes creates without a value fail with REQUIRED_FIELD_MISSING.
	Required bool `yaml:"required,omitempty" json:"required,omitempty"`
	// Picklist lists the values of picklist and multipicklist fields. Required for them.
	Picklist []string `yaml:"picklist,omitempty" json:"picklist,omitempty"`
	// Unrestricted lets a picklist accept values outside Picklist. Default false: the
	// picklist is restricted (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), as new custom
	// picklists are in Setup.
	Unrestricted bool `yaml:"unrestricted,omitempty" json:"unrestricted,omitempty"`
	// Default is the value set on create when none is given.
	Default any `yaml:"default,omitempty" json:"default,omitempty"`
	// ReferenceTo is the object a lookup field points to. Required for lookups.
	ReferenceTo string `yaml:"referenceTo,omitempty" json:"referenceTo,omitempty"`
}

//go:embed loyaltyhub-fields.yaml
var loyaltyhubFieldsYAML []byte

// LoyaltyhubFieldsYAML returns the text of loyaltyhub-fields.yaml: the custom fields a CRM
// admin adds to an org for loyaltyhub.
func LoyaltyhubFieldsYAML() []byte { return bytes.Clone(loyaltyhubFieldsYAML) }

// LoyaltyhubFields returns the custom fields of loyaltyhub-fields.yaml, parsed.
func LoyaltyhubFields() Fields {
	f, err := ParseFields("loyaltyhub-fields.yaml", loyaltyhubFieldsYAML)
	if err != nil {
		panic("emulator: embedded loyaltyhub-fields.yaml: " + err.Error())
	}
	return f
}

// LoadFields reads a custom-field file (YAML or JSON) and checks it.
func LoadFields(path string) (Fields, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading custom fields: %w", err)
	}
	return ParseFields(path, data)
}

// ParseFields decodes a custom-field document (YAML or JSON); name is used in errors.
// Unknown keys, bad types and impossible combinations are reported with their line.
func ParseFields(name string, data []byte) (Fields, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var fields Fields
	if err := dec.Decode(&fields); err != nil {
		if errors.Is(err, io.EOF) {
			return Fields{}, nil
		}
		return nil, fmt.Errorf("%s: %w (want a map of object API name to a list of fields with name, type, ...)", name, err)
	}
	lines := fieldLines(&doc)
	var errs []error
	objects := make([]string, 0, len(fields))
	for o := range fields {
		objects = append(objects, o)
	}
	sort.Strings(objects)
	known := map[string]bool{}
	for _, o := range standardObjectNames() {
		known[strings.ToLower(o)] = true
	}
	for _, o := range objects {
		known[strings.ToLower(o)] = true
	}
	for _, o := range objects {
		if !isStandard(o) && !strings.HasSuffix(o, "__c") {
			errs = append(errs, fmt.Errorf("%s:%d: object %q: not a standard object of the emulator (%s) nor a custom object ending in __c",
				name, lines[o+"\x00"], o, strings.Join(standardObjectNames(), ", ")))
			continue
		}
		seen := map[string]bool{}
		for i, f := range fields[o] {
			where := fmt.Sprintf("%s:%d: %s field %d (%s)", name, lines[fmt.Sprintf("%s\x00%d", o, i)], o, i+1, f.Name)
			if seen[strings.ToLower(f.Name)] {
				errs = append(errs, fmt.Errorf("%s: declared twice", where))
			}
			seen[strings.ToLower(f.Name)] = true
			if _, err := f.toFieldDef(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			if f.ReferenceTo != "" && !known[strings.ToLower(f.ReferenceTo)] {
				errs = append(errs, fmt.Errorf("%s: referenceTo %q is not an object of the emulator", where, f.ReferenceTo))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if fields == nil {
		fields = Fields{}
	}
	return fields, nil
}

func isStandard(name string) bool {
	for _, o := range standardObjectNames() {
		if strings.EqualFold(o, name) {
			return true
		}
	}
	return false
}

// fieldLines maps "Object\x00" and "Object\x00index" to the line of that node.
func fieldLines(doc *yaml.Node) map[string]int {
	out := map[string]int{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		out[key.Value+"\x00"] = key.Line
		for j, item := range val.Content {
			out[fmt.Sprintf("%s\x00%d", key.Value, j)] = item.Line
		}
	}
	return out
}

var customNameRe = regexp.MustCompile(`^[A-Za-z](?:[A-Za-z0-9]|_[A-Za-z0-9])*__c$`)

var customTypes = map[string]fieldType{
	"text": tString, "string": tString, "textarea": tTextarea, "longtextarea": tTextarea,
	"email": tEmail, "phone": tPhone, "url": tURL,
	"number": tDouble, "double": tDouble, "currency": tCurrency, "percent": tPercent, "int": tInt,
	"checkbox": tBoolean, "boolean": tBoolean, "date": tDate, "datetime": tDatetime,
	"picklist": tPicklist, "multipicklist": tMultipicklist, "lookup": tReference, "reference": tReference,
}

func customTypeNames() string {
	names := make([]string, 0, len(customTypes))
	for n := range customTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// toFieldDef checks the field and returns its describe form.
func (c CustomField) toFieldDef() (*fieldDef, error) {
	var errs []error
	if !customNameRe.MatchString(c.Name) || len(c.Name) > 43 {
		errs = append(errs, fmt.Errorf("name %q: want an API name of letters, digits and single underscores ending in __c (at most 40 characters before __c)", c.Name))
	}
	typeName := strings.ToLower(c.Type)
	t, ok := customTypes[typeName]
	if !ok {
		return nil, errors.Join(append(errs, fmt.Errorf("type %q: want one of %s", c.Type, customTypeNames()))...)
	}
	label := c.Label
	if label == "" {
		label = strings.ReplaceAll(strings.TrimSuffix(c.Name, "__c"), "_", " ")
	}
	f := fld(c.Name, label, t)
	f.Custom = true
	switch {
	case t == tString:
		f.Length = orDefault(c.Length, 255)
		if f.Length < 1 || f.Length > 255 {
			errs = append(errs, fmt.Errorf("length %d: text fields hold 1 to 255 characters (use longtextarea for more)", c.Length))
		}
	case t == tTextarea && typeName == "longtextarea":
		f.Length = orDefault(c.Length, 32768)
		if f.Length < 256 || f.Length > 131072 {
			errs = append(errs, fmt.Errorf("length %d: long text areas hold 256 to 131072 characters", c.Length))
		}
	case t == tTextarea:
		f.Length = orDefault(c.Length, 255)
		if f.Length < 1 || f.Length > 255 {
			errs = append(errs, fmt.Errorf("length %d: text areas hold 1 to 255 characters (use longtextarea for more)", c.Length))
		}
	case c.Length != 0 && t != tEmail && t != tPhone && t != tURL:
		errs = append(errs, fmt.Errorf("length: only text, textarea and longtextarea fields have a length"))
	}
	if t == tDouble || t == tCurrency || t == tPercent {
		f.Precision = orDefault(c.Precision, 18)
		f.Scale = c.Scale
		if f.Precision < 1 || f.Precision > 18 {
			errs = append(errs, fmt.Errorf("precision %d: want 1 to 18 digits", c.Precision))
		}
		if f.Scale < 0 || f.Scale > f.Precision {
			errs = append(errs, fmt.Errorf("scale %d: want 0 to precision (%d)", c.Scale, f.Precision))
		}
	} else if c.Precision != 0 || c.Scale != 0 {
		errs = append(errs, fmt.Errorf("precision/scale: only number, currency and percent fields have them"))
	}
	if t == tPicklist || t == tMultipicklist {
		if len(c.Picklist) == 0 {
			errs = append(errs, fmt.Errorf("picklist: a %s field needs at least one value", c.Type))
		}
		seen := map[string]bool{}
		for _, v := range c.Picklist {
			if v == "" || seen[v] {
				errs = append(errs, fmt.Errorf("picklist value %q: values must be non-empty and distinct", v))
			}
			seen[v] = true
		}
		f.pick(!c.Unrestricted, c.Picklist...)
	} else if len(c.Picklist) != 0 || c.Unrestricted {
		errs = append(errs, fmt.Errorf("picklist: only picklist and multipicklist fields have values"))
	}
	if t == tReference {
		if c.ReferenceTo == "" {
			errs = append(errs, fmt.Errorf("referenceTo: a lookup field needs the object it points to"))
		}
		f.ref(strings.TrimSuffix(c.Name, "__c")+"__r", c.ReferenceTo)
	} else if c.ReferenceTo != "" {
		errs = append(errs, fmt.Errorf("referenceTo: only lookup fields point to an object"))
	}
	keyable := t == tString || t == tEmail || t == tDouble || t == tInt
	if c.ExternalID && !keyable {
		errs = append(errs, fmt.Errorf("externalId: only text, number and email fields can be external ids (type is %s)", c.Type))
	}
	if c.Unique && !keyable {
		errs = append(errs, fmt.Errorf("unique: only text, number and email fields can be unique (type is %s)", c.Type))
	}
	if c.CaseSensitive && !(c.Unique || c.ExternalID) {
		errs = append(errs, fmt.Errorf("caseSensitive: only applies to unique or external-id fields"))
	}
	f.ExternalID, f.Unique, f.CaseSensitive = c.ExternalID, c.Unique, c.CaseSensitive
	if c.ExternalID {
		f.IDLookup = true
	}
	if c.Required {
		if t == tBoolean {
			errs = append(errs, fmt.Errorf("required: checkbox fields always have a value"))
		}
		f.Nillable = false
	}
	if c.Default != nil {
		f.DefaultedOnCreate = true
		f.DefaultValue = c.Default
		if t == tPicklist {
			for i := range f.Picklist {
				f.Picklist[i].DefaultValue = f.Picklist[i].Value == fmt.Sprint(c.Default)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Default != nil {
		v, perr := f.coerce(c.Default)
		if perr != nil {
			return nil, fmt.Errorf("default %v: %s", c.Default, perr.Message)
		}
		nv, rerr := f.normalize(v)
		if rerr != nil {
			return nil, fmt.Errorf("default %v: %s", c.Default, rerr.Message)
		}
		f.DefaultValue = nv
	}
	return f, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

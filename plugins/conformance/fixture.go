package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// Fixture tells the kit how to exercise one plugin: a config it accepts,
// configs it must refuse, batches to write with the outcome expected for
// each record, a record template for a full-size batch, and what to read.
// A vendor ships it beside the plugin (see examples/geooffers/conformance.json).
type Fixture struct {
	// Config is a config block the plugin accepts. Required for every check
	// past Configure.
	Config json.RawMessage `json:"config"`
	// BadConfigs are config blocks the plugin must refuse, each with a piece
	// of the error text (the field at fault) the refusal must contain.
	BadConfigs []BadConfig `json:"bad_configs,omitempty"`
	// Writes are batches written in order, then written again unchanged to
	// check that a re-write has the same effect.
	Writes []WriteStep `json:"writes,omitempty"`
	// LargeBatch: a batch of the plugin's max_batch records made from a
	// template; "{n}" in the key and in string field values becomes the
	// record's number.
	LargeBatch *LargeBatch `json:"large_batch,omitempty"`
	// Read: the object to page through after the writes.
	Read *ReadStep `json:"read,omitempty"`
}

// BadConfig is a config the plugin must refuse with a permanent error.
type BadConfig struct {
	Config json.RawMessage `json:"config"`
	// ErrorContains must appear in the error (case-insensitive).
	ErrorContains string `json:"error_contains"`
}

// WriteStep is one batch and the outcome expected per record.
type WriteStep struct {
	Name            string               `json:"name"`
	Object          string               `json:"object"`
	Operation       connectors.Operation `json:"operation"`
	ExternalIDField string               `json:"external_id_field,omitempty"`
	Records         []connectors.Record  `json:"records"`
	// Expect is "applied", "retryable" or "permanent" per record.
	Expect []string `json:"expect"`
}

// LargeBatch describes a full-size batch.
type LargeBatch struct {
	Object          string               `json:"object"`
	Operation       connectors.Operation `json:"operation"`
	ExternalIDField string               `json:"external_id_field,omitempty"`
	Template        connectors.Record    `json:"template"`
}

// ReadStep says what to read.
type ReadStep struct {
	Object string `json:"object"`
	// MinChanges is how many changes the writes must have produced at least.
	MinChanges int `json:"min_changes"`
	// PageSize is the limit of each read (default 2, to make several pages).
	PageSize int `json:"page_size,omitempty"`
}

// LoadFixture reads a fixture file, expanding ${VAR} references from the
// environment (for addresses and keys of a test service).
func LoadFixture(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var missing []string
	expanded := os.Expand(string(b), func(k string) string {
		v, ok := os.LookupEnv(k)
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("fixture %s: environment variables not set: %s", path, strings.Join(missing, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.DisallowUnknownFields()
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", path, err)
	}
	return &f, f.Validate()
}

// Validate reports every problem of the fixture.
func (f *Fixture) Validate() error {
	var errs []error
	if len(f.Config) == 0 {
		errs = append(errs, errors.New("config is required"))
	}
	for i, w := range f.Writes {
		if !w.Operation.Valid() {
			errs = append(errs, fmt.Errorf("writes[%d] (%s): operation %q is not one of upsert, insert, update, delete", i, w.Name, w.Operation))
		}
		if len(w.Expect) != len(w.Records) {
			errs = append(errs, fmt.Errorf("writes[%d] (%s): %d expectations for %d records", i, w.Name, len(w.Expect), len(w.Records)))
		}
		for j, e := range w.Expect {
			if _, ok := statusNames[e]; !ok {
				errs = append(errs, fmt.Errorf("writes[%d] (%s): expect[%d] %q is not applied, retryable or permanent", i, w.Name, j, e))
			}
		}
	}
	if f.LargeBatch != nil && !f.LargeBatch.Operation.Valid() {
		errs = append(errs, fmt.Errorf("large_batch: operation %q is not valid", f.LargeBatch.Operation))
	}
	return errors.Join(errs...)
}

var statusNames = map[string]connectors.Status{
	"applied": connectors.StatusApplied, "retryable": connectors.StatusRetryable, "permanent": connectors.StatusPermanent,
}

// records builds n records from the template.
func (l *LargeBatch) records(n int) []connectors.Record {
	out := make([]connectors.Record, n)
	for i := range out {
		num := strconv.Itoa(i)
		r := connectors.Record{Key: strings.ReplaceAll(l.Template.Key, "{n}", num), TargetID: l.Template.TargetID}
		if l.Template.Fields != nil {
			r.Fields = make(map[string]any, len(l.Template.Fields))
			for k, v := range l.Template.Fields {
				if s, ok := v.(string); ok {
					v = strings.ReplaceAll(s, "{n}", num)
				}
				r.Fields[k] = v
			}
		}
		out[i] = r
	}
	return out
}

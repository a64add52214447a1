package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// GetRecord reads one record by external id (GET
// /sobjects/{object}/{externalIDField}/{key}), or by its Salesforce id when
// externalIDField is "Id" or empty (GET /sobjects/{object}/{key}). It
// returns the record's fields without the "attributes" block, whole numbers
// as int64; found is false when no record has that key (HTTP 404). The
// object and the field are checked against the object's describe first, so
// an unknown object or field is an error naming it, not "not found". A key
// that matches more than one record (HTTP 300) is an error.
func (c *Connector) GetRecord(ctx context.Context, object, externalIDField, key string) (map[string]any, bool, error) {
	const op = "salesforce.GetRecord"
	if key == "" {
		return nil, false, connectors.E(op, connectors.Permanent, errors.New("the key is empty"))
	}
	schema, err := c.DescribeObject(ctx, object)
	if err != nil {
		return nil, false, err
	}
	path := "/sobjects/" + object + "/" + url.PathEscape(key)
	if externalIDField != "" && externalIDField != "Id" {
		var f *connectors.FieldSchema
		names := make([]string, 0, len(schema.Fields))
		for i := range schema.Fields {
			names = append(names, schema.Fields[i].Name)
			if strings.EqualFold(schema.Fields[i].Name, externalIDField) {
				f = &schema.Fields[i]
			}
		}
		if f == nil {
			return nil, false, connectors.E(op, connectors.Permanent, fmt.Errorf("%s has no field %q; its fields: %s", object, externalIDField, strings.Join(names, ", ")))
		}
		path = "/sobjects/" + object + "/" + f.Name + "/" + url.PathEscape(key)
	}
	var calls int
	resp, err := c.call(ctx, op, http.MethodGet, path, nil, &calls)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			switch ae.HTTPStatus {
			case http.StatusNotFound:
				return nil, false, nil
			case http.StatusMultipleChoices:
				return nil, false, connectors.E(op, connectors.Permanent, fmt.Errorf("more than one %s has %s = %q: %w", object, externalIDField, key, err))
			}
		}
		return nil, false, err
	}
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil || rec == nil {
		return nil, false, connectors.E(op, connectors.Transient, fmt.Errorf("GET %s: the answer is not a record (a JSON object)", path))
	}
	delete(rec, "attributes")
	for k, v := range rec {
		rec[k] = plainNumbers(v)
	}
	return rec, true, nil
}

// plainNumbers turns json.Number into int64 (whole numbers) or float64, in
// nested values too.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

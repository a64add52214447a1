package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// describeJSON is the part of GET /sobjects/{Obj}/describe the hub reads.
type describeJSON struct {
	Name   string `json:"name"`
	Fields []struct {
		Name              string   `json:"name"`
		Label             string   `json:"label"`
		Type              string   `json:"type"`
		Length            int      `json:"length"`
		Createable        bool     `json:"createable"`
		Updateable        bool     `json:"updateable"`
		Nillable          bool     `json:"nillable"`
		DefaultedOnCreate bool     `json:"defaultedOnCreate"`
		ExternalID        bool     `json:"externalId"`
		Unique            bool     `json:"unique"`
		ReferenceTo       []string `json:"referenceTo"`
		PicklistValues    []struct {
			Value  string `json:"value"`
			Active bool   `json:"active"`
		} `json:"picklistValues"`
	} `json:"fields"`
}

// DescribeObject returns the fields of an sObject (GET
// /sobjects/{object}/describe): type, length, createable, updateable,
// nillable, required (not nillable, createable and not defaulted on create),
// external id, unique, active picklist values and reference targets. The
// answer is cached for the connector's life (until Configure is called again).
func (c *Connector) DescribeObject(ctx context.Context, object string) (connectors.ObjectSchema, error) {
	const op = "salesforce.DescribeObject"
	if !apiNameRE.MatchString(object) {
		return connectors.ObjectSchema{}, connectors.E(op, connectors.Permanent, fmt.Errorf("object %q is not an sObject API name (Account, LoyaltyProgramMember, Custom__c)", object))
	}
	c.schemaMu.Lock()
	s, ok := c.schemas[object]
	c.schemaMu.Unlock()
	if ok {
		return s, nil
	}

	var calls int
	resp, err := c.call(ctx, op, http.MethodGet, "/sobjects/"+object+"/describe", nil, &calls)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
			return connectors.ObjectSchema{}, connectors.E(op, connectors.Permanent, fmt.Errorf("sObject %q does not exist or is not accessible to the integration user (custom objects end in __c): %w", object, err))
		}
		return connectors.ObjectSchema{}, err
	}
	var d describeJSON
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return connectors.ObjectSchema{}, connectors.E(op, connectors.Transient, fmt.Errorf("describe %s: the answer is not a describe result: %w", object, err))
	}
	s = connectors.ObjectSchema{Name: d.Name, Fields: make([]connectors.FieldSchema, 0, len(d.Fields))}
	if s.Name == "" {
		s.Name = object
	}
	for _, f := range d.Fields {
		fs := connectors.FieldSchema{
			Name:        f.Name,
			Label:       f.Label,
			Type:        f.Type,
			Length:      f.Length,
			Createable:  f.Createable,
			Updateable:  f.Updateable,
			Nillable:    f.Nillable,
			Required:    !f.Nillable && f.Createable && !f.DefaultedOnCreate,
			ExternalID:  f.ExternalID,
			Unique:      f.Unique,
			ReferenceTo: f.ReferenceTo,
		}
		for _, p := range f.PicklistValues {
			if p.Active {
				fs.Picklist = append(fs.Picklist, p.Value)
			}
		}
		s.Fields = append(s.Fields, fs)
	}
	c.schemaMu.Lock()
	c.schemas[object] = s
	c.schemaMu.Unlock()
	return s, nil
}

// Package openapi holds the hub's HTTP contract (hub.yaml) and the server
// that serves it: CloudEvents ingress on POST /v1/events/{source}, health,
// readiness and metrics. Every request is validated against hub.yaml with
// kin-openapi before any handler runs.
package openapi

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// HubYAML is the hub's OpenAPI 3.0.3 document, as embedded in the binary.
//
//go:embed hub.yaml
var HubYAML []byte

// Spec loads and validates HubYAML. Each call returns a new document.
func Spec() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(HubYAML)
	if err != nil {
		return nil, fmt.Errorf("loading openapi/hub.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating openapi/hub.yaml: %w", err)
	}
	return doc, nil
}

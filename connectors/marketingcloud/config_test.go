package marketingcloud_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/marketingcloud"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := marketingcloud.ParseConfig(json.RawMessage(`{"subdomain":"mc123abc","client_id":"id","client_secret":"s"}`))
	require.NoError(t, err)
	assert.Equal(t, "https://mc123abc.auth.marketingcloudapis.com", cfg.AuthURL)
	assert.Equal(t, 50, cfg.BatchSize)
	assert.Equal(t, "30s", cfg.Timeout)

	cfg, err = marketingcloud.ParseConfig(json.RawMessage(`{"auth_url":"http://127.0.0.1:8082/","client_id":"id","client_secret":"s"}`))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8082", cfg.AuthURL, "the trailing slash is dropped")
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // all present
	}{
		{"nothing", `{}`, []string{
			"subdomain and auth_url are both empty: set subdomain",
			"client_id is empty: set it to the installed package's client id",
			"client_secret is empty",
		}},
		{"every other problem at once",
			`{"auth_url":"ftp://x","client_id":"a","client_secret":"b","account_id":"BU-1","batch_size":501,"timeout":"soon",
			  "data_extensions":{"Members":{"primary_keys":[]},"Segs":{"primary_keys":["A","","A"]}}}`,
			[]string{
				`auth_url "ftp://x" is not an absolute http(s) URL`,
				`account_id "BU-1" is not a MID`,
				"batch_size 501 is out of range: set 1..500",
				`timeout "soon" is not a duration`,
				"data_extensions.Members.primary_keys is empty",
				"data_extensions.Segs.primary_keys[1] is empty",
				`data_extensions.Segs.primary_keys lists "A" twice`,
			}},
		{"a URL as subdomain", `{"subdomain":"https://mc1.auth.marketingcloudapis.com","client_id":"a","client_secret":"b"}`,
			[]string{`subdomain "https://mc1.auth.marketingcloudapis.com" is not a tenant subdomain`}},
		{"auth url with a path", `{"auth_url":"https://mc1.auth.marketingcloudapis.com/v2/token","client_id":"a","client_secret":"b"}`,
			[]string{"has a path, query or fragment: give the base URL only"}},
		{"unknown field", `{"subdomain":"x","client_id":"a","client_secret":"b","clientid":"c"}`,
			[]string{`unknown field "clientid": valid fields are subdomain, auth_url, client_id`}},
		{"wrong type", `{"subdomain":"x","client_id":"a","client_secret":"b","batch_size":"50"}`,
			[]string{"field batch_size is a JSON string but must be a whole number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := marketingcloud.ParseConfig(json.RawMessage(tt.in))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			// Configure reports the same, as a permanent error.
			err = marketingcloud.New(nil).Configure(context.Background(), json.RawMessage(tt.in))
			assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
		})
	}
}

// The published schema is a valid OpenAPI 3 schema that the example config
// satisfies, with the secret marked.
func TestConfigSchema(t *testing.T) {
	d, err := marketingcloud.New(nil).Describe(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "marketingcloud", d.Name)
	var schema openapi3.Schema
	require.NoError(t, json.Unmarshal(d.ConfigSchema, &schema))
	require.NoError(t, schema.Validate(context.Background()))
	for name, p := range schema.Properties {
		assert.NotEmpty(t, p.Value.Description, name)
		assert.NotNil(t, p.Value.Example, name)
	}
	assert.Equal(t, true, schema.Properties["client_secret"].Value.Extensions["x-secret"])
	example := `{"auth_url":"http://127.0.0.1:8082","client_id":"a","client_secret":"b","batch_size":50,
		"data_extensions":{"Loyalty_Segment_Members":{"primary_keys":["SegmentId","MembershipNumber"]}}}`
	var v any
	require.NoError(t, json.Unmarshal([]byte(example), &v))
	require.NoError(t, schema.VisitJSON(v))
	_, err = marketingcloud.ParseConfig(json.RawMessage(example))
	require.NoError(t, err)
	var bad any
	require.NoError(t, json.Unmarshal([]byte(`{"client_id":"a","client_secret":"b","data_extensions":{"X":{"primary_keys":[]}}}`), &bad))
	assert.Error(t, schema.VisitJSON(bad), "an empty primary key list breaks the schema too")
}

package config_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/config"
)

func TestAdminTokensAndRedaction(t *testing.T) {
	t.Setenv("ALICE_TOKEN", "alice-0123456789abcdef")
	path := inDir(t, `http:
  admin_token: old-style-token
  admin_tokens:
    - {name: ops-alice, role: operator, token: "${ALICE_TOKEN}"}
    - {name: viewer@example.com, role: read, token: viewer-0123456789abcdef}
  redact_fields: [email, contacts.phone]
`, nil)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.AdminToken{
		{Name: "ops-alice", Role: config.RoleOperator, Token: "alice-0123456789abcdef"},
		{Name: "viewer@example.com", Role: config.RoleRead, Token: "viewer-0123456789abcdef"},
		{Name: "admin", Role: config.RoleOperator, Token: "old-style-token"},
	}
	if got := cfg.HTTP.Tokens(); !reflect.DeepEqual(got, want) {
		t.Errorf("Tokens():\n got %+v\nwant %+v", got, want)
	}
	if got := cfg.HTTP.RedactFields; !reflect.DeepEqual(got, []string{"email", "contacts.phone"}) {
		t.Errorf("redact_fields: %q", got)
	}

	// No token ever shows: not in String, the log value, JSON or Redacted.
	shown := cfg.String() + cfg.LogValue().String() + string(must(json.Marshal(cfg)))
	redacted, err := cfg.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	shown += string(redacted)
	for _, secret := range []string{"alice-0123456789abcdef", "viewer-0123456789abcdef", "old-style-token"} {
		if strings.Contains(shown, secret) {
			t.Errorf("token %q shows:\n%s", secret, shown)
		}
	}
	if !strings.Contains(string(redacted), "viewer@example.com") {
		t.Errorf("the token names show:\n%s", redacted)
	}
	if cfg.HTTP.AdminTokens[0].Token.Value() != "alice-0123456789abcdef" {
		t.Error("Redacted changed the config it copies")
	}
}

func TestRedactFieldsDefault(t *testing.T) {
	cfg, err := config.Load(inDir(t, "http: {listen: 127.0.0.1:9000}\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.HTTP.RedactFields, config.DefaultRedactFields) {
		t.Errorf("default redact_fields: %q", cfg.HTTP.RedactFields)
	}
	if len(cfg.HTTP.Tokens()) != 0 {
		t.Errorf("tokens without any declared: %+v", cfg.HTTP.Tokens())
	}
	cfg, err = config.Load(inDir(t, "http: {redact_fields: []}\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.RedactFields == nil || len(cfg.HTTP.RedactFields) != 0 {
		t.Errorf("redact_fields: [] redacts nothing, got %q", cfg.HTTP.RedactFields)
	}
}

func TestAdminTokenErrors(t *testing.T) {
	_, err := config.Load(inDir(t, `http:
  admin_token: old-style-token
  admin_tokens:
    - {name: admin, role: operator, token: aaaaaaaaaaaaaaaa1}
    - {name: ops, role: root, token: bbbbbbbbbbbbbbbb2}
    - {name: ops, role: read, token: short}
    - {name: "has space", role: read, token: aaaaaaaaaaaaaaaa1}
    - {name: nobody, role: read}
    - {role: read, token: cccccccccccccccc3}
  redact_fields: [email, "address..street", ""]
`, nil))
	want := []string{
		`hub.yaml:4:14: http.admin_tokens[0].name: "admin" is taken by http.admin_token; give each token its own name`,
		`hub.yaml:5:25: http.admin_tokens[1].role: unknown role "root"; valid: read, operator`,
		`hub.yaml:6:14: http.admin_tokens[2].name: "ops" is taken by http.admin_tokens[1]; give each token its own name`,
		`hub.yaml:6:38: http.admin_tokens[2].token: is 5 characters: give at least 16 (e.g. openssl rand -hex 32)`,
		`hub.yaml:7:14: http.admin_tokens[3].name: "has space" is not a token name: letters, digits, '.', '_', '@' and '-', up to 64 (e.g. ops-alice)`,
		`hub.yaml:7:46: http.admin_tokens[3].token: is the same as http.admin_tokens[0]'s; every token needs its own value`,
		`hub.yaml:8:7: http.admin_tokens[4].token: missing; token is required (e.g. token: ${ALICE_ADMIN_TOKEN})`,
		`hub.yaml:9:7: http.admin_tokens[5].name: missing; name is required (e.g. name: ops-alice)`,
		`hub.yaml:10:26: http.redact_fields[1]: "address..street" is not a path; give field names joined by dots, e.g. email or address.street`,
		`hub.yaml:10:45: http.redact_fields[2]: "" is not a path; give field names joined by dots, e.g. email or address.street`,
	}
	got := problems(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFullConfigAdmin(t *testing.T) {
	cfg := loadFull(t)
	want := []config.AdminToken{
		{Name: "ops-alice", Role: config.RoleOperator, Token: "alice-0123456789abcdef"},
		{Name: "dashboard", Role: config.RoleRead, Token: "dashboard-0123456789abcdef"},
		{Name: "admin", Role: config.RoleOperator, Token: "legacy-admin-token"},
	}
	if got := cfg.HTTP.Tokens(); !reflect.DeepEqual(got, want) {
		t.Errorf("Tokens():\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(cfg.HTTP.RedactFields, config.DefaultRedactFields) {
		t.Errorf("redact_fields: %q", cfg.HTTP.RedactFields)
	}
}

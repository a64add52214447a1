package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The roles of admin API tokens.
const (
	// RoleRead may call the admin API's GET endpoints only, and sees the
	// events in them with HTTP.RedactFields hidden.
	RoleRead = "read"
	// RoleOperator may call every endpoint, and sees events whole.
	RoleOperator = "operator"
)

// AdminTokenName is the name of the operator token http.admin_token
// declares.
const AdminTokenName = "admin"

// MinAdminTokenLen is the shortest token admin_tokens accepts, in bytes.
const MinAdminTokenLen = 16

// DefaultRedactFields are the paths in events' data the read role sees
// redacted when http.redact_fields is absent: the member fields that name
// or reach a person.
var DefaultRedactFields = []string{"email", "first_name", "last_name", "phone", "birth_date", "address"}

// AdminToken is one named bearer token of the admin API.
type AdminToken struct {
	// Name says whose token it is, in the audit log and the hub's logs:
	// letters, digits and . _ @ -, up to 64. Required; unique, and not
	// "admin" when admin_token is set.
	Name string `yaml:"name" required:"true" example:"ops-alice" desc:"Whose token it is, as the audit log names them (letters, digits, . _ @ -)."`
	// Role is read (GET endpoints only; events redacted) or operator
	// (everything). Required.
	Role string `yaml:"role" required:"true" enum:"read,operator" desc:"read: GET endpoints only, events with redact_fields hidden; operator: everything."`
	// Token is the bearer token: at least 16 characters, unique. Required.
	Token Secret `yaml:"token" required:"true" example:"${ALICE_ADMIN_TOKEN}" desc:"The bearer token (secret): at least 16 characters."`
}

// Tokens returns every admin API token h declares: admin_tokens, then
// admin_token as an operator token named "admin".
func (h *HTTP) Tokens() []AdminToken {
	out := slices.Clone(h.AdminTokens)
	if h.AdminToken != "" {
		out = append(out, AdminToken{Name: AdminTokenName, Role: RoleOperator, Token: h.AdminToken})
	}
	return out
}

var adminNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// checkAdmin checks the admin API's tokens and redaction paths, and fills in
// the default redaction paths.
func (l *loader) checkAdmin(h *HTTP) {
	if n, set := l.vals["http.redact_fields"]; !set || isNull(n) {
		h.RedactFields = slices.Clone(DefaultRedactFields) // a null takes the default, as for every key; [] is none
	}
	for i, f := range h.RedactFields {
		p := fmt.Sprintf("http.redact_fields[%d]", i)
		if l.isBad(p) {
			continue
		}
		if f == "" || slices.Contains(strings.Split(f, "."), "") {
			l.errAt(p, "%s is not a path; give field names joined by dots, e.g. email or address.street", l.quoteAt(p, f))
		}
	}
	names := map[string]string{}
	tokens := map[string]string{}
	if h.AdminToken != "" {
		names[AdminTokenName], tokens[h.AdminToken.Value()] = "http.admin_token", "http.admin_token"
	}
	for i, t := range h.AdminTokens {
		p := fmt.Sprintf("http.admin_tokens[%d]", i)
		switch {
		case t.Name == "" || l.isBad(p+".name"):
		case !adminNameRe.MatchString(t.Name):
			l.errAt(p+".name", "%s is not a token name: letters, digits, '.', '_', '@' and '-', up to 64 (e.g. ops-alice)", l.quoteAt(p+".name", t.Name))
		case names[t.Name] != "":
			l.errAt(p+".name", "%s is taken by %s; give each token its own name", l.quoteAt(p+".name", t.Name), names[t.Name])
		default:
			names[t.Name] = p
		}
		switch v := t.Token.Value(); {
		case v == "" || l.isBad(p+".token"):
		case len(v) < MinAdminTokenLen:
			l.errAt(p+".token", "is %d characters: give at least %d (e.g. openssl rand -hex 32)", len(v), MinAdminTokenLen)
		case tokens[v] != "":
			l.errAt(p+".token", "is the same as %s's; every token needs its own value", tokens[v])
		default:
			tokens[v] = p
		}
	}
}

package salesforce

import (
	"reflect"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"Thu, 02 Jan 2025 10:00:30 GMT", 30 * time.Second},
		{"Thu, 02 Jan 2025 09:00:00 GMT", 0}, // in the past
		{"soon", 0},
		{"99999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		code, msg string
		fields    []string
	}{
		{"array", `[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`,
			"REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", []string{"LastName"}},
		{"array of two", `[{"message":"a","errorCode":"X"},{"message":"b","errorCode":"Y","fields":["F"]}]`,
			"X", "a; Y: b [fields: F]", nil},
		{"per-record statusCode", `[{"message":"m","statusCode":"DUPLICATE_VALUE"}]`, "DUPLICATE_VALUE", "m", nil},
		{"single object", `{"message":"m","errorCode":"NOT_FOUND"}`, "NOT_FOUND", "m", nil},
		{"oauth", `{"error":"invalid_grant","error_description":"authentication failure"}`, "invalid_grant", "authentication failure", nil},
		{"html", "<html>\n  <body>Service Unavailable</body>\n</html>", "", "<html> <body>Service Unavailable</body> </html>", nil},
		{"empty", "", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, fields := parseErrorBody([]byte(tt.body))
			if code != tt.code || msg != tt.msg || !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("parseErrorBody = %q, %q, %q; want %q, %q, %q", code, msg, fields, tt.code, tt.msg, tt.fields)
			}
		})
	}
}

func TestSOQLQuote(t *testing.T) {
	tests := map[string]string{
		"M-001":       `'M-001'`,
		"O'Brien":     `'O\'Brien'`,
		`back\slash`:  `'back\\slash'`,
		"line\nbreak": `'line\nbreak'`,
		`x' OR Id!='`: `'x\' OR Id!=\''`,
	}
	for in, want := range tests {
		if got := QuoteSOQL(in); got != want {
			t.Errorf("QuoteSOQL(%q) = %s, want %s", in, got, want)
		}
	}
}

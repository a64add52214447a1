package salesforce_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
)

func TestClassify(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name string
		in   salesforce.Failure
		want connectors.Kind
	}{
		// Retryable, per record (no HTTP status) and whole request.
		{"lock per record", salesforce.Failure{Code: "UNABLE_TO_LOCK_ROW", Message: "unable to obtain exclusive access to this record"}, connectors.Transient},
		{"lock whole request", salesforce.Failure{HTTPStatus: 400, Code: "UNABLE_TO_LOCK_ROW"}, connectors.Transient},
		{"daily limit 403", salesforce.Failure{HTTPStatus: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded."}, connectors.Transient},
		{"429 without code", salesforce.Failure{HTTPStatus: 429}, connectors.Transient},
		{"429 with unknown code", salesforce.Failure{HTTPStatus: 429, Code: "SOMETHING"}, connectors.Transient},
		{"500", salesforce.Failure{HTTPStatus: 500, Code: "UNKNOWN_EXCEPTION"}, connectors.Transient},
		{"502 html body", salesforce.Failure{HTTPStatus: 502, Message: "<html>bad gateway</html>"}, connectors.Transient},
		{"503 server unavailable", salesforce.Failure{HTTPStatus: 503, Code: "SERVER_UNAVAILABLE"}, connectors.Transient},
		{"server unavailable per record", salesforce.Failure{Code: "SERVER_UNAVAILABLE"}, connectors.Transient},
		{"408", salesforce.Failure{HTTPStatus: 408}, connectors.Transient},
		{"all or none rolled back", salesforce.Failure{Code: "ALL_OR_NONE_OPERATION_ROLLED_BACK"}, connectors.Transient},
		{"network error", salesforce.Failure{Err: netErr}, connectors.Transient},
		{"timeout", salesforce.Failure{Err: context.DeadlineExceeded}, connectors.Transient},
		{"lower-case code", salesforce.Failure{Code: "unable_to_lock_row"}, connectors.Transient},

		// Permanent.
		{"invalid field", salesforce.Failure{Code: "INVALID_FIELD", Message: "No such column 'Nope__c' on sobject of type Contact"}, connectors.Permanent},
		{"invalid field 400", salesforce.Failure{HTTPStatus: 400, Code: "INVALID_FIELD"}, connectors.Permanent},
		{"not insertable", salesforce.Failure{Code: "INVALID_FIELD_FOR_INSERT_UPDATE"}, connectors.Permanent},
		{"duplicate", salesforce.Failure{Code: "DUPLICATE_VALUE"}, connectors.Permanent},
		{"restricted picklist", salesforce.Failure{Code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", Message: "bad value for restricted picklist field: Platinum"}, connectors.Permanent},
		{"bad picklist without code", salesforce.Failure{Message: "Tier__c: bad value for restricted picklist field: Platinum"}, connectors.Permanent},
		{"required missing", salesforce.Failure{Code: "REQUIRED_FIELD_MISSING"}, connectors.Permanent},
		{"too long", salesforce.Failure{Code: "STRING_TOO_LONG"}, connectors.Permanent},
		{"json parser 400", salesforce.Failure{HTTPStatus: 400, Code: "JSON_PARSER_ERROR"}, connectors.Permanent},
		{"malformed id", salesforce.Failure{Code: "MALFORMED_ID"}, connectors.Permanent},
		{"cross reference", salesforce.Failure{Code: "INVALID_CROSS_REFERENCE_KEY"}, connectors.Permanent},
		{"validation rule", salesforce.Failure{Code: "FIELD_CUSTOM_VALIDATION_EXCEPTION"}, connectors.Permanent},
		{"entity deleted", salesforce.Failure{Code: "ENTITY_IS_DELETED"}, connectors.Permanent},
		{"invalid type", salesforce.Failure{HTTPStatus: 400, Code: "INVALID_TYPE"}, connectors.Permanent},
		{"object not found 404", salesforce.Failure{HTTPStatus: 404, Code: "NOT_FOUND"}, connectors.Permanent},
		{"unknown code 4xx", salesforce.Failure{HTTPStatus: 400, Code: "SOME_NEW_CODE"}, connectors.Permanent},
		{"unknown code per record", salesforce.Failure{Code: "SOME_NEW_CODE"}, connectors.Permanent},
		{"403 permission", salesforce.Failure{HTTPStatus: 403, Code: "INSUFFICIENT_ACCESS"}, connectors.Permanent},
		{"permanent code beats 5xx", salesforce.Failure{HTTPStatus: 500, Code: "INVALID_FIELD"}, connectors.Permanent},
		{"unknown code 5xx", salesforce.Failure{HTTPStatus: 500, Code: "SOME_NEW_CODE"}, connectors.Transient},

		// Auth.
		{"401 session", salesforce.Failure{HTTPStatus: 401, Code: "INVALID_SESSION_ID"}, connectors.Auth},
		{"401 without code", salesforce.Failure{HTTPStatus: 401}, connectors.Auth},
		{"login refused", salesforce.Failure{Login: true, HTTPStatus: 400, Message: "400 Bad Request: failed authentication"}, connectors.Auth},
		{"login 401", salesforce.Failure{Login: true, HTTPStatus: 401}, connectors.Auth},
		{"login answered without token", salesforce.Failure{Login: true, HTTPStatus: 200}, connectors.Auth},
		{"login 503", salesforce.Failure{Login: true, HTTPStatus: 503}, connectors.Transient},
		{"login 429", salesforce.Failure{Login: true, HTTPStatus: 429}, connectors.Transient},
		{"login network", salesforce.Failure{Login: true, Err: netErr}, connectors.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := salesforce.Classify(tt.in); got != tt.want {
				t.Errorf("Classify(%+v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		header      string
		used, limit int64
		ok          bool
	}{
		{"api-usage=10018/100000", 10018, 100000, true},
		{"api-usage=17/250; per-app-api-usage=3/100(appName=hub)", 17, 250, true},
		{"per-app-api-usage=3/100(appName=hub); api-usage=91/100", 91, 100, true},
		{" api-usage = 5 / 15000 ", 5, 15000, true},
		{"api-bursts=1/750", 0, 0, false},
		{"api-usage=abc/100", 0, 0, false},
		{"api-usage=5/0", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		used, limit, ok := salesforce.ParseLimitInfo(tt.header)
		if used != tt.used || limit != tt.limit || ok != tt.ok {
			t.Errorf("ParseLimitInfo(%q) = %d, %d, %v; want %d, %d, %v", tt.header, used, limit, ok, tt.used, tt.limit, tt.ok)
		}
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

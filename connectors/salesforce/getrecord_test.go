package salesforce_test

import (
	"context"
	"strings"
	"testing"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

func TestEmulatorGetRecord(t *testing.T) {
	srv := startEmulator(t, nil)
	c, _ := connect(t, srv, nil)
	ctx := context.Background()

	resp := write(t, c, connectors.WriteRequest{Object: memberObj, Operation: connectors.Upsert, ExternalIDField: memberExt,
		Records: []connectors.Record{member("M 1/x", 120.5, "Gold")}})
	id := wantApplied(t, resp, 0)

	t.Run("by external id, with a key that needs escaping", func(t *testing.T) {
		rec, found, err := c.GetRecord(ctx, memberObj, memberExt, "M 1/x")
		if err != nil || !found {
			t.Fatalf("GetRecord = %v, %v; want found", found, err)
		}
		if _, ok := rec["attributes"]; ok {
			t.Errorf("attributes should be dropped: %v", rec)
		}
		want := map[string]any{"Id": id, memberExt: "M 1/x", "MembershipNumber": "MN-M 1/x", "Tier__c": "Gold",
			"Points_Balance__c": 120.5, "EnrollmentDate": "2025-01-02"}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("%s = %#v, want %#v", k, rec[k], v)
			}
		}
	})
	t.Run("by Salesforce id", func(t *testing.T) {
		rec, found, err := c.GetRecord(ctx, memberObj, "Id", id)
		if err != nil || !found || rec[memberExt] != "M 1/x" {
			t.Fatalf("GetRecord by Id = %v, %v, %v", rec, found, err)
		}
	})
	t.Run("unknown key is not found, not an error", func(t *testing.T) {
		rec, found, err := c.GetRecord(ctx, memberObj, memberExt, "nobody")
		if err != nil || found || rec != nil {
			t.Fatalf("GetRecord(nobody) = %v, %v, %v; want not found", rec, found, err)
		}
	})
	t.Run("unknown field is an error naming it", func(t *testing.T) {
		_, _, err := c.GetRecord(ctx, memberObj, "Ledger_Id__c", "M 1/x")
		if err == nil || connectors.KindOf(err) != connectors.Permanent || !strings.Contains(err.Error(), `no field "Ledger_Id__c"`) {
			t.Fatalf("err = %v, want a permanent error naming the field", err)
		}
	})
	t.Run("unknown object is an error", func(t *testing.T) {
		_, _, err := c.GetRecord(ctx, "LoyaltyProgramMembr", memberExt, "M 1/x")
		if err == nil || !strings.Contains(err.Error(), "LoyaltyProgramMembr") {
			t.Fatalf("err = %v, want an error naming the object", err)
		}
	})
}

package emulator_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
)

// External ids match case-insensitively, as Salesforce matches a text
// external id field that is not case-sensitive: two values are one key
// exactly when connectors.KeysCaseInsensitive.Fold folds them to one string
// (strings.EqualFold for valid UTF-8), which is how the hub's version guard
// and cross-reference fold keys. It holds for every path that matches on an
// external id: single and collections upserts, Bulk API 2.0 upserts, SOQL =
// and IN, uniqueness, keys repeated in one call and Server.Find.
func TestExternalIDsMatchCaseInsensitively(t *testing.T) {
	pairs := []struct {
		stored, other string
	}{
		{"M-ab-1", "m-AB-1"},
		{"ς-2", "Σ-2"},            // final sigma: lower-casing keeps ς and σ apart, folding does not
		{"ſ-3", "S-3"},            // long s
		{"\u212a-4", "k-4"},       // Kelvin sign
		{"ǅ-5", "Ǆ-5"},            // title case
		{"İ-6", "i-6"},            // dotted capital I lower-cases to i, but folds alone
		{"Straße-7", "STRASSE-7"}, // full case folding (ß = ss) is not simple folding
	}
	srv, base := start(t, nil)
	tok := token(t, base)
	ext := base + v + "/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c/"
	ids := make([]string, len(pairs))
	for i, p := range pairs {
		r := do(t, "PATCH", ext+url.PathEscape(p.stored), tok, member(fmt.Sprintf("MN-%d", i)))
		require.Equal(t, 201, r.status, string(r.body))
		ids[i] = r.json(t).(map[string]any)["id"].(string)
	}
	same := func(i int) bool { return strings.EqualFold(pairs[i].stored, pairs[i].other) }
	for i, p := range pairs {
		require.Equal(t, same(i), connectors.KeysCaseInsensitive.Fold(p.stored) == connectors.KeysCaseInsensitive.Fold(p.other), "pair %d", i)
	}

	t.Run("single upsert", func(t *testing.T) {
		for i, p := range pairs {
			r := do(t, "PATCH", ext+url.PathEscape(p.other)+"?updateOnly=true", tok, map[string]any{"Tier__c": "Gold"})
			if same(i) {
				require.Equal(t, 200, r.status, "%q updates %q: %s", p.other, p.stored, r.body)
				assert.Equal(t, ids[i], r.json(t).(map[string]any)["id"])
			} else {
				assert.Equal(t, 404, r.status, "%q is not %q: %s", p.other, p.stored, r.body)
			}
		}
	})

	t.Run("collections upsert", func(t *testing.T) {
		var recs []map[string]any
		for _, p := range pairs {
			recs = append(recs, map[string]any{"attributes": map[string]any{"type": "LoyaltyProgramMember"}, "Ledger_Member_Id__c": p.other, "Tier__c": "Silver"})
		}
		r := do(t, "PATCH", base+v+"/composite/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c", tok, map[string]any{"allOrNone": false, "records": recs})
		require.Equal(t, 200, r.status, string(r.body))
		for i, res := range r.json(t).([]any) {
			res := res.(map[string]any)
			if same(i) {
				assert.Equal(t, ids[i], res["id"], "%q updates %q: %v", pairs[i].other, pairs[i].stored, res)
				assert.Equal(t, false, res["created"])
			} else {
				// a new record: with the same MembershipNumber it is refused,
				// which proves it was not matched
				assert.Equal(t, false, res["success"], "%q is not %q: %v", pairs[i].other, pairs[i].stored, res)
			}
		}
	})

	t.Run("a key twice in one call", func(t *testing.T) {
		for i, p := range pairs {
			recs := []map[string]any{
				{"attributes": map[string]any{"type": "LoyaltyProgramMember"}, "Ledger_Member_Id__c": p.stored, "Tier__c": "Gold"},
				{"attributes": map[string]any{"type": "LoyaltyProgramMember"}, "Ledger_Member_Id__c": p.other, "Tier__c": "Gold"},
			}
			r := do(t, "PATCH", base+v+"/composite/sobjects/LoyaltyProgramMember/Ledger_Member_Id__c", tok, map[string]any{"allOrNone": false, "records": recs})
			require.Equal(t, 200, r.status, string(r.body))
			res := r.json(t).([]any)[0].(map[string]any)
			assert.Equal(t, !same(i), res["success"], "%q and %q in one call: %v", p.stored, p.other, res)
		}
	})

	t.Run("bulk upsert", func(t *testing.T) {
		var csv strings.Builder
		csv.WriteString("Ledger_Member_Id__c,Tier__c\n")
		for _, p := range pairs {
			csv.WriteString(p.other + ",Platinum\n")
		}
		id, info := runJob(t, base, tok, map[string]any{"object": "LoyaltyProgramMember", "operation": "upsert", "externalIdFieldName": "Ledger_Member_Id__c"}, csv.String())
		require.Equal(t, "JobComplete", info["state"])
		ok := results(t, base, tok, id, "successfulResults")[1:]
		byKey := map[string]string{}
		for _, row := range ok {
			byKey[row[2]] = row[0]
		}
		for i, p := range pairs {
			if same(i) {
				assert.Equal(t, ids[i], byKey[p.other], "%q updates %q", p.other, p.stored)
			} else {
				assert.NotContains(t, byKey, p.other, "%q is not %q: a new record, refused (MembershipNumber missing)", p.other, p.stored)
			}
		}
	})

	t.Run("SOQL", func(t *testing.T) {
		for i, p := range pairs {
			for _, q := range []string{
				"SELECT Id FROM LoyaltyProgramMember WHERE Ledger_Member_Id__c = '" + p.other + "'",
				"SELECT Id FROM LoyaltyProgramMember WHERE Ledger_Member_Id__c IN ('x', '" + p.other + "')",
			} {
				r, page := query(t, base, tok, q)
				require.Equal(t, 200, r.status, string(r.body))
				if same(i) {
					require.Len(t, page.Records, 1, q)
					assert.Equal(t, ids[i], page.Records[0]["Id"], q)
				} else {
					assert.Empty(t, page.Records, q)
				}
			}
		}
	})

	t.Run("Find", func(t *testing.T) {
		for i, p := range pairs {
			found := srv.Find("LoyaltyProgramMember", "Ledger_Member_Id__c", p.other)
			if same(i) {
				require.Len(t, found, 1, "%q finds %q", p.other, p.stored)
				assert.Equal(t, ids[i], found[0]["Id"])
			} else {
				assert.Empty(t, found, "%q is not %q", p.other, p.stored)
			}
		}
	})

	t.Run("uniqueness", func(t *testing.T) {
		for i, p := range pairs {
			_, err := srv.Insert("LoyaltyProgramMember", member(fmt.Sprintf("MN-u%d", i), "Ledger_Member_Id__c", p.other))
			if same(i) {
				assert.ErrorContains(t, err, "DUPLICATE_VALUE", "%q duplicates %q", p.other, p.stored)
			} else {
				assert.NoError(t, err, "%q is not %q", p.other, p.stored)
			}
		}
	})
}

package mappings_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/loyaltyhub/loyaltyhub/mappings"
)

var lpm = mappings.TargetSchema{
	Object:          "LoyaltyProgramMember",
	Operation:       "upsert",
	ExternalIDField: "Ext_Id__c",
	Fields: []mappings.TargetField{
		{Name: "Id", Type: "id"},
		{Name: "Ext_Id__c", Type: "string", Createable: true, Length: 40},
		{Name: "MembershipNumber", Type: "string", Createable: true, Updateable: true, Required: true, Length: 10},
		{Name: "MemberStatus", Type: "picklist", Createable: true, Updateable: true, Picklist: []string{"Active", "Inactive", "Custom"}},
		{Name: "EnrollmentDate", Type: "date", Createable: true, Updateable: true, Required: true},
		{Name: "Points__c", Type: "double", Createable: true, Updateable: true, Nillable: true},
		{Name: "Opted_In__c", Type: "boolean", Createable: true, Updateable: true},
		{Name: "Interests__c", Type: "multipicklist", Createable: true, Updateable: true, Picklist: []string{"Golf", "Wine", "Travel"}},
		{Name: "CreatedDate", Type: "datetime"},
		{Name: "ContactId", Type: "reference", Createable: true, Updateable: true, ReferenceTo: []string{"Contact"}},
		{Name: "Program__c", Type: "reference", Createable: true, Updateable: false, ReferenceTo: []string{"LoyaltyProgram"}},
	},
}

func problemLines(ps []mappings.Problem) []string {
	out := make([]string, len(ps))
	for i := range ps {
		out[i] = ps[i].Error()
	}
	return out
}

func TestCheckSchema(t *testing.T) {
	cases := []struct {
		name, src string
		schema    func(s mappings.TargetSchema) mappings.TargetSchema
		want      []string
	}{
		{name: "fits", src: `
fields:
  Ext_Id__c: {from: id, required: true}
  MembershipNumber: {from: number, required: true}
  MemberStatus: {from: status, map: {active: Active, lapsed: Inactive}, fallback: Custom}
  EnrollmentDate: {from: joined, transform: [date], required: true}
  Points__c: {from: points, transform: [number]}
  Opted_In__c: {value: true}
  Interests__c: {from: interests, transform: ['join(";")']}
  Contact: {from: contact, lookup: {external_id: Ext_Id__c}}
`},
		{name: "unknown field", src: "fields:\n  MembershipNumbr: {from: n, required: true}\n  EnrollmentDate: {value: 2024-01-01}\n",
			want: []string{"m.yaml:1:1: fields: required field `MembershipNumber` of LoyaltyProgramMember is not mapped; add `MembershipNumber:` to `fields`",
				"m.yaml:2:3: fields.MembershipNumbr: unknown field `MembershipNumbr` on LoyaltyProgramMember; did you mean `MembershipNumber`?"}},
		{name: "read-only and not updateable", src: "fields:\n  CreatedDate: {from: c}\n  Program__c: {value: a0X}\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n",
			want: []string{"m.yaml:2:3: fields.CreatedDate: `CreatedDate` of LoyaltyProgramMember is read-only, so an upsert cannot write it; remove the field or change the sync's operation",
				"m.yaml:3:3: fields.Program__c: `Program__c` of LoyaltyProgramMember is not updateable, so an upsert cannot write it; remove the field or change the sync's operation"}},
		{name: "upsert may write create-only fields when the connector leaves them out of updates",
			src:    "fields:\n  Program__c: {value: a0X}\n  Program__r: {from: p, lookup: {external_id: Ext__c}}\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n  CreatedDate: {from: c}\n",
			schema: func(s mappings.TargetSchema) mappings.TargetSchema { s.OmitsCreateOnlyOnUpdate = true; return s },
			want:   []string{"m.yaml:6:3: fields.CreatedDate: `CreatedDate` of LoyaltyProgramMember is read-only, so an upsert cannot write it; remove the field or change the sync's operation"}},
		{name: "update may not write create-only fields even when the connector leaves them out",
			src: "fields:\n  Program__c: {value: a0X}\n",
			schema: func(s mappings.TargetSchema) mappings.TargetSchema {
				s.Operation, s.OmitsCreateOnlyOnUpdate = "update", true
				return s
			},
			want: []string{"m.yaml:2:3: fields.Program__c: `Program__c` of LoyaltyProgramMember is not updateable, so an update cannot write it; remove the field or change the sync's operation"}},
		{name: "insert may write createable-only fields", src: "fields:\n  Program__c: {value: a0X}\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n",
			schema: func(s mappings.TargetSchema) mappings.TargetSchema { s.Operation = "insert"; return s }},
		{name: "update does not need required fields", src: "fields:\n  Points__c: {from: p, transform: [number]}\n",
			schema: func(s mappings.TargetSchema) mappings.TargetSchema { s.Operation = "update"; return s }},
		{name: "picklist values", src: `
fields:
  MembershipNumber: {value: x}
  EnrollmentDate: {value: 2024-01-01}
  MemberStatus: {from: s, map: {a: active, b: Inactive, c: Gone}, fallback: Custom, default: Actve}
`, want: []string{
			"m.yaml:5:33: fields.MemberStatus: the map value for `a` \"active\" is not a value of the picklist `MemberStatus`; did you mean `Active`?",
			"m.yaml:5:57: fields.MemberStatus: the map value for `c` \"Gone\" is not a value of the picklist `MemberStatus`; valid values: `Active`, `Inactive`, `Custom`",
			"m.yaml:5:94: fields.MemberStatus: the default \"Actve\" is not a value of the picklist `MemberStatus`; did you mean `Active`?"}},
		{name: "multipicklist constant", src: "fields:\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n  Interests__c: {value: 'Golf;Wne'}\n",
			want: []string{"m.yaml:4:26: fields.Interests__c: the value \"Wne\" is not a value of the picklist `Interests__c`; did you mean `Wine`?"}},
		{name: "types", src: `
fields:
  MembershipNumber: {value: x}
  EnrollmentDate: {value: yesterday}
  Points__c: {from: p, transform: [trim]}
  Opted_In__c: {value: "yes"}
  Ext_Id__c: {expr: '1 > 0'}
`, want: []string{
			"m.yaml:4:27: fields.EnrollmentDate: the value \"yesterday\" is not a date; write ISO-8601, like 2024-05-01 or 2024-05-01T10:00:00Z",
			"m.yaml:5:3: fields.Points__c: the mapping produces a string, but `Points__c` is a double field; convert with the `number` transform or `float()` in an expression",
			"m.yaml:6:3: fields.Opted_In__c: the mapping produces a string, but `Opted_In__c` is a boolean field; convert with the `boolean` transform",
			"m.yaml:6:25: fields.Opted_In__c: the value \"yes\" is a string, but `Opted_In__c` is a boolean field; convert with the `boolean` transform"}},
		{name: "expression type", src: "source:\n  fields: {p: number}\nfields:\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n  Points__c: {expr: 'p * 2'}\n  Opted_In__c: {expr: 'p * 2'}\n",
			want: []string{"m.yaml:7:3: fields.Opted_In__c: the mapping produces a number, but `Opted_In__c` is a boolean field; convert with the `boolean` transform"}},
		{name: "length", src: "fields:\n  MembershipNumber: {value: '12345678901'}\n  EnrollmentDate: {value: 2024-01-01}\n",
			want: []string{"m.yaml:2:30: fields.MembershipNumber: the value \"12345678901…\" is longer than `MembershipNumber` allows (10 characters)"}},
		{name: "required may be missing", src: "fields:\n  MembershipNumber: n\n  EnrollmentDate: {from: d, default: 2024-01-01}\n",
			want: []string{"m.yaml:2:3: fields.MembershipNumber: `MembershipNumber` is required by LoyaltyProgramMember but its value may be missing; add `required: true` (a record error names the record) or a `default`"}},
		{name: "null default on a required field", src: "fields:\n  MembershipNumber: {from: n, required: true}\n  EnrollmentDate: {from: d, default: null, transform: [date]}\n",
			want: []string{
				"m.yaml:3:3: fields.EnrollmentDate: `EnrollmentDate` is required by LoyaltyProgramMember but its value may be missing; add `required: true` (a record error names the record) or a `default`",
				"m.yaml:3:38: fields.EnrollmentDate: the default is null, but `EnrollmentDate` is required"}},
		{name: "relationship by external id", src: "fields:\n  MembershipNumber: {value: x}\n  EnrollmentDate: {value: 2024-01-01}\n  Program__r: {from: p, lookup: {external_id: Ext__c}}\n  Nope__r: {fields: {Ext__c: p}}\n",
			want: []string{
				"m.yaml:4:3: fields.Program__r: `Program__c` of LoyaltyProgramMember is not updateable, so an upsert cannot write it; remove the field or change the sync's operation",
				"m.yaml:5:3: fields.Nope__r: unknown field `Nope__r` on LoyaltyProgramMember; the target's fields: `Id`, `Ext_Id__c`, `MembershipNumber`, `MemberStatus`, `EnrollmentDate`, `Points__c`, `Opted_In__c`, `Interests__c`, `CreatedDate`, `ContactId`, `Program__c`"}},
		{name: "delete checks nothing", src: "fields:\n  Nope: x\n", schema: func(s mappings.TargetSchema) mappings.TargetSchema { s.Operation = "delete"; return s }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.src)
			s := lpm
			if tc.schema != nil {
				s = tc.schema(s)
			}
			got := problemLines(m.CheckSchema(s))
			if len(tc.want) == 0 {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

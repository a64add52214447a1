package mappings_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/mappings"
)

func memberMapping(t testing.TB) *mappings.Mapping {
	t.Helper()
	spec, err := mappings.ParseFile("testdata/member-to-lpm.yaml")
	require.NoError(t, err)
	m, err := mappings.Compile(spec)
	require.NoError(t, err)
	return m
}

func TestRunTestsPass(t *testing.T) {
	results, err := mappings.RunTests(memberMapping(t), "testdata/member-to-lpm.test.yaml")
	require.NoError(t, err)
	require.Len(t, results, 3)
	for _, r := range results {
		assert.True(t, r.Passed, r.String())
		assert.Equal(t, "PASS "+r.Name, r.String())
	}
	assert.Equal(t, "active gold member", results[0].Name)
	assert.Equal(t, 3, results[0].Pos.Line)
}

func TestRunTestsDiff(t *testing.T) {
	results, err := mappings.RunTests(memberMapping(t), "testdata/member-to-lpm-broken.test.yaml")
	require.NoError(t, err)
	require.Len(t, results, 3)
	for _, r := range results {
		assert.False(t, r.Passed, r.Name)
	}
	assert.Equal(t, strings.Join([]string{
		"Extra__c: missing (want 1)",
		"FirstName__c: unexpected \"Bo\"",
		"MemberStatus: want \"Active\", got \"Inactive\"",
		"Tier__c: want \"Bronze\", got \"Silver\"",
	}, "\n"), results[0].Diff)
	assert.Equal(t, "FAIL wrong expectations (testdata/member-to-lpm-broken.test.yaml:2)\n    Extra__c: missing (want 1)", strings.SplitN(results[0].String(), "\n", 3)[0]+"\n"+strings.SplitN(results[0].String(), "\n", 3)[1])
	assert.True(t, strings.HasPrefix(results[1].Diff, "expected the record to be filtered, got output:\n  {\"Country__c\":\"FR\""), results[1].Diff)
	assert.True(t, strings.HasPrefix(results[2].Diff, "expected an error containing \"nope\", got output:"), results[2].Diff)
}

func TestRunTestsFileErrors(t *testing.T) {
	m := memberMapping(t)
	dir := t.TempDir()
	cases := []struct{ body, want string }{
		{"", "F:1:1: the test file is empty; write `cases:` with a list of {name, data, want}"},
		{"cases: {}\n", "F:1:8: cases: expected a list of cases, got a mapping"},
		{"cases:\n  - name: x\n    data: {}\n", "F:2:5: cases[0]: a case expects exactly one of `want`, `filtered: true` or `error`"},
		{"cases:\n  - name: x\n    want: {}\n", "F:2:5: cases[0]: the case has no `data`; give the event's data"},
		{"cases:\n  - name: x\n    data: 'not json'\n    want: {}\n", "F:3:11: cases[0].data: data given as text must be JSON; or write it as YAML"},
		{"cases:\n  - nme: x\n", "F:2:5: cases[0].nme: unknown key `nme`; did you mean `name`?"},
		{"xref: {a/b: c}\ncases: []\n", "F:1:8: xref.a/b: an xref key is SYSTEM/OBJECT/KEY; e.g. `salesforce/LoyaltyProgramMember/M1: 0lM000000000001`"},
		{"cases:\n  - data: {}\n    event: {time: yesterday}\n    want: {}\n", "F:3:19: cases[0].event.time: not an RFC 3339 time: \"yesterday\"; write e.g. 2024-05-01T10:00:00Z"},
	}
	for i, tc := range cases {
		p := filepath.Join(dir, "t.test.yaml")
		require.NoError(t, os.WriteFile(p, []byte(tc.body), 0o600))
		_, err := mappings.RunTests(m, p)
		require.Error(t, err, "case %d", i)
		assert.Equal(t, strings.ReplaceAll(tc.want, "F:", p+":"), err.Error(), "case %d", i)
	}
	_, err := mappings.RunTests(m, filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
}

func TestRunTestsWithXref(t *testing.T) {
	m := mustCompile(t, "fields: {Member__c: {from: member, lookup: {system: salesforce, object: LoyaltyProgramMember, missing: error}}}")
	p := filepath.Join(t.TempDir(), "x.test.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
xref:
  salesforce/LoyaltyProgramMember/M1: 0lM1
cases:
  - name: known
    data: {member: M1}
    want: {Member__c: 0lM1}
  - name: unknown
    data: {member: M2}
    error: no salesforce LoyaltyProgramMember is known for "M2"
`), 0o600))
	results, err := mappings.RunTests(m, p)
	require.NoError(t, err)
	require.Len(t, results, 2)
	assert.True(t, results[0].Passed, results[0].String())
	assert.True(t, results[1].Passed, results[1].String())
}

func TestMappingFileFor(t *testing.T) {
	got, err := mappings.MappingFileFor("testdata/member-to-lpm.test.yaml")
	require.NoError(t, err)
	assert.Equal(t, "testdata/member-to-lpm.yaml", got, "from the mapping: key")
	got, err = mappings.MappingFileFor("testdata/member-to-lpm-broken.test.yaml")
	require.NoError(t, err)
	assert.Equal(t, "testdata/member-to-lpm-broken.yaml", got, "from the name")
	p := filepath.Join(t.TempDir(), "cases.yaml")
	require.NoError(t, os.WriteFile(p, []byte("cases: []\n"), 0o600))
	_, err = mappings.MappingFileFor(p)
	require.ErrorContains(t, err, "no `mapping:` key, and the name does not end in .test.yaml")
}

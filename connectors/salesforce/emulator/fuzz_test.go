package emulator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
)

// Fuzz targets of the emulator's two parsers of client input: SOQL
// (soql.go) and Bulk API 2.0 CSV uploads (bulk.go). Run one at a time:
//
//	go test -run '^$' -fuzz FuzzSOQL -fuzztime 60s ./connectors/salesforce/emulator/
//	go test -run '^$' -fuzz FuzzBulkCSV -fuzztime 60s ./connectors/salesforce/emulator/
//
// Crashing inputs the fuzzer finds are kept under testdata/fuzz/<target>, and
// run as seeds by every `go test`.

// soqlSeeds are the queries the tests and the connector send, and edge cases.
var soqlSeeds = []string{
	"SELECT Id FROM Contact",
	"SELECT Id, Name FROM Contact",
	"SELECT Id, Name, Loyalty_Points__c, Loyalty_Tier__c FROM Contact WHERE Ledger_Member_Id__c = 'L-1'",
	"SELECT Id, MembershipNumber FROM LoyaltyProgramMember ORDER BY MembershipNumber DESC",
	"SELECT COUNT() FROM LoyaltyProgramMember",
	"SELECT COUNT() FROM LoyaltyProgramMember WHERE Tier__c = 'Gold'",
	"SELECT Name, Home_Store__r.Code__c FROM Contact",
	"SELECT Name, Account.Name FROM Contact",
	"SELECT MembershipNumber FROM LoyaltyProgramMember ORDER BY MembershipNumber",
	"select membershipnumber from loyaltyprogrammember where tier__c = 'gold' order by MembershipNumber desc",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c IN ('Silver', 'Gold') AND MemberStatus = 'Active' ORDER BY MembershipNumber",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c NOT IN ('Gold') ORDER BY MembershipNumber",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c = null",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Tier__c != null ORDER BY Points_Balance__c ASC LIMIT 2",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Points_Balance__c >= 300 ORDER BY Points_Balance__c DESC",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Points_Balance__c < 100.5 AND Points_Balance__c > -1 ORDER BY MembershipNumber",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE CanReceivePromotions = true",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE EnrollmentDate >= 2025-01-01 ORDER BY EnrollmentDate",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE CreatedDate > 2020-01-01T00:00:00Z AND MembershipNumber LIKE 'm-_' ORDER BY MembershipNumber LIMIT 1 OFFSET 1",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE (Tier__c = 'Gold' AND MemberStatus = 'Inactive') OR Tier__c = 'Silver' ORDER BY MembershipNumber",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE NOT Tier__c = 'Gold' ORDER BY Tier__c NULLS LAST",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Contact.LastName = 'Lovelace'",
	"SELECT MembershipNumber FROM LoyaltyProgramMember WHERE Program.Name = 'loyaltyhub' AND Email__c LIKE '%@example.com'",
	"SELECT Id, MembershipNumber, Contact.Name, Program.Name FROM LoyaltyProgramMember WHERE MembershipNumber IN ('M-1','M-2') ORDER BY MembershipNumber",
	"SELECT FIELDS(CUSTOM) FROM LoyaltyProgramMember LIMIT 1",
	"SELECT FIELDS(STANDARD) FROM Contact",
	"SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true",
	"SELECT LastName FROM Contact ORDER BY LastName",
	// the connector's lookups (write.go lookupIDs)
	"SELECT Id, Ledger_Member_Id__c FROM Contact WHERE Ledger_Member_Id__c IN ('D-2', 'gone', 'd-3')",
	`SELECT Id, Ledger_Member_Id__c FROM LoyaltyProgramMember WHERE Ledger_Member_Id__c IN ('it\'s', 'back\\slash', 'quote\"d', 'new\nline', 'tab\t', 'cr\r', 'bs\b', 'ff\f')`,
	// errors
	"SELECT Id, FullName FROM Account",
	"SELECT Id FROM Account WHERE Nope__c = 1",
	"SELECT Id FROM Lead",
	"SELECT Id FROM",
	"SELECT FROM Account",
	"SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Site = 'c'",
	"SELECT Id FROM Account WHERE Name = 'unterminated",
	"SELECT Id FROM Account WHERE AnnualRevenue = '5'",
	"SELECT Id FROM Account WHERE Name = 5",
	"SELECT Id FROM Account WHERE Id = 'xyz'",
	"SELECT Id FROM Account ORDER BY Name LIMIT x",
	"SELECT COUNT(Id) FROM Account",
	"SELECT FIELDS(ALL) FROM Account",
	"SELECT Owner.Name FROM Account",
	// edge cases
	"SELECT Id FROM Account WHERE Name LIKE 'Ter\\%'",
	"SELECT Id FROM Account WHERE Name LIKE 'Ter\\%%'",
	"SELECT Id FROM Account WHERE Name LIKE 'a\\\\%'",
	"SELECT Id FROM Account WHERE Name LIKE 'caf\\u00e9'",
	"SELECT Id FROM Account WHERE Name = 'caf\\u00e9'",
	"SELECT Id FROM Account WHERE Name = 'Z\\u00'",
	"SELECT Id FROM Account WHERE Name = 'a\\qb'",
	"SELECT Id FROM Account WHERE Name = 'caf\xc3\xa9'",
	"SELECT Id FROM Account WHERE Name LIKE '\xff%'",
	"SELECT Id FROM Account WHERE NOT NOT Name = 'x'",
	"SELECT Id FROM Account WHERE NOT (Name = 'x' OR Name = 'y') AND Name != 'z'",
	"SELECT Id FROM Account WHERE ((Name = 'x'))",
	"SELECT Id FROM Account WHERE AnnualRevenue = -0",
	"SELECT Id FROM Account WHERE AnnualRevenue = +1.5 OR AnnualRevenue = 2.",
	"SELECT Id FROM Account WHERE AnnualRevenue = 1.2.3",
	"SELECT Id FROM LoyaltyProgramMember WHERE EnrollmentDate = 2025-13-45",
	"SELECT Id FROM LoyaltyProgramMember WHERE EnrollmentDate = 2025-02-30",
	"SELECT Id FROM Contact WHERE CreatedDate = 2025-01-02T03:04:05.678+01:00",
	"SELECT Id FROM Contact WHERE CreatedDate = 2025-01-02T03:04:05-0800",
	"SELECT Id FROM Contact WHERE CreatedDate = 2025-01-02T25:04:05Z",
	"SELECT Id FROM Contact WHERE Id IN ('003Em0000000001', '003Em0000000001IAA', '')",
	"SELECT Id FROM Contact ORDER BY LastName DESC NULLS FIRST, FirstName ASC NULLS LAST LIMIT 0 OFFSET 2000",
	"SELECT Id FROM Contact OFFSET 2001",
	"SELECT Contact.Id FROM Contact",
	"SELECT Id FROM Contact WHERE Account.Name <> 'x'",
	"SELECT Id FROM Contact WHERE Name IN ()",
	"SELECT Id FROM Contact WHERE Name = null AND LastName < null",
	"",
	"SELECT",
	"SELECT Id FROM Contact WHERE LastName = '",
	"SELECT Id FROM Contact WHERE LastName = 'x\\",
	"SELECT Id..Name FROM Contact",
	"SELECT Id FROM Contact LIMIT 99999999999999999999",
	"SELECT Id FROM Contact WHERE Loyalty_Points__c = 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
}

// FuzzSOQL parses fuzzed queries. Properties:
//   - a query is either parsed or refused with an error whose position is
//     within the query;
//   - a parsed query, rendered back to SOQL (every field by its canonical
//     path, every value as a literal), parses to the same query;
//   - its date and datetime values are real dates;
//   - it runs against an org holding records without failing;
//   - a string quoted as the connector quotes it (every SOQL escape) reads
//     back as itself, in = and IN, and as a LIKE pattern with % and _
//     escaped it matches that string and nothing longer.
func FuzzSOQL(f *testing.F) {
	for _, q := range soqlSeeds {
		f.Add(q, "M-1")
	}
	for _, lit := range []string{"", "it's", `back\slash`, "50%_off", `a\%b`, "new\nline\r\n\t", "bs\b ff\f", `"q"`, "café", "\xff\xfe", "ǅ", "K"} {
		f.Add("SELECT Id FROM Contact", lit)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, q, lit string) {
		sq, err := s.parseSOQL(q)
		switch {
		case err != nil && sq != nil:
			t.Fatalf("parseSOQL(%q) returned a query and an error %v", q, err)
		case err != nil:
			if err.pos < 0 || err.pos > len(q) {
				t.Fatalf("parseSOQL(%q): error position %d outside the query (%d bytes): %s", q, err.pos, len(q), err.msg)
			}
			if e := err.toSF(q); e.Code == "" {
				t.Fatalf("parseSOQL(%q): error without a code: %v", q, e)
			}
		default:
			checkParsed(t, s, q, sq)
		}

		// The connector's quoting of lit.
		for _, obj := range []string{"Contact", "LoyaltyProgramMember"} {
			eq := "SELECT Id FROM " + obj + " WHERE Ledger_Member_Id__c IN (" + quoteSOQL(lit) + ", 'x') AND LastModifiedDate != null"
			if obj == "LoyaltyProgramMember" {
				eq = "SELECT Id FROM " + obj + " WHERE Ledger_Member_Id__c = " + quoteSOQL(lit)
			}
			lq, lerr := s.parseSOQL(eq)
			if lerr != nil {
				t.Fatalf("parseSOQL(%q): %s: the connector's quoting of %q does not parse", eq, lerr.msg, lit)
			}
			var got any
			switch c := lq.where.(type) {
			case andCond:
				got = c[0].(inCond).vals[0]
			case cmpCond:
				got = c.val
			}
			if want := string([]rune(lit)); got != want {
				t.Fatalf("parseSOQL(%q): value %q, want %q", eq, got, want)
			}
			checkParsed(t, s, eq, lq)
		}
		likeQ := "SELECT Id FROM Contact WHERE LastName LIKE " + quoteLike(lit)
		lq, lerr := s.parseSOQL(likeQ)
		if lerr != nil {
			t.Fatalf("parseSOQL(%q): %s: a LIKE pattern of %q does not parse", likeQ, lerr.msg, lit)
		}
		like := lq.where.(cmpCond).like
		v := string([]rune(lit))
		if !like.MatchString(v) || like.MatchString(v+"x") || (v != "" && like.MatchString(v[:len(v)-1])) {
			t.Fatalf("%s: the pattern %s matches %q: %v, %q: %v; want exactly %q", likeQ, like, v, like.MatchString(v), v+"x", like.MatchString(v+"x"), v)
		}
		checkParsed(t, s, likeQ, lq)
	})
}

// checkParsed checks the properties of a parsed query.
func checkParsed(t *testing.T, s *Server, q string, sq *soqlQuery) {
	t.Helper()
	if sq.object == nil || (len(sq.fields) == 0 && !sq.count) {
		t.Fatalf("parseSOQL(%q): a query of %v with %d fields", q, sq.object, len(sq.fields))
	}
	text := renderSOQL(sq)
	again, err := s.parseSOQL(text)
	if err != nil {
		t.Fatalf("parseSOQL(%q) parsed; its rendering %q does not: %s: %s", q, text, err.code, err.msg)
	}
	if text2 := renderSOQL(again); text2 != text {
		t.Fatalf("parseSOQL(%q) renders as\n%q, which parses to\n%q", q, text, text2)
	}
	checkDates(t, q, sq.where)
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.execute("/services/data/v63.0", sq)
}

// checkDates checks that date and datetime values are valid.
func checkDates(t *testing.T, q string, c cond) {
	t.Helper()
	check := func(fp fieldPath, v any) {
		str, _ := v.(string)
		switch {
		case v == nil:
		case fp.leaf.Type == tDate:
			if _, err := time.Parse(dateLayout, str); err != nil {
				t.Fatalf("parseSOQL(%q): %s = %q, not a date: %v", q, fp.leaf.Name, str, err)
			}
		case fp.leaf.Type == tDatetime:
			if _, ok := parseDatetime(str); !ok {
				t.Fatalf("parseSOQL(%q): %s = %q, not a datetime", q, fp.leaf.Name, str)
			}
		}
	}
	switch x := c.(type) {
	case andCond:
		for _, e := range x {
			checkDates(t, q, e)
		}
	case orCond:
		for _, e := range x {
			checkDates(t, q, e)
		}
	case notCond:
		checkDates(t, q, x.c)
	case groupCond:
		checkDates(t, q, x.c)
	case cmpCond:
		check(x.path, x.val)
	case inCond:
		for _, v := range x.vals {
			check(x.path, v)
		}
	}
}

// renderSOQL writes a parsed query as SOQL: fields by their canonical
// paths, values as literals, ORDER BY items with their direction and nulls.
func renderSOQL(sq *soqlQuery) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if sq.count {
		b.WriteString("COUNT()")
	}
	for i, fp := range sq.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pathText(fp))
	}
	b.WriteString(" FROM " + sq.object.Name)
	if sq.where != nil {
		b.WriteString(" WHERE " + renderCond(sq.where))
	}
	for i, o := range sq.order {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(pathText(o.path))
		if o.desc {
			b.WriteString(" DESC")
		} else {
			b.WriteString(" ASC")
		}
		if o.nullsFirst {
			b.WriteString(" NULLS FIRST")
		} else {
			b.WriteString(" NULLS LAST")
		}
	}
	if sq.limit >= 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(sq.limit))
	}
	if sq.offset > 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(sq.offset))
	}
	return b.String()
}

func pathText(fp fieldPath) string {
	var parts []string
	for _, rel := range fp.rels {
		parts = append(parts, rel.RelationshipName)
	}
	return strings.Join(append(parts, fp.leaf.Name), ".")
}

func renderCond(c cond) string {
	join := func(cs []cond, sep string) string {
		parts := make([]string, len(cs))
		for i, e := range cs {
			parts[i] = renderCond(e)
		}
		return strings.Join(parts, sep)
	}
	switch x := c.(type) {
	case andCond:
		return join(x, " AND ")
	case orCond:
		return join(x, " OR ")
	case notCond:
		return "NOT " + renderCond(x.c)
	case groupCond:
		return "(" + renderCond(x.c) + ")"
	case inCond:
		vals := make([]string, len(x.vals))
		for i, v := range x.vals {
			vals[i] = renderValue(x.path, v)
		}
		op := " IN ("
		if x.not {
			op = " NOT IN ("
		}
		return pathText(x.path) + op + strings.Join(vals, ", ") + ")"
	case cmpCond:
		if x.op == "like" {
			return pathText(x.path) + " LIKE '" + x.pattern + "'"
		}
		return pathText(x.path) + " " + x.op + " " + renderValue(x.path, x.val)
	}
	panic(fmt.Sprintf("unknown condition %T", c))
}

func renderValue(fp fieldPath, v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		if fp.leaf.Type == tDate || fp.leaf.Type == tDatetime {
			return x
		}
		return quoteSOQL(x)
	}
	panic(fmt.Sprintf("unknown value %T", v))
}

// quoteSOQL quotes s as the connector does.
func quoteSOQL(s string) string { return salesforce.QuoteSOQL(s) }

// quoteLike quotes s as a LIKE pattern that matches s only.
func quoteLike(s string) string {
	q := quoteSOQL(s)
	q = strings.ReplaceAll(q, "%", `\%`)
	return strings.ReplaceAll(q, "_", `\_`)
}

// fuzzServer is an emulator (not listening) holding a few records.
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	s, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	acc, err := s.Insert("Account", map[string]any{"Name": "Acme"})
	if err != nil {
		f.Fatal(err)
	}
	for i, name := range []string{"Lovelace", "Hopper", "it's"} {
		c, err := s.Insert("Contact", map[string]any{"LastName": name, "AccountId": acc, "Ledger_Member_Id__c": fmt.Sprintf("M-%d", i), "Loyalty_Points__c": float64(i * 100)})
		if err != nil {
			f.Fatal(err)
		}
		if _, err := s.Insert("LoyaltyProgramMember", map[string]any{"MembershipNumber": fmt.Sprintf("M-%d", i), "ProgramId": DefaultProgramID,
			"EnrollmentDate": "2025-01-02", "ContactId": c, "Ledger_Member_Id__c": fmt.Sprintf("M-%d", i), "Tier__c": "Gold"}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := s.Insert("Contact", map[string]any{"LastName": "NoAccount"}); err != nil {
		f.Fatal(err)
	}
	return s
}

// bulkSeeds are CSV uploads as the tests and the connector send them, and
// edge cases.
var bulkSeeds = []string{
	"Ledger_Member_Id__c,EnrollmentDate,MembershipNumber,Points_Balance__c,ProgramId,Tier__c\nM-0000,2025-01-02,MN-M-0000,0,0lpEm0000000001IAA,Gold\nM-0001,2025-01-02,MN-M-0001,1,0lpEm0000000001IAA,#N/A\n",
	"Id,Tier__c\n0lMEm0000000001IAA,Silver\n0lMEm0000000002IAA,\n",
	"LastName,Description\nLovelace,\"multi\nline, with \"\"quotes\"\"\"\nHopper,plain\n",
	"\ufeffLastName\nLovelace\n",
	"LastName,FirstName\r\nLovelace,Ada\r\n",
	"LastName\n",
	"LastName,LastName\nA,B\n",
	"LastName,\nA,B\n",
	"LastName,FirstName\nA\n",
	"LastName,FirstName\nA,B,C\n",
	"LastName\n\"unterminated\n",
	"LastName\na\"b\n",
	"LastName|FirstName\nLovelace|Ada\n",
	"LastName\tFirstName\nLovelace\tAda\n",
	"",
	"\n\n",
	"LastName\n\"\"\n\nx\n",
	"LastName\n\"a\r\nb\"\n",
	"LastName\na\rb\n",
}

// FuzzBulkCSV reads fuzzed uploads (one or two, in each delimiter and line
// ending) as a job does. Properties:
//   - every row has a cell for every column, read or refused;
//   - the columns are named, and distinct case-insensitively;
//   - data that reads, written back as the job's results are written
//     (csvOut, the job's delimiter and line ending), reads back the same:
//     the results a client reads hold the cells it uploaded.
func FuzzBulkCSV(f *testing.F) {
	for _, s := range bulkSeeds {
		f.Add([]byte(s), []byte(nil), false, uint8(2))
	}
	f.Add([]byte("LastName,FirstName\nLovelace,Ada\n"), []byte("firstname,Email\nGrace,g@example.com\n"), false, uint8(2))
	f.Add([]byte("LastName;FirstName\r\nLovelace;Ada\r\n"), []byte("LastName\r\nHopper\r\n"), true, uint8(4))
	delimiters := []string{"BACKQUOTE", "CARET", "COMMA", "PIPE", "SEMICOLON", "TAB"}
	f.Fuzz(func(t *testing.T, first, second []byte, crlf bool, delim uint8) {
		name := delimiters[int(delim)%len(delimiters)]
		comma := bulkDelimiters[name]
		lineEnding := "LF"
		if crlf {
			lineEnding = "CRLF"
		}
		uploads := [][]byte{first}
		if len(second) > 0 {
			uploads = append(uploads, second)
		}
		cols, rows, msg := parseUploads(uploads, lineEnding, comma)
		checkTable(t, cols, rows)
		if msg != "" {
			return
		}
		w := &csvOut{comma: byte(comma), eol: "\n"}
		if crlf {
			w.eol = "\r\n"
		}
		if len(cols) == 0 {
			return // nothing to write back: no header
		}
		w.header(nil, cols)
		for _, r := range rows {
			w.row(r)
		}
		cols2, rows2, msg2 := parseUploads([][]byte{w.buf.Bytes()}, lineEnding, comma)
		if msg2 != "" {
			t.Fatalf("uploads %q (%s, %s) read as %q %q; written back as %q they do not: %s", uploads, name, lineEnding, cols, rows, w.buf.Bytes(), msg2)
		}
		if !slices.Equal(cols, cols2) || !slices.EqualFunc(rows, rows2, slices.Equal[[]string]) {
			t.Fatalf("uploads %q (%s, %s) read as\n%q %q; written back as %q they read as\n%q %q", uploads, name, lineEnding, cols, rows, w.buf.Bytes(), cols2, rows2)
		}
	})
}

func checkTable(t *testing.T, cols []string, rows [][]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cols {
		if c == "" || seen[strings.ToLower(c)] {
			t.Fatalf("columns %q: an empty or repeated column", cols)
		}
		seen[strings.ToLower(c)] = true
	}
	for i, r := range rows {
		if len(r) != len(cols) {
			t.Fatalf("row %d has %d cells for %d columns: %q (columns %q)", i, len(r), len(cols), r, cols)
		}
	}
}

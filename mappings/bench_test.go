package mappings_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/itchyny/gojq"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/loyaltyhub/loyaltyhub/mappings"
)

// The benchmark maps testdata/member.json with the 25-field member mapping
// (testdata/member-to-lpm.yaml: 3 expressions, 4 maps, 10 transforms, a
// relationship), and does the same with gojq and with hand-written Go. A
// test checks that the three agree, so the comparison is like for like.

func benchInput(t testing.TB) mappings.Input {
	data, err := os.ReadFile("testdata/member.json")
	require.NoError(t, err)
	return mappings.Input{ID: "ev-1", Type: "loyalty.member.upserted", Source: "ledger", Subject: "M-000123",
		Time: time.Date(2024, 5, 1, 22, 30, 0, 0, time.UTC), Data: data}
}

const jqMapping = `
if .status == "deleted" then empty else
{
  Ext_Id__c: .id,
  MembershipNumber: (.id | ascii_upcase),
  MemberStatus: ({"active": "Active", "suspended": "Inactive", "closed": "Inactive"}[.status] // "Custom"),
  Tier__c: (if .tier == null then "Bronze" else {"gold": "Gold", "silver": "Silver", "bronze": "Bronze"}[.tier] end),
  Email__c: (.email | trim | ascii_downcase),
  Email_Hash__c: (.email | trim | ascii_downcase | sha256),
  Phone__c: (.phone | e164("FR")),
  FirstName__c: (.first_name | (.[0:1] | ascii_upcase) + (.[1:] | ascii_downcase)),
  Full_Name__c: ((.first_name[0:1] | ascii_upcase) + .first_name[1:] + " " + (.last_name | ascii_upcase)),
  Birth_Date__c: (.birth_date | strptime("%Y-%m-%d") | strftime("%Y-%m-%d")),
  EnrollmentDate: (.enrolled_at | fromdateiso8601 | strftime("%Y-%m-%d")),
  Points_Balance__c: .points.balance,
  Lifetime_Points__c: (.points.lifetime // 0),
  Points_Value__c: ((.points.balance * 0.01 * 100 | round) / 100),
  Points_Expire_On__c: .points.expires_at,
  City__c: .address.city,
  Postal_Code__c: .address.postal_code,
  Country__c: (.address.country // "FR"),
  Email_Opt_In__c: (.preferences.email_opt_in // false),
  SMS_Opt_In__c: (if .preferences.sms_opt_in == null then false else .preferences.sms_opt_in end),
  Language__c: ({"fr": "French", "en": "English", "de": "German"}[.preferences.language] // "English"),
  Program__r: {Ext_Id__c: .program},
  Interests__c: (.tags | join(";")),
  Is_High_Value__c: ((.points.lifetime // 0) > 25000 and .tier == "gold"),
  Last_Event__c: $event_id
}
end`

func compileJQ(t testing.TB) *gojq.Code {
	q, err := gojq.Parse(jqMapping)
	require.NoError(t, err)
	code, err := gojq.Compile(q,
		gojq.WithVariables([]string{"$event_id"}),
		gojq.WithFunction("sha256", 0, 0, func(v any, _ []any) any { return sha256Hex(v.(string)) }),
		gojq.WithFunction("e164", 1, 1, func(v any, args []any) any { return frenchE164(v.(string)) }),
	)
	require.NoError(t, err)
	return code
}

func runJQ(code *gojq.Code, in mappings.Input) (map[string]any, error) {
	var data any
	if err := json.Unmarshal(in.Data, &data); err != nil {
		return nil, err
	}
	iter := code.Run(data, in.ID)
	v, ok := iter.Next()
	if !ok {
		return nil, mappings.ErrFiltered
	}
	if err, ok := v.(error); ok {
		return nil, err
	}
	return v.(map[string]any), nil
}

// member is the hand-written decoding of a ledger member.
type member struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Tier       *string `json:"tier"`
	Email      string  `json:"email"`
	Phone      string  `json:"phone"`
	FirstName  string  `json:"first_name"`
	LastName   string  `json:"last_name"`
	BirthDate  string  `json:"birth_date"`
	EnrolledAt string  `json:"enrolled_at"`
	Points     struct {
		Balance   float64 `json:"balance"`
		Lifetime  *int64  `json:"lifetime"`
		ExpiresAt *string `json:"expires_at"`
	} `json:"points"`
	Address struct {
		City       string  `json:"city"`
		PostalCode string  `json:"postal_code"`
		Country    *string `json:"country"`
	} `json:"address"`
	Preferences struct {
		EmailOptIn *bool   `json:"email_opt_in"`
		SMSOptIn   *bool   `json:"sms_opt_in"`
		Language   *string `json:"language"`
	} `json:"preferences"`
	Program string   `json:"program"`
	Tags    []string `json:"tags"`
}

var (
	statusMap   = map[string]string{"active": "Active", "suspended": "Inactive", "closed": "Inactive"}
	tierMap     = map[string]string{"gold": "Gold", "silver": "Silver", "bronze": "Bronze"}
	languageMap = map[string]string{"fr": "French", "en": "English", "de": "German"}
)

func handwritten(in mappings.Input) (map[string]any, error) {
	var m member
	if err := json.Unmarshal(in.Data, &m); err != nil {
		return nil, err
	}
	if m.Status == "deleted" {
		return nil, mappings.ErrFiltered
	}
	out := make(map[string]any, 25)
	out["Ext_Id__c"] = m.ID
	out["MembershipNumber"] = strings.ToUpper(m.ID)
	if s, ok := statusMap[m.Status]; ok {
		out["MemberStatus"] = s
	} else {
		out["MemberStatus"] = "Custom"
	}
	out["Tier__c"] = "Bronze"
	if m.Tier != nil {
		out["Tier__c"] = tierMap[*m.Tier]
	}
	email := strings.ToLower(strings.TrimSpace(m.Email))
	out["Email__c"] = email
	out["Email_Hash__c"] = sha256Hex(email)
	out["Phone__c"] = frenchE164(m.Phone)
	out["FirstName__c"] = strings.ToUpper(m.FirstName[:1]) + strings.ToLower(m.FirstName[1:])
	out["Full_Name__c"] = strings.ToUpper(m.FirstName[:1]) + m.FirstName[1:] + " " + strings.ToUpper(m.LastName)
	bd, err := time.Parse(time.DateOnly, m.BirthDate)
	if err != nil {
		return nil, err
	}
	out["Birth_Date__c"] = bd.Format(time.DateOnly)
	ea, err := time.Parse(time.RFC3339, m.EnrolledAt)
	if err != nil {
		return nil, err
	}
	out["EnrollmentDate"] = ea.UTC().Format(time.DateOnly)
	out["Points_Balance__c"] = m.Points.Balance
	var lifetime int64
	if m.Points.Lifetime != nil {
		lifetime = *m.Points.Lifetime
	}
	out["Lifetime_Points__c"] = lifetime
	out["Points_Value__c"] = math.Round(m.Points.Balance*0.01*100) / 100
	if m.Points.ExpiresAt != nil {
		out["Points_Expire_On__c"] = *m.Points.ExpiresAt
	}
	out["City__c"] = m.Address.City
	out["Postal_Code__c"] = m.Address.PostalCode
	out["Country__c"] = "FR"
	if m.Address.Country != nil {
		out["Country__c"] = *m.Address.Country
	}
	out["Email_Opt_In__c"] = m.Preferences.EmailOptIn != nil && *m.Preferences.EmailOptIn
	out["SMS_Opt_In__c"] = m.Preferences.SMSOptIn != nil && *m.Preferences.SMSOptIn
	out["Language__c"] = "English"
	if m.Preferences.Language != nil {
		if l, ok := languageMap[*m.Preferences.Language]; ok {
			out["Language__c"] = l
		}
	}
	out["Program__r"] = map[string]any{"Ext_Id__c": m.Program}
	out["Interests__c"] = strings.Join(m.Tags, ";")
	out["Is_High_Value__c"] = lifetime > 25000 && m.Tier != nil && *m.Tier == "gold"
	out["Last_Event__c"] = in.ID
	return out, nil
}

// The paths the hand-written readers below take from a member, by index.
var memberPaths = []string{"id", "status", "tier", "email", "phone", "first_name", "last_name", "birth_date",
	"enrolled_at", "points.balance", "points.lifetime", "points.expires_at", "address.city", "address.postal_code",
	"address.country", "preferences.email_opt_in", "preferences.sms_opt_in", "preferences.language", "program", "tags"}

const (
	pID = iota
	pStatus
	pTier
	pEmail
	pPhone
	pFirstName
	pLastName
	pBirthDate
	pEnrolledAt
	pBalance
	pLifetime
	pExpiresAt
	pCity
	pPostalCode
	pCountry
	pEmailOptIn
	pSMSOptIn
	pLanguage
	pProgram
	pTags
)

// handwrittenOver is handwritten over values already read from the data
// (gjson results, by memberPaths index), as fast Go code reads JSON: without
// decoding it into a struct.
func handwrittenOver(in mappings.Input, v []gjson.Result) (map[string]any, error) {
	if v[pStatus].Str == "deleted" {
		return nil, mappings.ErrFiltered
	}
	if !v[pID].Exists() {
		return nil, errors.New("id is missing")
	}
	out := make(map[string]any, 25)
	id := v[pID].Str
	out["Ext_Id__c"] = id
	out["MembershipNumber"] = strings.ToUpper(id)
	if s, ok := statusMap[v[pStatus].Str]; ok {
		out["MemberStatus"] = s
	} else {
		out["MemberStatus"] = "Custom"
	}
	out["Tier__c"] = "Bronze"
	if t := v[pTier]; t.Type == gjson.String {
		out["Tier__c"] = tierMap[t.Str]
	}
	email := strings.ToLower(strings.TrimSpace(v[pEmail].Str))
	out["Email__c"] = email
	out["Email_Hash__c"] = sha256Hex(email)
	out["Phone__c"] = frenchE164(v[pPhone].Str)
	first, last := v[pFirstName].Str, v[pLastName].Str
	out["FirstName__c"] = strings.ToUpper(first[:1]) + strings.ToLower(first[1:])
	out["Full_Name__c"] = strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last)
	bd, err := time.Parse(time.DateOnly, v[pBirthDate].Str)
	if err != nil {
		return nil, err
	}
	out["Birth_Date__c"] = bd.Format(time.DateOnly)
	ea, err := time.Parse(time.RFC3339, v[pEnrolledAt].Str)
	if err != nil {
		return nil, err
	}
	out["EnrollmentDate"] = ea.UTC().Format(time.DateOnly)
	balance := v[pBalance].Num
	out["Points_Balance__c"] = balance
	lifetime := v[pLifetime].Int()
	out["Lifetime_Points__c"] = lifetime
	out["Points_Value__c"] = math.Round(balance*0.01*100) / 100
	if e := v[pExpiresAt]; e.Type == gjson.String {
		out["Points_Expire_On__c"] = e.Str
	}
	out["City__c"] = v[pCity].Str
	out["Postal_Code__c"] = v[pPostalCode].Str
	out["Country__c"] = "FR"
	if c := v[pCountry]; c.Type == gjson.String {
		out["Country__c"] = c.Str
	}
	out["Email_Opt_In__c"] = v[pEmailOptIn].Bool()
	out["SMS_Opt_In__c"] = v[pSMSOptIn].Bool()
	out["Language__c"] = "English"
	if l, ok := languageMap[v[pLanguage].Str]; ok {
		out["Language__c"] = l
	}
	out["Program__r"] = map[string]any{"Ext_Id__c": v[pProgram].Str}
	var tags strings.Builder
	for i, t := range v[pTags].Array() {
		if i > 0 {
			tags.WriteByte(';')
		}
		tags.WriteString(t.Str)
	}
	out["Interests__c"] = tags.String()
	out["Is_High_Value__c"] = lifetime > 25000 && v[pTier].Str == "gold"
	out["Last_Event__c"] = in.ID
	return out, nil
}

// handwrittenGJSON reads the member with gjson.GetMany: one pass per path.
func handwrittenGJSON(in mappings.Input) (map[string]any, error) {
	return handwrittenOver(in, gjson.GetManyBytes(in.Data, memberPaths...))
}

// handwrittenScanner reads the member with the engine's own one-pass
// extractor: what is left is the cost of computing the fields and building
// the result, the floor for any mapping engine with this output.
func handwrittenScanner(read func(string, []gjson.Result)) func(mappings.Input) (map[string]any, error) {
	v := make([]gjson.Result, len(memberPaths))
	return func(in mappings.Input) (map[string]any, error) {
		// One copy of the data: the result keeps strings that point into it.
		read(string(in.Data), v)
		return handwrittenOver(in, v)
	}
}

// handwrittenPreread is handwrittenOver with the data read once, before the
// benchmark loop: the cost of the transform alone, with the JSON already
// read, a floor no reader of the data can go below.
func handwrittenPreread(in mappings.Input) func(mappings.Input) (map[string]any, error) {
	v := gjson.GetManyBytes(in.Data, memberPaths...)
	return func(in mappings.Input) (map[string]any, error) { return handwrittenOver(in, v) }
}

// handwrittenJSON is the same transform with nothing to spare: the data
// read in place with the engine's scanner, the result appended to buf as the
// JSON a connector sends, with no map and no boxing. It is the floor for
// this transform on this machine, whatever the engine's design.
func handwrittenJSON(read func(string, []gjson.Result)) func(mappings.Input, []byte) ([]byte, error) {
	v := make([]gjson.Result, len(memberPaths))
	return func(in mappings.Input, b []byte) ([]byte, error) {
		read(unsafe.String(unsafe.SliceData(in.Data), len(in.Data)), v)
		if v[pStatus].Str == "deleted" {
			return nil, mappings.ErrFiltered
		}
		if !v[pID].Exists() {
			return nil, errors.New("id is missing")
		}
		str := func(name, val string) {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = strconv.AppendQuote(b, val)
		}
		num := func(name string, f float64) {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = strconv.AppendFloat(b, f, 'f', -1, 64)
		}
		boolean := func(name string, t bool) {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = strconv.AppendBool(b, t)
		}
		id := v[pID].Str
		b = append(b, `{"Ext_Id__c":`...)
		b = strconv.AppendQuote(b, id)
		str("MembershipNumber", strings.ToUpper(id))
		status, ok := statusMap[v[pStatus].Str]
		if !ok {
			status = "Custom"
		}
		str("MemberStatus", status)
		tier := "Bronze"
		if t := v[pTier]; t.Type == gjson.String {
			tier = tierMap[t.Str]
		}
		str("Tier__c", tier)
		email := strings.ToLower(strings.TrimSpace(v[pEmail].Str))
		str("Email__c", email)
		sum := sha256.Sum256([]byte(email))
		b = append(b, `,"Email_Hash__c":"`...)
		b = hex.AppendEncode(b, sum[:])
		b = append(b, '"')
		str("Phone__c", frenchE164(v[pPhone].Str))
		first, last := v[pFirstName].Str, v[pLastName].Str
		str("FirstName__c", strings.ToUpper(first[:1])+strings.ToLower(first[1:]))
		str("Full_Name__c", strings.ToUpper(first[:1])+first[1:]+" "+strings.ToUpper(last))
		bd, err := time.Parse(time.DateOnly, v[pBirthDate].Str)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"Birth_Date__c":"`...)
		b = append(bd.AppendFormat(b, time.DateOnly), '"')
		ea, err := time.Parse(time.RFC3339, v[pEnrolledAt].Str)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"EnrollmentDate":"`...)
		b = append(ea.UTC().AppendFormat(b, time.DateOnly), '"')
		balance := v[pBalance].Num
		num("Points_Balance__c", balance)
		lifetime := v[pLifetime].Int()
		num("Lifetime_Points__c", float64(lifetime))
		num("Points_Value__c", math.Round(balance*0.01*100)/100)
		if e := v[pExpiresAt]; e.Type == gjson.String {
			str("Points_Expire_On__c", e.Str)
		}
		str("City__c", v[pCity].Str)
		str("Postal_Code__c", v[pPostalCode].Str)
		country := "FR"
		if c := v[pCountry]; c.Type == gjson.String {
			country = c.Str
		}
		str("Country__c", country)
		boolean("Email_Opt_In__c", v[pEmailOptIn].Bool())
		boolean("SMS_Opt_In__c", v[pSMSOptIn].Bool())
		language, ok := languageMap[v[pLanguage].Str]
		if !ok {
			language = "English"
		}
		str("Language__c", language)
		b = append(b, `,"Program__r":{"Ext_Id__c":`...)
		b = append(strconv.AppendQuote(b, v[pProgram].Str), '}')
		b = append(b, `,"Interests__c":"`...)
		for i, t := range v[pTags].Array() {
			if i > 0 {
				b = append(b, ';')
			}
			b = append(b, t.Str...)
		}
		b = append(b, '"')
		boolean("Is_High_Value__c", lifetime > 25000 && v[pTier].Str == "gold")
		str("Last_Event__c", in.ID)
		return append(b, '}'), nil
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// frenchE164 is the hand-written phone normalisation for French numbers.
func frenchE164(s string) string {
	var b strings.Builder
	b.WriteString("+33")
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	b.WriteString(strings.TrimPrefix(digits, "0"))
	return b.String()
}

// asJSON normalises a result through JSON so int64 and float64 compare alike.
func asJSON(t testing.TB, v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestBenchmarkVariantsAgree(t *testing.T) {
	in := benchInput(t)
	m := memberMapping(t)
	got, err := m.Apply(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, got, 25)
	jq, err := runJQ(compileJQ(t), in)
	require.NoError(t, err)
	hw, err := handwritten(in)
	require.NoError(t, err)
	require.Equal(t, asJSON(t, got), asJSON(t, jq), "gojq differs")
	require.Equal(t, asJSON(t, got), asJSON(t, hw), "hand-written differs")
	hg, err := handwrittenGJSON(in)
	require.NoError(t, err)
	require.Equal(t, asJSON(t, got), asJSON(t, hg), "hand-written over gjson differs")
	hs, err := handwrittenScanner(mappings.NewPathReader(memberPaths...))(in)
	require.NoError(t, err)
	require.Equal(t, asJSON(t, got), asJSON(t, hs), "hand-written over the engine's scanner differs")
	hj, err := handwrittenJSON(mappings.NewPathReader(memberPaths...))(in, nil)
	require.NoError(t, err)
	var fromJSON map[string]any
	require.NoError(t, json.Unmarshal(hj, &fromJSON), string(hj))
	require.Equal(t, asJSON(t, got), fromJSON, "hand-written JSON differs")
}

func BenchmarkMapping(b *testing.B) {
	in := benchInput(b)
	ctx := context.Background()
	b.Run("loyaltyhub", func(b *testing.B) {
		m := memberMapping(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(in.Data)))
		start := cpuTime()
		for b.Loop() {
			if _, err := m.Apply(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("gojq", func(b *testing.B) {
		code := compileJQ(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(in.Data)))
		start := cpuTime()
		for b.Loop() {
			if _, err := runJQ(code, in); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	handwrittenVariants := []struct {
		name string
		fn   func(mappings.Input) (map[string]any, error)
	}{
		{"handwritten", handwritten},
		{"handwritten-gjson", handwrittenGJSON},
		{"handwritten-same-scanner", handwrittenScanner(mappings.NewPathReader(memberPaths...))},
		{"handwritten-preread", handwrittenPreread(in)},
	}
	b.Run("handwritten-same-scanner-json", func(b *testing.B) {
		fn := handwrittenJSON(mappings.NewPathReader(memberPaths...))
		buf := make([]byte, 0, 2048)
		b.ReportAllocs()
		b.SetBytes(int64(len(in.Data)))
		start := cpuTime()
		for b.Loop() {
			var err error
			if buf, err = fn(in, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	for _, v := range handwrittenVariants {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.Data)))
			start := cpuTime()
			for b.Loop() {
				if _, err := v.fn(in); err != nil {
					b.Fatal(err)
				}
			}
			report(b, start)
		})
	}
}

// cpuTime is the process's CPU time (user + system, all threads: GC
// included). The machine is shared, so wall time overstates the cost; CPU
// time per record gives records per second per core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, start time.Duration) {
	cpu := cpuTime() - start
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}

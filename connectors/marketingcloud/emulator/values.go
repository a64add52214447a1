package emulator

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// column is a declared field with its defaults applied.
type column struct {
	Field
	maxLen int // 0: no length limit
}

// problem is one invalid value or column of a row, reported as one additionalErrors
// entry (sync) or one errors entry of a result item (async).
type problem struct {
	column  string // canonical column name, or as given for an unknown column
	message string // without the row index
}

// SFMC's messages start with the column name and repeat it in brackets; the two messages
// for too long a value and for an invalid email address are quoted from real responses,
// the others follow their pattern.
func valueProblem(col, what string) problem {
	return problem{column: col, message: col + ": The value for column [" + col + "] " + what}
}

func nullProblem(col string) problem {
	return problem{column: col, message: col + ": Column [" + col + "] does not allow null value."}
}

var (
	integerRe = regexp.MustCompile(`^[+-]?[0-9]+$`)
	decimalRe = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	phoneRe   = regexp.MustCompile(`^[0-9+\-(). ]*[0-9][0-9+\-(). ]*$`)
)

// dateLayouts are the forms a Date column accepts: ISO 8601 dates and date-times (with or
// without fraction and zone) and the US forms M/D/YYYY [h:mm[:ss] AM|PM] and M/D/YYYY H:mm[:ss].
// Values are upper-cased before parsing, so "am" and "t" work too.
var dateLayouts = []string{
	"2006-01-02",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04",
	"1/2/2006",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 3:04 PM",
	"1/2/2006 15:04:05",
	"1/2/2006 15:04",
}

// parseDate parses a Date column value; SFMC stores dates as SQL Server datetime, whose
// range starts in 1753.
func parseDate(s string) (time.Time, bool) {
	u := strings.ToUpper(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, u); err == nil {
			if t.Year() < 1753 {
				return time.Time{}, false
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// convert checks one JSON value (decoded with UseNumber) against the column's type and
// returns the text the data extension stores. null, and the empty string, mean "no value"
// (null is true); the caller decides whether the column may be null.
func (c *column) convert(v any) (text string, null bool, p *problem) {
	var raw string
	switch x := v.(type) {
	case nil:
		return "", true, nil
	case string:
		raw = strings.TrimSpace(x)
		if c.Type == FieldText {
			raw = x // text is stored exactly as given
		}
		if raw == "" {
			return "", true, nil
		}
	case json.Number:
		raw = x.String()
	case bool:
		raw = "False"
		if x {
			raw = "True"
		}
	default: // objects and arrays
		bad := valueProblem(c.Name, "is not a valid "+string(c.Type)+": objects and arrays are not column values.")
		return "", false, &bad
	}
	_, isBool := v.(bool)
	invalid := func(what string) (string, bool, *problem) {
		bad := valueProblem(c.Name, what)
		return "", false, &bad
	}
	switch c.Type {
	case FieldNumber:
		if isBool || !integerRe.MatchString(raw) {
			return invalid("is not a valid Number (a whole number).")
		}
		n, err := strconv.ParseInt(raw, 10, 32)
		if err != nil {
			return invalid("is not a valid Number: it must be between -2147483648 and 2147483647.")
		}
		return strconv.FormatInt(n, 10), false, nil
	case FieldDecimal:
		if isBool || !decimalRe.MatchString(raw) {
			return invalid("is not a valid Decimal.")
		}
		if f, err := strconv.ParseFloat(raw, 64); err != nil || math.IsInf(f, 0) {
			return invalid("is not a valid Decimal.")
		}
		return raw, false, nil
	case FieldBoolean:
		switch strings.ToLower(raw) {
		case "true", "1":
			return "True", false, nil
		case "false", "0":
			return "False", false, nil
		}
		return invalid("is not a valid Boolean.")
	case FieldDate:
		if _, ok := parseDate(raw); isBool || !ok {
			return invalid("is not a valid Date.")
		}
		return raw, false, nil
	case FieldEmailAddress:
		local, domain, ok := strings.Cut(raw, "@")
		if isBool || !ok || local == "" || domain == "" || strings.Contains(domain, "@") || strings.ContainsAny(raw, " \t\r\n,;<>") {
			return invalid("is not a valid email address. Parse error [InvalidEmailAddress]")
		}
	case FieldPhone:
		if isBool || !phoneRe.MatchString(raw) {
			return invalid("is not a valid phone number.")
		}
	}
	if c.maxLen > 0 && utf8.RuneCountInString(raw) > c.maxLen {
		return invalid("exceeds the column's maximum length.")
	}
	return raw, false, nil
}

// indexKey is the form of a primary key value that identifies a row: SQL Server compares
// text case-insensitively, numbers by value and dates by instant.
func (c *column) indexKey(text string) string {
	switch c.Type {
	case FieldDecimal:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	case FieldDate:
		if t, ok := parseDate(text); ok {
			return t.UTC().Format(time.RFC3339Nano)
		}
	case FieldNumber, FieldBoolean:
		return text
	}
	return strings.ToLower(text)
}

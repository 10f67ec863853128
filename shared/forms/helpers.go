package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

func joinPath(parent, linkID string) string {
	if parent == "" {
		return linkID
	}
	return parent + "/" + linkID
}

// validLinkID keeps linkIds usable as JSON keys, HTML field names and CSV
// headers.
func validLinkID(s string) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// hasControl reports control characters and, unless allowNewlines, the
// Unicode line and paragraph separators; allowNewlines permits \n and \t.
func hasControl(s string, allowNewlines bool) bool {
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\u2028' || r == '\u2029':
			if !allowNewlines {
				return true
			}
		case unicode.IsControl(r):
			return true
		}
	}
	return false
}

// Shapes of FHIR date and dateTime (with a time, so with a zone); time.Parse
// then checks the calendar. time.Parse alone is too lenient for stored data:
// it takes one-digit hours, a comma before fractional seconds and year 0000.
var (
	datePattern     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	dateTimePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$`)
)

// validDate accepts exactly YYYY-MM-DD naming a real calendar day.
func validDate(s string) bool {
	if !datePattern.MatchString(s) || strings.HasPrefix(s, "0000") {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// validDateTime accepts an RFC 3339 timestamp with seconds and a zone, as
// FHIR's dateTime allows it.
func validDateTime(s string) bool {
	if !dateTimePattern.MatchString(s) || strings.HasPrefix(s, "0000") {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// clip shortens a string from a form file before it is quoted in an error.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// describeJSONError turns encoding/json errors into messages about JSON
// rather than about this package's Go types.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		want := "a value of another type"
		switch kind := typeErr.Type.Kind(); {
		case kind == reflect.Bool:
			want = "a boolean"
		case kind == reflect.String:
			want = "a string"
		case kind >= reflect.Int && kind <= reflect.Uint64:
			want = "an integer"
		case kind == reflect.Float32 || kind == reflect.Float64:
			want = "a number"
		case kind == reflect.Slice && typeErr.Type == reflect.TypeFor[json.RawMessage]():
			want = "a JSON value"
		case kind == reflect.Slice:
			want = "an array"
		case kind == reflect.Struct || kind == reflect.Map || kind == reflect.Pointer:
			want = "an object"
		}
		if typeErr.Field == "" {
			return fmt.Sprintf("want %s, got JSON %s", want, typeErr.Value)
		}
		return fmt.Sprintf("field %q: want %s, got JSON %s", typeErr.Field, want, typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	}
	return "invalid JSON: " + err.Error()
}

// formatLimit prints a min/max bound the way a person would write it.
func formatLimit(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// timePattern is FHIR's time (hh:mm:ss with optional fraction), or hh:mm
// as people type it.
var timePattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]{1,9})?)?$`)

// normalTime checks a time of day and gives it as FHIR writes it: "14:30"
// becomes "14:30:00".
func normalTime(s string) (string, bool) {
	if !timePattern.MatchString(s) {
		return "", false
	}
	if len(s) == len("14:30") {
		s += ":00"
	}
	return s, true
}

// validWebURL accepts an absolute http or https URL with a host and
// nothing a browser would have to repair: no spaces, control characters or
// user information (which is how phishing links hide their real host). A
// url answer is shown to staff as text, never fetched.
func validWebURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n\\") || hasControl(s, false) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

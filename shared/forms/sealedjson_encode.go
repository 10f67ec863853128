package forms

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MarshalAnswers returns exactly what json.Marshal returns for a, without
// its reflection: transfer encodes the carried answers of every submission
// it moves. Answers holding what Validate never returns (FHIR nested items,
// a reference identifier) are left to json.Marshal.
func MarshalAnswers(a Answers) ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	if !plainAnswers(a) {
		return json.Marshal(a)
	}
	return appendAnswers(make([]byte, 0, 1024), a), nil
}

// plainAnswers reports whether a holds only what appendAnswers writes: no
// nested items, no reference identifier, and numbers json.Marshal takes.
func plainAnswers(a Answers) bool {
	for _, values := range a {
		for _, v := range values {
			if v.Item != nil || v.ValueReference != nil && v.ValueReference.Identifier != nil ||
				v.ValueDecimal != nil && !isJSONNumber(string(*v.ValueDecimal)) ||
				v.ValueQuantity != nil && v.ValueQuantity.Value != "" && !isJSONNumber(string(v.ValueQuantity.Value)) {
				return false
			}
			if v.Instance != nil && !plainAnswers(v.Instance) {
				return false
			}
		}
	}
	return true
}

func appendAnswers(b []byte, a Answers) []byte {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		values := a[k]
		if values == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range values {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendValue writes v's fields in Value's order, each omitted when empty
// as its omitempty tag says.
func appendValue(b []byte, v Value) []byte {
	b = append(b, '{')
	n := len(b)
	name := func(name string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if v.ValueString != nil {
		name("valueString")
		b = appendString(b, *v.ValueString)
	}
	if v.ValueInteger != nil {
		name("valueInteger")
		b = strconv.AppendInt(b, *v.ValueInteger, 10)
	}
	if v.ValueDecimal != nil {
		name("valueDecimal")
		b = appendNumber(b, *v.ValueDecimal)
	}
	if v.ValueBoolean != nil {
		name("valueBoolean")
		b = strconv.AppendBool(b, *v.ValueBoolean)
	}
	if v.ValueDate != nil {
		name("valueDate")
		b = appendString(b, *v.ValueDate)
	}
	if v.ValueDateTime != nil {
		name("valueDateTime")
		b = appendString(b, *v.ValueDateTime)
	}
	if c := v.ValueCoding; c != nil {
		name("valueCoding")
		b = append(b, '{')
		b = appendMembers(b, true, "system", c.System, "code", c.Code, "display", c.Display)
		b = append(b, '}')
	}
	if at := v.ValueAttachment; at != nil {
		name("valueAttachment")
		b = append(b, '{')
		m := len(b)
		member := func(name string) {
			if len(b) > m {
				b = append(b, ',')
			}
			b = append(b, name...)
		}
		if at.ContentType != "" {
			member(`"contentType":`)
			b = appendString(b, at.ContentType)
		}
		if len(at.Data) > 0 {
			member(`"data":"`)
			b = append(base64.StdEncoding.AppendEncode(b, at.Data), '"')
		}
		if at.Title != "" {
			member(`"title":`)
			b = appendString(b, at.Title)
		}
		if at.Size != 0 {
			member(`"size":`)
			b = strconv.AppendInt(b, at.Size, 10)
		}
		if len(at.Hash) > 0 {
			member(`"hash":"`)
			b = append(base64.StdEncoding.AppendEncode(b, at.Hash), '"')
		}
		b = append(b, '}')
	}
	if q := v.ValueQuantity; q != nil {
		name("valueQuantity")
		b = append(b, `{"value":`...)
		b = appendNumber(b, q.Value)
		b = appendMembers(b, false, "unit", q.Unit, "system", q.System, "code", q.Code)
		b = append(b, '}')
	}
	if v.ValueTime != nil {
		name("valueTime")
		b = appendString(b, *v.ValueTime)
	}
	if v.ValueURI != nil {
		name("valueUri")
		b = appendString(b, *v.ValueURI)
	}
	if r := v.ValueReference; r != nil {
		name("valueReference")
		b = append(b, '{')
		b = appendMembers(b, true, "reference", r.Reference, "display", r.Display, "type", r.Type)
		b = append(b, '}')
	}
	if len(v.Instance) > 0 {
		name("instance")
		b = appendAnswers(b, v.Instance)
	}
	return append(b, '}')
}

// appendMembers writes the string members (name, value pairs) whose value
// is not empty, the first without a comma before it when first is set.
func appendMembers(b []byte, first bool, kv ...string) []byte {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, kv[i]...)
		b = append(b, '"', ':')
		b = appendString(b, kv[i+1])
	}
	return b
}

// appendNumber writes a json.Number as json.Marshal does ("" is 0;
// plainAnswers has checked the rest).
func appendNumber(b []byte, n json.Number) []byte {
	if n == "" {
		return append(b, '0')
	}
	return append(b, n...)
}

// appendString writes s as json.Marshal does: HTML-safe, U+2028 and U+2029
// escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Package jsonread reads JSON of a known shape strictly and fast, without
// reflection: transfer decodes every sealed submission with it (the payload
// in shared/seal, the answers in shared/forms), where encoding/json's
// reflection and its second pass over the input were a large share of a
// row's CPU time.
//
// It takes only what RFC 8259 allows, and less than encoding/json: invalid
// UTF-8 and unpaired surrogate escapes are errors (encoding/json replaces
// them with U+FFFD), and the callers refuse duplicate and unknown names.
// Whatever it accepts, encoding/json reads the same way (FuzzAgreesWithJSON).
package jsonread

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays.
const MaxDepth = 1000

// Reader reads one JSON text from a byte slice.
type Reader struct {
	data  []byte
	pos   int
	depth int
}

// New returns a Reader over data.
func New(data []byte) *Reader { return &Reader{data: data} }

// errSyntax is returned for any malformed input: its position is enough,
// and no part of the input (which may be a patient's answers) is quoted.
func (r *Reader) errSyntax(what string) error {
	return fmt.Errorf("json: %s at offset %d", what, r.pos)
}

// ErrShape is wrapped by errors a caller returns for well-formed JSON of
// the wrong shape.
var ErrShape = errors.New("json: unexpected shape")

func (r *Reader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Peek returns the first byte of the next value ('{', '[', '"', 't', 'f',
// 'n', '-' or a digit), or 0 at the end of the input.
func (r *Reader) Peek() byte {
	r.skipSpace()
	if r.pos < len(r.data) {
		return r.data[r.pos]
	}
	return 0
}

func (r *Reader) expect(c byte) error {
	if r.Peek() != c {
		return r.errSyntax(fmt.Sprintf("want %q", c))
	}
	r.pos++
	return nil
}

// Object reads an object, calling fn with each name (valid only during the
// call) once the reader is at its value; fn must read the value.
func (r *Reader) Object(fn func(name []byte) error) error {
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.depth++; r.depth > MaxDepth {
		return r.errSyntax("nested too deep")
	}
	if r.Peek() == '}' {
		r.pos++
		r.depth--
		return nil
	}
	var buf []byte
	for {
		if r.Peek() != '"' {
			return r.errSyntax("want a name")
		}
		name, err := r.stringBytes(buf[:0])
		if err != nil {
			return err
		}
		buf = name
		if err := r.expect(':'); err != nil {
			return err
		}
		if err := fn(name); err != nil {
			return err
		}
		switch r.Peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			r.depth--
			return nil
		default:
			return r.errSyntax("want ',' or '}'")
		}
	}
}

// Array reads an array, calling fn at each element; fn must read it.
func (r *Reader) Array(fn func() error) error {
	if err := r.expect('['); err != nil {
		return err
	}
	if r.depth++; r.depth > MaxDepth {
		return r.errSyntax("nested too deep")
	}
	if r.Peek() == ']' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch r.Peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			r.depth--
			return nil
		default:
			return r.errSyntax("want ',' or ']'")
		}
	}
}

// String reads a string.
func (r *Reader) String() (string, error) {
	b, err := r.StringBytes()
	return string(b), err
}

// StringBytes reads a string and returns its bytes, a slice of the input
// when it has no escapes (so no copy of a large one is made): valid only as
// long as the input is, and not to be modified.
func (r *Reader) StringBytes() ([]byte, error) {
	if r.Peek() != '"' {
		return nil, r.errSyntax("want a string")
	}
	start := r.pos + 1
	// The common case, no escapes: one scan.
	for i := start; i < len(r.data); i++ {
		c := r.data[i]
		if c == '"' {
			s := r.data[start:i]
			if !utf8.Valid(s) {
				return nil, r.errSyntax("invalid UTF-8")
			}
			r.pos = i + 1
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	return r.stringBytes(nil)
}

// stringBytes reads a string, unescaped, appended to buf.
func (r *Reader) stringBytes(buf []byte) ([]byte, error) {
	r.pos++ // the opening quote, checked by the caller
	start := r.pos
	for r.pos < len(r.data) {
		c := r.data[r.pos]
		switch {
		case c == '"':
			seg := r.data[start:r.pos]
			if !utf8.Valid(seg) {
				return nil, r.errSyntax("invalid UTF-8")
			}
			r.pos++
			return append(buf, seg...), nil
		case c < 0x20:
			return nil, r.errSyntax("control character in string")
		case c == '\\':
			seg := r.data[start:r.pos]
			if !utf8.Valid(seg) {
				return nil, r.errSyntax("invalid UTF-8")
			}
			buf = append(buf, seg...)
			var err error
			if buf, err = r.escape(buf); err != nil {
				return nil, err
			}
			start = r.pos
		default:
			r.pos++
		}
	}
	return nil, r.errSyntax("unterminated string")
}

// escape reads one escape sequence (at the backslash) and appends what it
// stands for.
func (r *Reader) escape(buf []byte) ([]byte, error) {
	if r.pos+1 >= len(r.data) {
		return nil, r.errSyntax("unterminated escape")
	}
	c := r.data[r.pos+1]
	r.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		hi, ok := r.hex4()
		if !ok {
			return nil, r.errSyntax("invalid \\u escape")
		}
		if !utf16.IsSurrogate(hi) {
			return utf8.AppendRune(buf, hi), nil
		}
		if hi >= 0xdc00 || r.pos+1 >= len(r.data) || r.data[r.pos] != '\\' || r.data[r.pos+1] != 'u' {
			return nil, r.errSyntax("unpaired surrogate")
		}
		r.pos += 2
		lo, ok := r.hex4()
		if !ok || lo < 0xdc00 || lo > 0xdfff {
			return nil, r.errSyntax("unpaired surrogate")
		}
		return utf8.AppendRune(buf, utf16.DecodeRune(hi, lo)), nil
	}
	return nil, r.errSyntax("invalid escape")
}

func (r *Reader) hex4() (rune, bool) {
	if r.pos+4 > len(r.data) {
		return 0, false
	}
	var v rune
	for _, c := range r.data[r.pos : r.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	r.pos += 4
	return v, true
}

// Number reads a number and returns it as written.
func (r *Reader) Number() (string, error) {
	r.skipSpace()
	start := r.pos
	d := r.data
	i := r.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return "", r.errSyntax("want a number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		n := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == n {
			return "", r.errSyntax("want a digit")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		n := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == n {
			return "", r.errSyntax("want a digit")
		}
	}
	r.pos = i
	return string(d[start:i]), nil
}

// Int reads a number written as an integer (no fraction, no exponent) that
// fits an int64.
func (r *Reader) Int() (int64, error) {
	s, err := r.Number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("json: %w: not an int64", ErrShape)
	}
	return n, nil
}

// Bool reads true or false.
func (r *Reader) Bool() (bool, error) {
	r.skipSpace()
	switch {
	case r.literal("true"):
		return true, nil
	case r.literal("false"):
		return false, nil
	}
	return false, r.errSyntax("want true or false")
}

// Null reads null if it is next and reports whether it was.
func (r *Reader) Null() bool {
	r.skipSpace()
	return r.literal("null")
}

func (r *Reader) literal(lit string) bool {
	if len(r.data)-r.pos >= len(lit) && string(r.data[r.pos:r.pos+len(lit)]) == lit {
		r.pos += len(lit)
		return true
	}
	return false
}

// Raw reads any value and returns its text (a slice of the input).
func (r *Reader) Raw() ([]byte, error) {
	r.skipSpace()
	start := r.pos
	if err := r.skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

func (r *Reader) skip() error {
	switch r.Peek() {
	case '{':
		return r.Object(func([]byte) error { return r.skip() })
	case '[':
		return r.Array(r.skip)
	case '"':
		_, err := r.stringBytes(nil)
		return err
	case 't', 'f':
		_, err := r.Bool()
		return err
	case 'n':
		if r.Null() {
			return nil
		}
	default:
		_, err := r.Number()
		return err
	}
	return r.errSyntax("want a value")
}

// End checks that nothing but white space is left.
func (r *Reader) End() error {
	if r.Peek() != 0 || r.pos != len(r.data) {
		return r.errSyntax("trailing data")
	}
	return nil
}

package forms

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/airlockhq/airlock/shared/jsonread"
)

// DecodeSealedAnswers reads answers in the JSON encoding json.Marshal gives
// Answers (what intake seals) without reflection, for transfer, which reads
// every sealed submission. It reads the same answers json.Unmarshal would,
// and refuses more: an unknown, misspelt or repeated name, a null where a
// value should be, an answer carrying FHIR nested items (Value.Item, never
// sealed), a number as a string, invalid UTF-8 (FuzzDecodeSealedAnswers
// holds it to that). ValidateSealed then checks them against the form.
func DecodeSealedAnswers(data []byte) (Answers, error) {
	r := jsonread.New(data)
	if r.Null() {
		return nil, r.End() // json.Marshal's nil Answers
	}
	a, err := readAnswers(r)
	if err != nil {
		return nil, err
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	return a, nil
}

func shapeError(what string) error {
	return fmt.Errorf("sealed answers: %w: %s", jsonread.ErrShape, what)
}

func readAnswers(r *jsonread.Reader) (Answers, error) {
	a := Answers{}
	err := r.Object(func(name []byte) error {
		if _, dup := a[string(name)]; dup {
			return shapeError("a linkId appears twice")
		}
		key := string(name)
		values := []Value{}
		err := r.Array(func() error {
			v, err := readValue(r)
			values = append(values, v)
			return err
		})
		a[key] = values
		return err
	})
	return a, err
}

// readValue reads one Value: each value[x] and instance at most once.
func readValue(r *jsonread.Reader) (Value, error) {
	var v Value
	err := r.Object(func(name []byte) error {
		var err error
		switch string(name) {
		case "valueString":
			v.ValueString, err = readString(r, v.ValueString)
		case "valueInteger":
			if v.ValueInteger != nil {
				return shapeError("repeated name")
			}
			var n int64
			n, err = r.Int()
			v.ValueInteger = &n
		case "valueDecimal":
			if v.ValueDecimal != nil {
				return shapeError("repeated name")
			}
			var s string
			s, err = r.Number()
			n := json.Number(s)
			v.ValueDecimal = &n
		case "valueBoolean":
			if v.ValueBoolean != nil {
				return shapeError("repeated name")
			}
			var b bool
			b, err = r.Bool()
			v.ValueBoolean = &b
		case "valueDate":
			v.ValueDate, err = readString(r, v.ValueDate)
		case "valueDateTime":
			v.ValueDateTime, err = readString(r, v.ValueDateTime)
		case "valueTime":
			v.ValueTime, err = readString(r, v.ValueTime)
		case "valueUri":
			v.ValueURI, err = readString(r, v.ValueURI)
		case "valueCoding":
			if v.ValueCoding != nil {
				return shapeError("repeated name")
			}
			v.ValueCoding, err = readCoding(r)
		case "valueAttachment":
			if v.ValueAttachment != nil {
				return shapeError("repeated name")
			}
			v.ValueAttachment, err = readAttachment(r)
		case "valueQuantity":
			if v.ValueQuantity != nil {
				return shapeError("repeated name")
			}
			v.ValueQuantity, err = readQuantity(r)
		case "valueReference":
			if v.ValueReference != nil {
				return shapeError("repeated name")
			}
			v.ValueReference, err = readReference(r)
		case "instance":
			if v.Instance != nil {
				return shapeError("repeated name")
			}
			v.Instance, err = readAnswers(r)
		default:
			return shapeError("unknown name in an answer")
		}
		return err
	})
	return v, err
}

func readString(r *jsonread.Reader, seen *string) (*string, error) {
	if seen != nil {
		return nil, shapeError("repeated name")
	}
	s, err := r.String()
	return &s, err
}

// readObject reads an object of the shape json.Marshal writes for one of
// the sealed types: member reads the value of a name it takes and reports
// false for a name it does not take; a name given twice is refused.
func readObject(r *jsonread.Reader, what string, member func(name string) (bool, error)) error {
	var seen []string
	return r.Object(func(name []byte) error {
		if slices.Contains(seen, string(name)) {
			return shapeError("repeated name")
		}
		known, err := member(string(name))
		if !known {
			return shapeError("unknown name in " + what)
		}
		seen = append(seen, string(name))
		return err
	})
}

// readFields reads an object whose members are all strings, each into the
// field fields names, at most once.
func readFields(r *jsonread.Reader, what string, fields func(name string) *string) error {
	return readObject(r, what, func(name string) (bool, error) {
		p := fields(name)
		if p == nil {
			return false, nil
		}
		var err error
		*p, err = r.String()
		return true, err
	})
}

func readCoding(r *jsonread.Reader) (*Coding, error) {
	c := &Coding{}
	return c, readFields(r, "a coding", func(name string) *string {
		switch name {
		case "system":
			return &c.System
		case "code":
			return &c.Code
		case "display":
			return &c.Display
		}
		return nil
	})
}

func readReference(r *jsonread.Reader) (*Reference, error) {
	ref := &Reference{}
	return ref, readObject(r, "a reference", func(name string) (bool, error) {
		var err error
		switch name {
		case "reference":
			ref.Reference, err = r.String()
		case "display":
			ref.Display, err = r.String()
		case "type":
			ref.Type, err = r.String()
		case "identifier":
			// Kept only to be refused (see Reference): as json.Unmarshal
			// keeps it, the value's text.
			if r.Null() {
				return true, nil // json.Unmarshal leaves the pointer nil
			}
			raw, rerr := r.Raw()
			id := json.RawMessage(append([]byte(nil), raw...))
			ref.Identifier, err = &id, rerr
		default:
			return false, nil
		}
		return true, err
	})
}

func readQuantity(r *jsonread.Reader) (*Quantity, error) {
	q := &Quantity{}
	return q, readObject(r, "a quantity", func(name string) (bool, error) {
		var err error
		switch name {
		case "value":
			var s string
			s, err = r.Number()
			q.Value = json.Number(s)
		case "unit":
			q.Unit, err = r.String()
		case "system":
			q.System, err = r.String()
		case "code":
			q.Code, err = r.String()
		default:
			return false, nil
		}
		return true, err
	})
}

func readAttachment(r *jsonread.Reader) (*Attachment, error) {
	a := &Attachment{}
	return a, readObject(r, "an attachment", func(name string) (bool, error) {
		var err error
		switch name {
		case "contentType":
			a.ContentType, err = r.String()
		case "title":
			a.Title, err = r.String()
		case "size":
			a.Size, err = r.Int()
		case "data":
			a.Data, err = readBase64(r)
		case "hash":
			a.Hash, err = readBase64(r)
		default:
			return false, nil
		}
		return true, err
	})
}

// readBase64 reads a []byte as encoding/json writes it.
func readBase64(r *jsonread.Reader) ([]byte, error) {
	s, err := r.StringBytes() // an attachment's data is megabytes: not copied first
	if err != nil {
		return nil, err
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return nil, shapeError("invalid base64")
	}
	return b[:n], nil
}

package seal

import (
	"bytes"
	"errors"

	"github.com/airlockhq/airlock/shared/jsonread"
)

// errPayloadShape is a well-formed payload JSON with a name it should not
// have, or one twice.
var errPayloadShape = errors.New("unknown or repeated name")

// readPayload reads a payload as json.Marshal writes it, without
// reflection (transfer opens every sealed submission; encoding/json was a
// large share of its CPU time). It reads what json.Unmarshal would and
// refuses more: a repeated name, null for a string, a name no version 1
// payload has (FuzzReadPayload holds it to that). A payload of another
// version is reported as such whatever its names, as before.
func readPayload(plaintext []byte) (*Payload, error) {
	var p Payload
	seen := map[string]bool{}
	unknown := false
	r := jsonread.New(plaintext)
	err := r.Object(func(name []byte) error {
		if seen[string(name)] {
			return errPayloadShape
		}
		seen[string(name)] = true
		var err error
		switch string(name) {
		case "v":
			var v int64
			v, err = r.Int()
			p.Version = int(v)
			if int64(p.Version) != v {
				return errPayloadShape
			}
		case "submission_id":
			p.SubmissionID, err = r.String()
		case "form_id":
			p.FormID, err = r.String()
		case "key_id":
			p.KeyID, err = r.String()
		case "form_version":
			p.FormVersion, err = r.String()
		case "receipt":
			p.Receipt, err = r.String()
		case "submitted_at":
			p.SubmittedAt, err = r.String()
		case "correction_code_hash":
			p.CorrectionCodeHash, err = r.String()
		case "answers":
			var raw []byte
			raw, err = r.Raw()
			p.Answers = bytes.Clone(raw) // the plaintext is cleared after use
		case "corrects":
			if r.Null() {
				return nil
			}
			p.Corrects, err = readCorrection(r)
		default:
			unknown = true
			_, err = r.Raw()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	switch {
	case err != nil:
		return nil, err
	case unknown && p.Version == 1:
		return nil, errPayloadShape
	}
	return &p, nil
}

func readCorrection(r *jsonread.Reader) (*Correction, error) {
	c := &Correction{}
	seen := map[string]bool{}
	err := r.Object(func(name []byte) error {
		if seen[string(name)] {
			return errPayloadShape
		}
		seen[string(name)] = true
		var err error
		switch string(name) {
		case "receipt":
			c.Receipt, err = r.String()
		case "code_hash":
			c.CodeHash, err = r.String()
		default:
			return errPayloadShape
		}
		return err
	})
	return c, err
}

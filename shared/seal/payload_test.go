package seal

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// payloadSeeds are payloads as intake seals them, and not.
var payloadSeeds = []string{
	`{"v":1,"submission_id":"0b5c6f4e-7d7e-4a57-9f43-3f0c8b1f2a10","form_id":"new-patient","key_id":"0123456789abcdef","form_version":"1",` +
		`"receipt":"ABCD-EFGH-JKLM-NPQR-STUV-WXYZ","submitted_at":"2026-11-30T07:00:00.123Z","answers":{"a":[{"valueString":"x"}]},` +
		`"correction_code_hash":"ab","corrects":{"receipt":"ABCD-EFGH-JKLM-NPQR-STUV-WXY2","code_hash":"cd"}}`,
	`{"v":1,"answers":null,"corrects":null}`,
	`{"v":2,"future":true}`,
	`{"v":1,"future":true}`,
	`{"v":1,"V":2}`,
	`{"v":1.0}`,
	`{"v":1,"receipt":null}`,
	`{"v":1,"form_id":"a","form_id":"b"}`,
	`{"v":1,"corrects":{"receipt":"x","extra":1}}`,
	` {"v" : 1 , "answers" : [ 1 , "\u00e9" ] } `,
	`{"v":1}x`,
}

// FuzzReadPayload: whatever readPayload reads as a version 1 payload,
// json.Unmarshal reads the same.
func FuzzReadPayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readPayload(data)
		if err != nil || got.Version != 1 {
			return
		}
		var want Payload
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("readPayload accepted what json.Unmarshal refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("readPayload and json.Unmarshal differ on %q:\n got %#v\nwant %#v", data, *got, want)
		}
	})
}

// TestDecodePayloadReadsWhatIsSealed: a payload as json.Marshal writes it
// reads back unchanged; a payload of another version is reported as such
// whatever names it has; a name no version 1 payload has, a repeated name,
// and trailing data are refused.
func TestDecodePayloadReadsWhatIsSealed(t *testing.T) {
	t.Parallel()
	b := Binding{SubmissionID: "0b5c6f4e-7d7e-4a57-9f43-3f0c8b1f2a10", FormID: "new-patient", KeyID: "0123456789abcdef"}
	for _, p := range []Payload{
		{Version: 1, Binding: b, FormVersion: "1", Receipt: "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ", SubmittedAt: "2026-11-30T07:00:00Z",
			Answers: json.RawMessage(`{"a":[{"valueString":"<x> & \u2028"}]}`)},
		{Version: 1, Binding: b, Answers: json.RawMessage(`{}`), CorrectionCodeHash: "ab",
			Corrects: &Correction{Receipt: "ABCD-EFGH-JKLM-NPQR-STUV-WXY2", CodeHash: "cd"}},
	} {
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePayload(data, b)
		if err != nil {
			t.Fatalf("DecodePayload(%s): %v", data, err)
		}
		var want Payload
		if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("DecodePayload(%s) = %#v, want %#v", data, *got, want)
		}
	}
	if _, err := DecodePayload([]byte(`{"v":2,"future":{"x":1}}`), b); !errors.Is(err, ErrEnvelopeVersion) {
		t.Errorf("version 2 with a new name: %v, want ErrEnvelopeVersion", err)
	}
	for _, bad := range []string{`{"v":1,"future":1}`, `{"v":1,"receipt":"a","receipt":"b"}`, `{"v":1} {}`, `{"v":1,"receipt":null}`} {
		if _, err := DecodePayload([]byte(bad), Binding{}); err == nil || errors.Is(err, ErrEnvelopeVersion) || errors.Is(err, ErrBinding) {
			t.Errorf("DecodePayload(%s): %v, want a decode error", bad, err)
		}
	}
}

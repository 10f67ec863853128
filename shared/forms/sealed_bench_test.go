package forms

import (
	"encoding/json"
	"strings"
	"testing"
)

// sealedBenchAnswers are new-patient answers of about 1.1 KB sealed, as
// transfer's BenchmarkTransferPass moves them.
func sealedBenchAnswers(b *testing.B) (*Questionnaire, []byte) {
	q, ok := Builtin().Get("new-patient")
	if !ok {
		b.Fatal("no new-patient form")
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(newPatientSubmission), &raw); err != nil {
		b.Fatal(err)
	}
	raw["medications"] = mustMarshal(&testing.T{}, "Levothyroxine 50 microgram daily. "+strings.Repeat("x", 700))
	a, errs := q.Validate(raw)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	sealed, err := json.Marshal(a)
	if err != nil {
		b.Fatal(err)
	}
	return q, sealed
}

// BenchmarkValidateSealed is transfer's check of one sealed submission:
// decode the sealed answers, validate them.
func BenchmarkValidateSealed(b *testing.B) {
	q, sealed := sealedBenchAnswers(b)
	b.ReportAllocs()
	for b.Loop() {
		var a Answers
		if err := json.Unmarshal(sealed, &a); err != nil {
			b.Fatal(err)
		}
		if _, errs := q.ValidateSealed(a); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkValidateRoundTrip is the same check through a
// QuestionnaireResponse and Validate, as transfer did before.
func BenchmarkValidateRoundTrip(b *testing.B) {
	q, sealed := sealedBenchAnswers(b)
	b.ReportAllocs()
	for b.Loop() {
		var a Answers
		if err := json.Unmarshal(sealed, &a); err != nil {
			b.Fatal(err)
		}
		if _, ok := roundTripValidate(q, a); !ok {
			b.Fatal("rejected")
		}
	}
}

package transfer_test

import (
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
)

// TestPassQuarantinesAPayloadBoundToAnotherRow: rows MACed with the real row
// key and sealed to the right clinic key (what a compromised intake host can
// store) whose sealed binding disagrees with the row in one field each. The
// MAC and the envelope pass; the binding inside must refuse every one.
func TestPassQuarantinesAPayloadBoundToAnotherRow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(p *seal.Payload)
		reason string
	}{
		{"key id of another key", func(p *seal.Payload) { p.KeyID = other.Public.ID.String() }, transfer.ReasonBinding},
		{"key id empty", func(p *seal.Payload) { p.KeyID = "" }, transfer.ReasonBinding},
		{"another submission id", func(p *seal.Payload) { p.SubmissionID = newID(t) }, transfer.ReasonBinding},
		{"another form", func(p *seal.Payload) { p.FormID = "symptoms" }, transfer.ReasonBinding},
		{"another form version", func(p *seal.Payload) { p.FormVersion = "0.9" }, transfer.ReasonBinding},
		{"no payload version", func(p *seal.Payload) { p.Version = 0 }, transfer.ReasonEnvelopeVersion},
	}
	var good []*submitted
	victims := make([]string, len(cases))
	for i, c := range cases {
		good = append(good, f.submit("symptoms", symptomsAnswers, nil))
		id := newID(t)
		p := f.payload(id, "BIND-"+id[:8])
		version := p.FormVersion // the row keeps the real one
		c.change(&p)
		victims[i] = f.sealRaw(mustJSON(t, p), id, "new-patient", version).SubmissionID
	}
	good = append(good, f.submit("symptoms", symptomsAnswers, nil))

	sum := f.pass()
	if sum.Moved != len(good) || sum.Quarantined != len(cases) {
		t.Errorf("summary %+v, want %d moved and %d quarantined", sum, len(good), len(cases))
	}
	delivered, quarantine := f.clinicalRows(), f.quarantined()
	for _, s := range good {
		if _, ok := delivered[s.SubmissionID]; !ok {
			t.Errorf("good row seq %d was held up", s.seq)
		}
	}
	for i, c := range cases {
		if _, ok := delivered[victims[i]]; ok {
			t.Errorf("%s: delivered", c.name)
		}
		if got := quarantine[victims[i]]; got != c.reason {
			t.Errorf("%s: quarantine reason %q, want %q", c.name, got, c.reason)
		}
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
}

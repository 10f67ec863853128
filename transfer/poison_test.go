package transfer_test

import (
	"context"
	"strings"
	"testing"
)

// An erased submission (or one removed by retention) must not come back when
// its row is replayed from an old intake backup: its MAC and binding are still
// valid, so only the record of delivered ids stops it.
func TestPassNeverRedeliversAnErasedSubmission(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.submit("new-patient", newPatientAnswers, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("first pass %+v, want 1 moved", sum)
	}
	// What erase_submission deletes; the function itself also needs its
	// audit entry in the same transaction (migrations tests cover that).
	f.clinicalExec(`DELETE FROM submissions WHERE intake_id = $1::uuid`, s.SubmissionID)
	if got := f.clinicalRows(); len(got) != 0 {
		t.Fatalf("erasure left %d rows", len(got))
	}
	f.insert(s.SealedRow, s.receipt)
	sum := f.pass()
	if sum.Moved != 0 || sum.Duplicates != 1 {
		t.Fatalf("replay after erasure %+v, want 0 moved, 1 duplicate", sum)
	}
	if got := f.clinicalRows(); len(got) != 0 {
		t.Fatalf("the erased submission came back (%d rows)", len(got))
	}
	if n := f.intakeCount(); n != 0 {
		t.Fatalf("the replayed row stayed in intake (%d rows)", n)
	}
}

// A payload only a row-key holder can make (a compromised intake host) whose
// content the clinical database would reject (a NUL byte, an absurd receipt)
// is quarantined: it must not fail the batch and block the rows behind it.
func TestPassQuarantinesPayloadsClinicalWouldReject(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bad := map[string]string{
		"NUL in the receipt":               "ABCD\x00EFGH",
		"receipt of 10,000 bytes":          strings.Repeat("A", 10_000),
		"receipt not of intake's alphabet": "abcd-efgh-ijkl-mnop-qrst-uvwx",
	}
	var poisoned []*submitted
	for _, receipt := range bad {
		id := newID(t)
		poisoned = append(poisoned, f.sealRaw(mustJSON(t, f.payload(id, receipt)), id, "new-patient", "1"))
	}
	// A NUL inside an answer that form validation lets through (an
	// attachment's content type parameter).
	id := newID(t)
	payload := f.payload(id, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
	payload.FormID, payload.FormVersion = "symptoms", "1"
	payload.Answers = []byte(`{"complaint":[{"valueString":"Cough"}],"severity":[{"valueCoding":{"system":"http://snomed.info/sct","code":"6736007"}}],` +
		`"documents":[{"valueAttachment":{"contentType":"text/plain; a=\"\u0000\"","data":"aGVsbG8="}}]}`)
	poisoned = append(poisoned, f.sealRaw(mustJSON(t, payload), id, "symptoms", "1"))
	good := f.submit("new-patient", newPatientAnswers, nil)
	sum := f.pass()
	if sum.Moved != 1 || sum.Quarantined != len(poisoned) {
		t.Fatalf("pass %+v, want 1 moved and %d quarantined", sum, len(poisoned))
	}
	if _, ok := f.clinicalRows()[good.SubmissionID]; !ok {
		t.Fatal("the good row behind the poisoned ones was not delivered")
	}
	q := f.quarantined()
	for _, p := range poisoned {
		if q[p.SubmissionID] != "payload" {
			t.Errorf("poisoned row quarantined as %q, want payload", q[p.SubmissionID])
		}
	}
}

func (f *fixture) clinicalExec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.clinicalOwner.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// Expiry deletes rows whose count only clinical's operations log keeps: with
// clinical unreachable nothing may be expired, or the count would be lost.
func TestPassExpiresNothingWhileClinicalIsDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.submit("new-patient", newPatientAnswers, nil)
	f.ownerExec(`UPDATE submissions SET received_at = received_at - interval '10000 hours' WHERE id = $1::uuid`, s.SubmissionID)
	down := newPool(t, f.clinicalDB, nil)
	down.Close()
	f.mover.Clinical = down
	if _, err := f.mover.Pass(context.Background()); err == nil || !strings.Contains(err.Error(), "clinical database") {
		t.Fatalf("pass with clinical down: %v, want an error naming the clinical database", err)
	}
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("intake holds %d rows, want the stale row kept until its expiry can be recorded", n)
	}
}

package transfer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
)

// TestEndToEndReceiptAloneHidesNothing: through the real intake server,
// `transfer once` and `clinical export`, a correction that names a receipt
// without its correction code (or with a wrong one) is delivered as a
// submission of its own, unlinked, and the genuine record stays current and
// in the export; one with the code is linked and still hides nothing. The
// code never reaches a log, the intake database or an export; stage 2 holds
// only its hash. Before correction codes, a receipt alone superseded the
// genuine record and dropped it from the export.
func TestEndToEndReceiptAloneHidesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	api := s.intakeURL + "/api/v1/forms/new-patient/submissions"
	genuine := map[string]any{}
	for k, v := range secretAnswers {
		genuine[k] = v
	}
	genuine["allergy-details"] = "Penicillin: anaphylaxis"
	status, body := postJSON(t, api, genuine)
	receipt, _ := body["receipt"].(string)
	code, _ := body["correction_code"].(string)
	if status != http.StatusCreated || receipt == "" || code == "" {
		t.Fatalf("submit: %d %v", status, body)
	}
	forged := map[string]any{}
	for k, v := range secretAnswers {
		forged[k] = v
	}
	forged["allergies"] = false
	delete(forged, "allergy-details")

	// A receipt alone: refused at intake, by field.
	forged["$corrects"] = map[string]string{"receipt": receipt}
	if status, body := postJSON(t, api, forged); status != http.StatusUnprocessableEntity {
		t.Fatalf("receipt without code: %d %v", status, body)
	}
	// A receipt with a made-up code: intake cannot tell, transfer can.
	guess, _ := seal.NewCorrectionCode()
	forged["$corrects"] = map[string]string{"receipt": receipt, "correction_code": guess}
	status, body = postJSON(t, api, forged)
	forgedReceipt, _ := body["receipt"].(string)
	if status != http.StatusCreated {
		t.Fatalf("receipt with a wrong code: %d %v", status, body)
	}
	// The patient's own correction.
	forged["$corrects"] = map[string]string{"receipt": receipt, "correction_code": code}
	status, body = postJSON(t, api, forged)
	fixReceipt, _ := body["receipt"].(string)
	if status != http.StatusCreated {
		t.Fatalf("correction: %d %v", status, body)
	}

	if err := s.transfer.exec(ctx, "once"); err != nil {
		t.Fatalf("transfer once: %v\n%s", err, s.transfer.stderr.String())
	}
	var sum transfer.Summary
	if err := json.Unmarshal([]byte(s.transfer.stdout.String()), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Moved != 3 || sum.CorrectionsLinked != 1 || sum.Superseded != 0 {
		t.Fatalf("summary %+v, want 3 moved, 1 linked, none superseded", sum)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM submissions WHERE superseded_by IS NOT NULL`); n != 0 {
		t.Fatalf("%d submissions superseded, want none", n)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM submissions c JOIN submissions o ON o.id = c.corrects_id
WHERE c.receipt = '`+fixReceipt+`' AND o.receipt = '`+receipt+`' AND c.correction_verified`); n != 1 {
		t.Errorf("the correction with the code is not linked to the original")
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM submissions WHERE receipt = '`+forgedReceipt+`'
AND corrects_receipt = '`+receipt+`' AND corrects_id IS NULL AND NOT correction_verified`); n != 1 {
		t.Errorf("the wrong-code correction is not delivered as an unverified claim")
	}

	if err := s.clinical.exec(ctx, "export", "--format", "ndjson"); err != nil {
		t.Fatalf("export: %v\n%s", err, s.clinical.stderr.String())
	}
	export := s.clinical.stdout.String()
	if n := len(strings.Split(strings.TrimSpace(export), "\n")); n != 3 {
		t.Errorf("export has %d lines, want all 3", n)
	}
	if !strings.Contains(export, "Penicillin: anaphylaxis") || !strings.Contains(export, receipt) {
		t.Errorf("the genuine record is missing from the export")
	}
	hash := seal.HashCorrectionCode(code)
	secrets := []string{code, strings.ReplaceAll(code, "-", ""), guess, hash}
	dump, err := exec.Command("pg_dump", "--data-only", s.intakeDB).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump intake: %v", err)
	}
	clinicalDump, err := exec.Command("pg_dump", "--data-only", s.clinicalDB).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump clinical: %v", err)
	}
	for _, secret := range secrets {
		if strings.Contains(export, secret) {
			t.Errorf("the export holds a correction code or its hash")
		}
		if strings.Contains(string(dump), secret) {
			t.Errorf("the intake database holds a correction code or its hash")
		}
		for name, p := range map[string]*program{"intake": s.intake, "transfer": s.transfer, "clinical": s.clinical} {
			if strings.Contains(p.stderr.String(), secret) {
				t.Errorf("the %s log holds a correction code or its hash", name)
			}
		}
	}
	// Stage 2 holds the code as its hash only (pg_dump writes bytea as hex).
	if !strings.Contains(string(clinicalDump), hash) || strings.Contains(string(clinicalDump), code) ||
		strings.Contains(string(clinicalDump), strings.ReplaceAll(code, "-", "")) {
		t.Errorf("stage 2 should hold the code's hash and never the code")
	}
}

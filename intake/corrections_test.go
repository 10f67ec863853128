package intake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/seal"
)

// lastPayload opens the most recent stored row.
func (ti *testIntake) lastPayload(t *testing.T) *seal.Payload {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ti.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var row seal.Row
	if err := conn.QueryRow(ctx, `SELECT id::text, form_id, key_id, envelope FROM submissions ORDER BY seq DESC LIMIT 1`).
		Scan(&row.SubmissionID, &row.FormID, &row.KeyID, &row.Envelope); err != nil {
		t.Fatal(err)
	}
	env, err := seal.ParseEnvelope(row.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ti.key.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	p, err := seal.DecodePayload(plain, seal.Binding{SubmissionID: row.SubmissionID, FormID: row.FormID, KeyID: row.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var codeRE = regexp.MustCompile(`^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){6}$`)

// withCorrects is validAnswers as JSON with a "$corrects" value.
func withCorrects(v any) string {
	a := validAnswers()
	a["$corrects"] = v
	b, _ := json.Marshal(a)
	return string(b)
}

// TestCorrectionCodeAndClaimAreSealed: every accepted submission gets a
// correction code, returned once and sealed only as its hash; a correction
// names a receipt and presents a code, sealed as the receipt and the code's
// hash; a claim missing either is refused by field, without echoing it.
func TestCorrectionCodeAndClaimAreSealed(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	api := "/api/v1/forms/new-patient/submissions"
	post := func(ct, body string) (response, map[string]string) {
		t.Helper()
		resp := ti.do(t, request{method: "POST", path: api, contentType: ct, body: body})
		var out map[string]string
		json.Unmarshal(resp.body, &out)
		return resp, out
	}

	resp, out := post("application/json", answersJSON(nil))
	if resp.status != http.StatusCreated || !receiptRE.MatchString(out["receipt"]) || !codeRE.MatchString(out["correction_code"]) {
		t.Fatalf("submit: %d %s", resp.status, resp.body)
	}
	if cc := resp.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("201 with a correction code has Cache-Control %q", cc)
	}
	receipt, code := out["receipt"], out["correction_code"]
	p := ti.lastPayload(t)
	if p.CorrectionCodeHash != seal.HashCorrectionCode(code) || p.Corrects != nil || p.Receipt != receipt {
		t.Fatalf("sealed %+v, want the hash of the code and no correction", p)
	}
	if ti.rows(t) != 1 {
		t.Fatal("want one row")
	}

	// A correction, receipt and code typed loosely.
	typedReceipt := strings.ToLower(strings.ReplaceAll(receipt, "-", ""))
	typedCode := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	resp, out = post("application/json", withCorrects(map[string]string{"receipt": typedReceipt, "correction_code": typedCode}))
	if resp.status != http.StatusCreated || out["correction_code"] == code || !codeRE.MatchString(out["correction_code"]) {
		t.Fatalf("correction: %d %s", resp.status, resp.body)
	}
	p = ti.lastPayload(t)
	if p.Corrects == nil || *p.Corrects != (seal.Correction{Receipt: receipt, CodeHash: seal.HashCorrectionCode(code)}) ||
		p.CorrectionCodeHash != seal.HashCorrectionCode(out["correction_code"]) || strings.Contains(string(p.Answers), "corrects") {
		t.Fatalf("sealed correction %+v, answers %s", p.Corrects, p.Answers)
	}

	// The same as a FHIR QuestionnaireResponse extension.
	var qr map[string]any
	json.Unmarshal([]byte(questionnaireResponseJSON(validAnswers(), "")), &qr)
	qr["extension"] = []any{map[string]any{"url": intake.CorrectsExtensionURL, "extension": []any{
		map[string]any{"url": "receipt", "valueString": receipt},
		map[string]any{"url": "correctionCode", "valueString": code},
	}}}
	b, _ := json.Marshal(qr)
	if resp, _ = post("application/fhir+json", string(b)); resp.status != http.StatusCreated {
		t.Fatalf("QuestionnaireResponse correction: %d %s", resp.status, resp.body)
	}
	if p = ti.lastPayload(t); p.Corrects == nil || p.Corrects.Receipt != receipt || p.Corrects.CodeHash != seal.HashCorrectionCode(code) {
		t.Fatalf("sealed QuestionnaireResponse correction %+v", p.Corrects)
	}

	// Incomplete or malformed claims: 422 naming the field, nothing stored.
	const oddCode = "ZZZZ-ZZZZ-ZZZZ"
	for name, c := range map[string]struct {
		body  string
		field string
	}{
		"receipt alone":  {withCorrects(map[string]string{"receipt": receipt}), "$corrects.correction_code"},
		"code alone":     {withCorrects(map[string]string{"correction_code": code}), "$corrects.receipt"},
		"short code":     {withCorrects(map[string]string{"receipt": receipt, "correction_code": oddCode}), "$corrects.correction_code"},
		"not a receipt":  {withCorrects(map[string]string{"receipt": "R-" + oddCode, "correction_code": code}), "$corrects.receipt"},
		"not an object":  {withCorrects(receipt), "$corrects"},
		"empty object":   {withCorrects(map[string]string{}), "$corrects"},
		"ordinary field": {answersJSON(map[string]any{"corrects-receipt-x": receipt}), "corrects-receipt-x"},
	} {
		resp, _ := post("application/json", c.body)
		if resp.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", name, resp.status)
			continue
		}
		checkFieldErrors(t, resp.body, []string{c.field})
		for _, secret := range []string{code, oddCode} {
			if strings.Contains(string(resp.body), secret) {
				t.Errorf("%s: the error echoes what was typed", name)
			}
		}
	}
	if n := ti.rows(t); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	for _, secret := range []string{code, receipt, seal.HashCorrectionCode(code)} {
		if strings.Contains(ti.logs.String(), secret) {
			t.Errorf("the intake log holds a receipt, correction code or its hash")
		}
	}
}

// TestFormCorrectionFieldset: the HTML form has the optional correction
// fieldset; the receipt page shows the correction code once; a receipt
// without its code is a field error that keeps the receipt (never the code).
func TestFormCorrectionFieldset(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	_, page := ti.openForm(t, "/forms/new-patient")
	for _, want := range []string{`name="_corrects_receipt"`, `name="_corrects_code"`, "This corrects an earlier submission"} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("form page lacks %s", want)
		}
	}
	send := func(fields map[string]string) response {
		t.Helper()
		s, _ := ti.openForm(t, "/forms/new-patient") // a rendered form stores at most once
		return ti.do(t, request{method: "POST", path: "/forms/new-patient", contentType: "application/x-www-form-urlencoded",
			body: s.formBody(withFields(validForm(), fields)), header: s.header()})
	}
	resp := ti.followReceipt(t, send(nil))
	m := codeHTML.FindSubmatch(resp.body)
	r := receiptHTML.FindSubmatch(resp.body)
	if m == nil || r == nil || !codeRE.Match(m[1]) {
		t.Fatalf("receipt page shows no correction code:\n%s", resp.body)
	}
	code, receipt := string(m[1]), string(r[1])
	if ti.lastPayload(t).CorrectionCodeHash != seal.HashCorrectionCode(code) {
		t.Fatal("the sealed hash is not the hash of the code shown")
	}

	resp = send(map[string]string{"_corrects_receipt": receipt})
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="corrects-code-error"`) ||
		!strings.Contains(string(resp.body), `href="#corrects-code"`) || !strings.Contains(string(resp.body), `value="`+receipt+`"`) {
		t.Fatalf("receipt without code: %d\n%s", resp.status, resp.body)
	}
	resp = send(map[string]string{"_corrects_receipt": receipt, "_corrects_code": "nope"})
	if resp.status != http.StatusUnprocessableEntity || strings.Contains(string(resp.body), `value="nope"`) {
		t.Fatalf("bad code: %d (or the code is shown again)", resp.status)
	}
	if n := ti.rows(t); n != 1 {
		t.Fatalf("%d rows after refused corrections, want 1", n)
	}
	resp = ti.followReceipt(t, send(map[string]string{"_corrects_receipt": receipt, "_corrects_code": code}))
	if resp.status != http.StatusOK || !strings.Contains(string(resp.body), "until a clinician accepts") {
		t.Fatalf("correction: %d\n%s", resp.status, resp.body)
	}
	p := ti.lastPayload(t)
	if p.Corrects == nil || p.Corrects.Receipt != receipt || p.Corrects.CodeHash != seal.HashCorrectionCode(code) {
		t.Fatalf("sealed correction %+v", p.Corrects)
	}
	if strings.Contains(ti.logs.String(), code) {
		t.Error("the intake log holds a correction code")
	}
}

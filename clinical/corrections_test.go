package clinical

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
)

// link makes correction a verified correction of original, as transfer does
// when the correction code's hash matched.
func (a *app) link(tb testing.TB, correction, original sub) {
	tb.Helper()
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET corrects_id = $2, correction_verified = true,
  corrects_receipt = (SELECT receipt FROM submissions WHERE id = $2) WHERE id = $1`, correction.id, original.id); err != nil {
		tb.Fatal(err)
	}
}

// superseder is the intake id of the submission that supersedes s, "" when
// none does, or "an erased row" when superseded_by points at nothing.
func (a *app) superseder(tb testing.TB, s sub) string {
	tb.Helper()
	var by string
	var consistent bool
	if err := a.owner.QueryRow(context.Background(), `SELECT coalesce(n.intake_id::text, CASE WHEN s.superseded_by IS NULL THEN '' ELSE 'an erased row' END),
  (s.superseded_by IS NULL) = (s.superseded_at IS NULL)
FROM submissions s LEFT JOIN submissions n ON n.id = s.superseded_by WHERE s.id = $1`, s.id).Scan(&by, &consistent); err != nil {
		tb.Fatal(err)
	}
	if !consistent {
		tb.Errorf("submission %d: superseded_by and superseded_at disagree", s.id)
	}
	return by
}

func allergic(family, detail string) forms.Answers {
	a := patient(family, "Ada", "")
	a["allergies"] = []forms.Value{{ValueBoolean: ptr(true)}}
	a["allergy-details"] = []forms.Value{str(detail)}
	return a
}

func ptr[T any](v T) *T { return &v }

// TestAcceptingACorrectionNeedsAClinicianAndIsAudited: a verified
// correction and the submission it corrects are both current and linked
// both ways, with the answers that differ side by side, until a clinician
// accepts it; a viewer cannot. Acceptance supersedes the original, carries
// its status and notes over, and commits with its audit entry. A claim
// without the code (unverified) can never be accepted.
func TestAcceptingACorrectionNeedsAClinicianAndIsAudited(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	viewer := a.newUser(t, "view@clinic.example", true, true, RoleViewer)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	orig := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis"), day, ReviewInReview)
	fix := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis; latex: rash"), day.Add(time.Hour), ReviewNew)
	forged := a.insert(t, "new-patient", patient("Doe", "Ada", ""), day.Add(2*time.Hour), ReviewNew)
	a.link(t, fix, orig)
	if _, err := a.owner.Exec(t.Context(), `UPDATE submissions SET corrects_receipt = $2 WHERE id = $1`, forged.id, orig.receipt); err != nil {
		t.Fatal(err)
	}
	dc := a.client()
	dc.login(t, doc)
	if rec := dc.post("/submissions/"+orig.intakeID+"/notes", url.Values{"body": {"Called: confirmed the reaction"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("note: %d", rec.Code)
	}
	vc := a.client()
	vc.login(t, viewer)

	// Before acceptance: everything current, linked both ways.
	list := vc.get("/submissions").Body.String()
	for _, s := range []sub{orig, fix, forged} {
		if !strings.Contains(list, s.intakeID) {
			t.Errorf("default list lacks submission %d before acceptance", s.id)
		}
	}
	if !strings.Contains(list, "(correction awaiting acceptance)") || !strings.Contains(list, "(correction not verified)") {
		t.Errorf("the list does not mark the pending correction and the unverified claim")
	}
	page := vc.get("/submissions/" + orig.intakeID).Body.String()
	if !strings.Contains(page, `id="corrections"`) || !strings.Contains(page, "/submissions/"+fix.intakeID) ||
		!strings.Contains(page, `id="unverified"`) || !strings.Contains(page, "/submissions/"+forged.intakeID) {
		t.Errorf("the original's page does not link its correction and the unverified claim:\n%s", page)
	}
	page = vc.get("/submissions/" + fix.intakeID).Body.String()
	if !strings.Contains(page, `id="correction-link"`) || !strings.Contains(page, "/submissions/"+orig.intakeID) ||
		!strings.Contains(page, `id="changes"`) || !strings.Contains(page, "latex: rash") || strings.Contains(page, `id="accept-correction"`) {
		t.Errorf("the correction's page (viewer): link, changes, no accept button expected:\n%s", page)
	}
	if i := strings.Index(page, `id="changes"`); i >= 0 {
		table := page[i : i+strings.Index(page[i:], "</table>")]
		if !strings.Contains(table, "Penicillin: anaphylaxis") || !strings.Contains(table, "latex: rash") || strings.Contains(table, "Doe") {
			t.Errorf("the changes table should hold the differing answers side by side and nothing else:\n%s", table)
		}
	}
	if page := vc.get("/submissions/" + forged.intakeID).Body.String(); !strings.Contains(page, `id="correction-unverified"`) {
		t.Errorf("the unverified claim is not flagged")
	}

	// A viewer may not accept: 403, audited, nothing changed.
	denied := a.countAudit(t, "access.denied")
	if rec := vc.post("/submissions/"+fix.intakeID+"/accept-correction", nil); rec.Code != http.StatusForbidden {
		t.Fatalf("viewer accept: %d", rec.Code)
	}
	if a.countAudit(t, "access.denied") != denied+1 || a.superseder(t, orig) != "" {
		t.Fatalf("viewer's attempt: not audited as denied, or the original was superseded")
	}
	// An unverified claim cannot be accepted.
	if rec := dc.post("/submissions/"+forged.intakeID+"/accept-correction", nil); rec.Code != http.StatusConflict {
		t.Fatalf("accepting an unverified claim: %d", rec.Code)
	}
	if a.superseder(t, orig) != "" || a.countAudit(t, "correction.accept") != 0 {
		t.Fatal("the unverified claim superseded the original, or was audited as accepted")
	}

	page = dc.get("/submissions/" + fix.intakeID).Body.String()
	if !strings.Contains(page, `id="accept-correction"`) {
		t.Fatalf("no accept button for the clinician")
	}
	if rec := dc.post("/submissions/"+fix.intakeID+"/accept-correction", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("accept: %d %s", rec.Code, rec.Body.String())
	}
	if a.superseder(t, orig) != fix.intakeID {
		t.Fatal("the accepted correction does not supersede the original")
	}
	var status string
	var notes int
	if err := a.owner.QueryRow(t.Context(), `SELECT status, (SELECT count(*) FROM submission_notes WHERE submission_id = $1 AND body = 'Called: confirmed the reaction')
FROM submissions WHERE id = $1`, fix.id).Scan(&status, &notes); err != nil {
		t.Fatal(err)
	}
	if status != ReviewInReview || notes != 1 {
		t.Errorf("carried over: status %q, %d notes; want in_review and the note", status, notes)
	}
	var detail string
	if err := a.owner.QueryRow(t.Context(), `SELECT detail FROM audit_log WHERE action = 'correction.accept' AND actor = $1 AND target = $2`,
		"staff:"+itoa(doc.id), "submission:"+itoa(fix.id)).Scan(&detail); err != nil {
		t.Fatalf("no audit entry for the acceptance: %v", err)
	}
	var d map[string]any
	json.Unmarshal([]byte(detail), &d)
	if d["supersedes"] != "submission:"+itoa(orig.id) || d["status"] != ReviewInReview || d["notes_carried"] != float64(1) {
		t.Errorf("audit detail %s", detail)
	}
	list = dc.get("/submissions").Body.String()
	if strings.Contains(list, orig.intakeID) || !strings.Contains(list, fix.intakeID) {
		t.Errorf("after acceptance the default list should show the correction, not the original")
	}
	if rec := dc.post("/submissions/"+fix.intakeID+"/accept-correction", nil); rec.Code != http.StatusConflict || a.countAudit(t, "correction.accept") != 1 {
		t.Errorf("accepting twice: %d", rec.Code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestHeldBackCorrectionCannotReplaceANewerOne: an intake database owner
// who holds a correction back and lets it through after a newer correction
// was accepted cannot make the older one current: it was sealed before the
// accepted version, so accepting it is refused and the newer stays current.
func TestHeldBackCorrectionCannotReplaceANewerOne(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	orig := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis"), day, ReviewNew)
	newer := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis; latex"), day.Add(2*time.Hour), ReviewNew)
	a.link(t, newer, orig)
	c := a.client()
	c.login(t, doc)
	if rec := c.post("/submissions/"+newer.intakeID+"/accept-correction", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("accept newer: %d", rec.Code)
	}
	// Delivered late, sealed in between.
	held := a.insert(t, "new-patient", patient("Doe", "Ada", ""), day.Add(time.Hour), ReviewNew)
	a.link(t, held, orig)
	if rec := c.post("/submissions/"+held.intakeID+"/accept-correction", nil); rec.Code != http.StatusConflict {
		t.Fatalf("accepting the held-back correction: %d, want 409", rec.Code)
	}
	if a.superseder(t, orig) != newer.intakeID || a.superseder(t, newer) != "" || a.superseder(t, held) != "" {
		t.Fatalf("the held-back correction changed the chain")
	}
	// A correction sealed after the accepted one replaces it in turn.
	latest := a.insert(t, "new-patient", allergic("Doe", "Penicillin, latex, wasps"), day.Add(3*time.Hour), ReviewNew)
	a.link(t, latest, orig)
	if rec := c.post("/submissions/"+latest.intakeID+"/accept-correction", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("accept latest: %d", rec.Code)
	}
	if a.superseder(t, newer) != latest.intakeID || a.superseder(t, orig) != newer.intakeID {
		t.Fatal("the latest correction does not supersede the current version")
	}
}

// TestErasingACorrectionRestoresTheOriginal: erasing an accepted correction
// makes the submission it superseded current again, in the default list and
// in exports (it used to keep pointing at the erased row and vanish);
// erasing an original leaves its correction visible.
func TestErasingACorrectionRestoresTheOriginal(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	admin := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	orig := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis"), day, ReviewNew)
	fix := a.insert(t, "new-patient", patient("Doe", "Ada", ""), day.Add(time.Hour), ReviewNew)
	a.link(t, fix, orig)
	c := a.client()
	c.login(t, doc)
	if rec := c.post("/submissions/"+fix.intakeID+"/accept-correction", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("accept: %d", rec.Code)
	}
	ac := a.client()
	ac.login(t, admin)
	if rec := ac.post("/admin/erase", url.Values{"receipt": {fix.receipt}, "confirm": {"yes"}}); rec.Code != http.StatusOK {
		t.Fatalf("erase: %d %s", rec.Code, rec.Body.String())
	}
	if a.superseder(t, orig) != "" {
		t.Fatal("the original still points at the erased correction")
	}
	if list := c.get("/submissions").Body.String(); !strings.Contains(list, orig.intakeID) {
		t.Error("the original is missing from the default list after its correction was erased")
	}
	rec := c.export(url.Values{"format": {"ndjson"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Penicillin: anaphylaxis") || strings.Contains(rec.Body.String(), `"amended"`) {
		t.Errorf("export after erasing the correction: %d\n%s", rec.Code, rec.Body.String())
	}

	// Erasing an original leaves its (pending) correction current and says so.
	orig2 := a.insert(t, "new-patient", allergic("Roe", "Aspirin"), day, ReviewNew)
	fix2 := a.insert(t, "new-patient", patient("Roe", "Ada", ""), day.Add(time.Hour), ReviewNew)
	a.link(t, fix2, orig2)
	if rec := ac.post("/admin/erase", url.Values{"receipt": {orig2.receipt}, "confirm": {"yes"}}); rec.Code != http.StatusOK {
		t.Fatalf("erase original: %d", rec.Code)
	}
	if list := c.get("/submissions").Body.String(); !strings.Contains(list, fix2.intakeID) {
		t.Error("the correction vanished with its original")
	}
	if page := c.get("/submissions/" + fix2.intakeID).Body.String(); !strings.Contains(page, "erased since") || strings.Contains(page, `id="accept-correction"`) {
		t.Errorf("the correction of an erased original:\n%s", page)
	}
}

// TestCorrectionCodeHashesNeverShown: no page, for any role, and no export
// shows a correction code's hash (stage 2 keeps it for transfer only).
func TestCorrectionCodeHashesNeverShown(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	viewer := a.newUser(t, "view@clinic.example", true, true, RoleViewer)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	orig := a.insert(t, "new-patient", allergic("Doe", "Penicillin: anaphylaxis"), day, ReviewNew)
	fix := a.insert(t, "new-patient", patient("Doe", "Ada", ""), day.Add(time.Hour), ReviewNew)
	a.link(t, fix, orig)
	h1, h2 := sha256.Sum256([]byte("code one")), sha256.Sum256([]byte("code two"))
	if _, err := a.owner.Exec(t.Context(), `INSERT INTO correction_codes (submission_id, code_hash, corrects_code_hash)
VALUES ($1, $3, NULL), ($2, $4, $3)`, orig.id, fix.id, h1[:], h2[:]); err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, u := range []*staffUser{doc, viewer} {
		c := a.client()
		c.login(t, u)
		for _, p := range []string{"/submissions", "/submissions/" + orig.intakeID, "/submissions/" + fix.intakeID} {
			shown = append(shown, c.get(p).Body.String())
		}
		if u == doc {
			for _, f := range []string{"csv", "ndjson"} {
				shown = append(shown, c.export(url.Values{"format": {f}, "superseded": {"1"}}).Body.String())
			}
		}
	}
	for _, h := range [][32]byte{h1, h2} {
		for _, enc := range []string{hex.EncodeToString(h[:]), strings.ToUpper(hex.EncodeToString(h[:])),
			base64.StdEncoding.EncodeToString(h[:]), base64.RawURLEncoding.EncodeToString(h[:])} {
			for _, s := range shown {
				if strings.Contains(s, enc) {
					t.Fatalf("a page or export shows a correction code hash")
				}
			}
		}
	}
}

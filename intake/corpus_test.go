package intake_test

import (
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
)

// TestCorpusForms serves every public Questionnaire of the corpus: each
// answerable item is on the HTML page, and a complete answer set is accepted
// as JSON, as a FHIR QuestionnaireResponse naming the form's canonical, and
// from the HTML form.
func TestCorpusForms(t *testing.T) {
	t.Parallel()
	reg, err := forms.LoadDirWith("../shared/forms/testdata/corpus", forms.LoadOptions{BaseURL: formstest.CorpusBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	ti := newTestIntakeWith(t, func(c *intake.Config) {
		c.Forms = reg
		c.AttachmentTypes = []string{"image/png", "application/pdf", "text/plain"}
		c.MaxBody = 4 << 20 // the largest corpus form's full response
	})
	for _, q := range reg.List() {
		t.Run(q.ID, func(t *testing.T) {
			sample, err := formstest.Sample(q)
			if err != nil {
				t.Fatal(err)
			}
			// HTML: every question the patient answers has a field named
			// by its linkId, within the first instance of a repeating
			// group by that instance (a file input for attachments); read-only and
			// calculated items are shown by their label.
			s, page := ti.openForm(t, "/forms/"+q.ID)
			body := string(page.body)
			for _, it := range q.Questions() {
				switch {
				case it.Hidden:
				case !it.PatientAnswers():
					if !strings.Contains(body, html.EscapeString(it.Label)) {
						t.Errorf("read-only item %q: label not on the page", it.LinkID)
					}
				case !strings.Contains(body, `name="`+html.EscapeString(formstest.FirstField(it))+`"`):
					t.Errorf("item %q has no field on the page", it.LinkID)
				}
			}

			// JSON.
			b, _ := json.Marshal(formstest.RawJSON(sample))
			resp := ti.do(t, request{method: "POST", path: "/api/v1/forms/" + q.ID + "/submissions", contentType: "application/json", body: string(b)})
			if resp.status != http.StatusCreated {
				t.Fatalf("JSON: status %d: %s", resp.status, resp.body)
			}

			// FHIR, naming the canonical with and without the version.
			answers, errs := q.Validate(formstest.RawJSON(sample))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			canonical := q.Canonical(q.FormVersion())
			for _, c := range []string{canonical, q.CanonicalURL()} {
				qr, _ := json.Marshal(map[string]any{"resourceType": "QuestionnaireResponse", "status": "completed",
					"questionnaire": c, "item": q.ResponseItems(answers)})
				resp = ti.do(t, request{method: "POST", path: "/api/v1/forms/" + q.ID + "/submissions", contentType: "application/fhir+json", body: string(qr)})
				if resp.status != http.StatusCreated {
					t.Fatalf("FHIR naming %s: status %d: %s", c, resp.status, resp.body)
				}
			}

			// HTML form.
			fields := formstest.FormValues(sample)
			var files []filePart
			for id, a := range sample {
				if a.File != nil {
					files = append(files, filePart{field: id, name: "scan.png", data: a.File})
				}
			}
			var r request
			if len(files) > 0 {
				mb, ct := multipartBody(t, s, fields, files...)
				r = request{method: "POST", path: "/forms/" + q.ID, contentType: ct, body: mb, header: s.header()}
			} else {
				r = request{method: "POST", path: "/forms/" + q.ID, contentType: formType, body: s.formBody(fields), header: s.header()}
			}
			resp = ti.followReceipt(t, ti.do(t, r))
			if resp.status != http.StatusOK || !receiptHTML.Match(resp.body) {
				t.Fatalf("HTML: status %d: %.2000s", resp.status, resp.body)
			}
		})
	}
}

// TestCorpusRendering checks what the issue found missing on the page: the
// unit of a measurement, checkboxes for "select all that apply", and the
// format hint.
func TestCorpusRendering(t *testing.T) {
	t.Parallel()
	reg, err := forms.LoadDirWith("../shared/forms/testdata/corpus", forms.LoadOptions{BaseURL: formstest.CorpusBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	ti := newTestIntakeWith(t, func(c *intake.Config) { c.Forms = reg })
	_, page := ti.openForm(t, "/forms/lforms-weight-height")
	if !strings.Contains(string(page.body), `<span class="unit">[in_i]</span>`) && !strings.Contains(string(page.body), `<span class="unit">inches</span>`) {
		t.Errorf("the body height box does not show its unit (inches)")
	}
	_, page = ti.openForm(t, "/forms/android-multi-select")
	q, _ := reg.Get("android-multi-select")
	for _, it := range q.Questions() {
		if it.Repeats && len(it.Options) > 0 && !strings.Contains(string(page.body), `type="checkbox" id="`) {
			t.Errorf("repeating choice %q is not drawn as checkboxes", it.LinkID)
		}
	}
	_, page = ti.openForm(t, "/forms/android-quantity")
	if !strings.Contains(string(page.body), `inputmode="decimal"`) {
		t.Error("quantity item has no number box")
	}
}

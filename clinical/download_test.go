package clinical

import (
	"net/http"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestAttachmentSavedUnderDetectedType: a downloaded attachment is saved as
// attachment-N with the extension of its detected type, never under the
// name the patient gave it (scan.html, xray.svg, lab-report.bat, or one
// with a right-to-left override that displays as .pdf). The title stays
// display text on the page.
func TestAttachmentSavedUnderDetectedType(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	att := func(ct, title string) forms.Value {
		return forms.Value{ValueAttachment: &forms.Attachment{ContentType: ct, Data: []byte("data"), Title: title}}
	}
	s := a.insert(t, "symptoms", forms.Answers{"complaint": {str("Rash")}, "documents": {
		att("text/plain", "scan.html"),
		att("image/svg+xml", "xray.svg"),
		att("application/pdf", "lab-report.bat"),
		att("application/pdf", "results_\u202efdp.html"),
		att("image/jpeg", "photo"),
	}}, a.clock.now(), ReviewNew)
	c := a.client()
	c.login(t, doc)
	for n, want := range []string{
		"attachment; filename=attachment-1.txt",
		"attachment; filename=attachment-2.bin",
		"attachment; filename=attachment-3.pdf",
		"attachment; filename=attachment-4.pdf",
		"attachment; filename=attachment-5.jpg",
	} {
		dl := c.get("/submissions/" + s.intakeID + "/attachments/documents/" + string(rune('0'+n)))
		if got := dl.Header().Get("Content-Disposition"); dl.Code != http.StatusOK || got != want {
			t.Errorf("attachment %d: %d %q, want %q", n, dl.Code, got, want)
		}
	}
}

package intake_test

import (
	"net/http"
	"testing"
)

// TestAttachmentPlainTextRefusesMarkup: text that a browser or viewer could
// take for HTML, SVG or XML is not plain text, wherever the markup starts
// (the sniffer alone called "scan\n<script>…" and "<svg …>" text/plain, and
// Chromium saved and ran them as scan.html and xray.svg).
func TestAttachmentPlainTextRefusesMarkup(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	for name, data := range map[string]string{
		"svg":              `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`,
		"html after text":  "Lab report\n<script>alert(1)</script>\n",
		"closing tag only": "results ok </p>",
		"comment":          "a <!-- b --> c",
		"xml pi late":      "notes\n<?xml version=\"1.0\"?><x/>",
		"upper-case tag":   "x <IMG SRC=x onerror=alert(1)>",
	} {
		resp := ti.do(t, request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("text/plain", []byte(data)))})
		if resp.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", name, resp.status)
		}
	}
	for name, data := range map[string]string{
		"plain":       "Temperature log: 38.2, 38.9, 37.5\n",
		"comparisons": "glucose < 5.5 mmol/l, x<3, a <= b, <- arrow, 1 < 2 > 0\n",
	} {
		resp := ti.do(t, request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("text/plain", []byte(data)))})
		if resp.status != http.StatusCreated {
			t.Errorf("%s: status %d, want 201: %s", name, resp.status, resp.body)
		}
	}
}

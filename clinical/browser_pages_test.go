package clinical

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
	"github.com/airlockhq/airlock/shared/forms"
)

// browserLogin logs u in through the login form.
func browserLogin(t *testing.T, b *browsertest.Browser, a *app, base string, u *staffUser) {
	t.Helper()
	a.clock.advance(30 * time.Second)
	b.Do("log in as "+u.email,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), u.email),
		chromedp.SendKeys(chromedp.CSS("#password"), u.password),
		chromedp.SendKeys(chromedp.CSS("#code"), a.code(t, u)),
		chromedp.Submit(chromedp.CSS("#code")),
		// Only a logged-in page has the logout button (the login page's
		// own heading would match anything less specific).
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)),
	)
}

// answerGaps measures, in document order, the vertical space between each
// question or answer of the detail page and the next one (a group's
// heading included), and reports the largest, the element after it and
// the height of the multi-line answer.
const answerGaps = `(() => {
  const els = [...document.querySelectorAll('main dl dt, main dl dd:not(:has(dl))')];
  let max = 0, after = '';
  for (let i = 1; i < els.length; i++) {
    const gap = els[i].getBoundingClientRect().top - els[i-1].getBoundingClientRect().bottom;
    if (gap > max) { max = gap; after = els[i-1].textContent.slice(0, 40); }
  }
  const multi = [...document.querySelectorAll('main dl dd:not(:has(dl))')].find(d => d.textContent.includes('paracetamol'));
  const line = parseFloat(getComputedStyle(multi).lineHeight);
  return {count: els.length, max: Math.round(max), after, lines: Math.round(multi.getBoundingClientRect().height / line),
    width: document.documentElement.scrollWidth, viewport: window.innerWidth};
})()`

type gapReport struct {
	Count    int     `json:"count"`
	Max      float64 `json:"max"`
	After    string  `json:"after"`
	Lines    int     `json:"lines"`
	Width    int     `json:"width"`
	Viewport int     `json:"viewport"`
}

// TestBrowserGroupedDetail opens a grouped form's submission at 360 px
// and at desktop width and measures the spacing between its answers: no
// blank space from the markup (a group's nested list is not pre-wrap),
// while a multi-line answer keeps its lines; booleans read Yes/No; the
// page has no axe-core violation.
func TestBrowserGroupedDetail(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	ans := patient("Doe", "Jane", "ibuprofen twice daily\nparacetamol when needed")
	yes := true
	ans["allergies"] = []forms.Value{{ValueBoolean: &yes}}
	ans["allergy-details"] = []forms.Value{str("penicillin: rash")}
	ans["smoker"] = []forms.Value{{ValueCoding: &forms.Coding{System: "https://airlock.dev/fhir/CodeSystem/smoking-status", Code: "never", Display: "Never smoked"}}}
	ans["insurer"] = []forms.Value{str("Mutual Health")}
	ans["birth-date"] = []forms.Value{date("1971-07-04")}
	s := a.insert(t, "new-patient", ans, time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC), ReviewNew)
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()

	b := browsertest.New(t, 3*time.Minute)
	browserLogin(t, b, a, ts.URL, u)
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"360 px", 360, 740, true}, {"desktop", 1280, 900, false}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		b.Do("open the submission at "+size.name,
			chromedp.EmulateViewport(size.width, size.height, opts...),
			chromedp.Navigate(ts.URL+"/submissions/"+s.intakeID),
			chromedp.WaitVisible(chromedp.CSS("main dl")),
		)
		r := browsertest.Run(b, "measure", chromedp.Evaluate[gapReport](answerGaps))
		t.Logf("%s: %d questions and answers, largest gap %.0f px (after %q), multi-line answer %d lines, page %d px wide",
			size.name, r.Count, r.Max, r.After, r.Lines, r.Width)
		// A group's heading sits 1rem (16 px) below the answer before it;
		// nothing more. The bug left ~100 px of blank lines.
		if r.Max > 24 {
			t.Errorf("%s: %.0f px of blank space after %q", size.name, r.Max, r.After)
		}
		if r.Count < 14 {
			t.Errorf("%s: only %d questions and answers shown", size.name, r.Count)
		}
		if r.Lines != 2 {
			t.Errorf("%s: the two-line answer takes %d lines", size.name, r.Lines)
		}
		if r.Width > r.Viewport {
			t.Errorf("%s: page is %d px wide in a %d px viewport", size.name, r.Width, r.Viewport)
		}
		text := b.Text("main dl")
		for _, want := range []string{"Do you have any allergies?\nYes", "Never smoked"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the answers do not show %q:\n%s", size.name, want, text)
			}
		}
		b.Axe(fmt.Sprintf("the detail page of a grouped form (%s)", size.name))
	}

	// A correction of it: both pages link each other, the correction shows
	// what changed and can be accepted; then a note.
	fixed := patient("Doe", "Jane", "ibuprofen twice daily\nparacetamol when needed")
	no := false
	fixed["allergies"] = []forms.Value{{ValueBoolean: &no}}
	corr := a.insert(t, "new-patient", fixed, time.Date(2026, 4, 21, 9, 0, 0, 0, time.UTC), ReviewNew)
	a.link(t, corr, s)
	b.Do("open the correction",
		chromedp.Navigate(ts.URL+"/submissions/"+corr.intakeID),
		chromedp.WaitVisible(chromedp.CSS("#changes")),
	)
	if changes := b.Text("#changes"); !strings.Contains(changes, "Yes") || !strings.Contains(changes, "No") {
		t.Errorf("the changes table shows %q, want the boolean as Yes and No", changes)
	}
	b.Axe("a correction awaiting acceptance")
	b.Do("open the corrected submission",
		chromedp.Navigate(ts.URL+"/submissions/"+s.intakeID),
		chromedp.WaitVisible(chromedp.CSS("#corrections")),
	)
	b.Axe("a submission with a correction")
	b.Do("accept the correction",
		chromedp.Navigate(ts.URL+"/submissions/"+corr.intakeID),
		chromedp.WaitVisible(chromedp.CSS("#accept-correction")),
		chromedp.Click(chromedp.CSS("#accept-correction")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	b.Axe("an accepted correction")
	b.Do("add a note",
		chromedp.SendKeys(chromedp.CSS("#body"), "Called the patient."),
		chromedp.Submit(chromedp.CSS("#body")),
		chromedp.WaitVisible(chromedp.CSS(".note")),
	)
	b.Axe("the detail page with a note")
	b.Do("open the superseded submission",
		chromedp.Navigate(ts.URL+"/submissions/"+s.intakeID),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
	)
	b.Axe("a superseded submission")
}

// TestBrowserExportTakesVisibleFilters: after a search for one form, the
// clinician picks another form in the filter and exports without searching
// again: the file holds that other form's rows (what the screen says), the
// page after the export says what the file holds, and neither page has an
// axe-core violation.
func TestBrowserExportTakesVisibleFilters(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	day := time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)
	a.insert(t, "new-patient", patient("Doe", "Jane", ""), day, ReviewNew)
	a.insert(t, "symptoms", forms.Answers{"complaint": {str("Cough")}}, day.Add(time.Hour), ReviewNew)
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()

	b := browsertest.New(t, 3*time.Minute)
	downloads := t.TempDir()
	b.AllowDownloads(downloads)
	browserLogin(t, b, a, ts.URL, u)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.Do("list new-patient submissions",
		chromedp.Navigate(ts.URL+"/submissions"),
		chromedp.WaitVisible(css("#form")),
		chromedp.SetValue(css("#form"), "new-patient"),
		chromedp.Submit(css("#q")),
		chromedp.WaitVisible(css("table")),
	)
	b.Axe("the submissions list")
	checkboxesBesideLabels(t, b, "the submissions list")
	if tops := browsertest.Run(b, "filter labels", chromedp.Evaluate[[]int](filterLabelTops)); len(tops) < 4 || slices.Min(tops) != slices.Max(tops) {
		t.Errorf("the filter labels on the first row are not aligned: tops %v", tops)
	}
	b.Do("pick another form and export without searching",
		chromedp.WaitVisible(css("#export")),
		chromedp.SetValue(css("#form"), "symptoms"),
		chromedp.SetValue(css("#format"), "csv"),
		chromedp.Click(css("#export")),
		chromedp.WaitVisible(css("#export-summary")),
	)
	summary := b.Text("#export-summary")
	what := b.Text("#export-what")
	if !strings.Contains(summary, "1 submission as CSV") || !strings.Contains(what, "symptoms") {
		t.Errorf("the export page says %q / %q", summary, what)
	}
	b.Axe("the export page")
	var exported string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && exported == ""; time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(downloads, "airlock-export-*.csv"))
		if len(files) == 1 {
			b, _ := os.ReadFile(files[0])
			exported = string(b)
		}
	}
	if !strings.Contains(exported, "Cough") || strings.Contains(exported, "Jane") {
		t.Errorf("the export holds %q, want the symptoms row the filter shows", exported)
	}
}

// TestBrowserAdminPages walks an admin through every admin page (staff,
// creating an account and the page with its code, the audit log, the
// erasure form, its confirmation and its result), a 404 and a failed and
// a refused login, at desktop width and at 360 px: no axe-core violation;
// the checkbox on the staff page sits beside its label.
func TestBrowserAdminPages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
	a.newUser(t, "pending@clinic.example", false, false, RoleViewer)
	s := a.insert(t, "new-patient", patient("Doe", "Jane", ""), time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC), ReviewNew)
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	b := browsertest.New(t, 4*time.Minute)
	b.Do("a first visit", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(css("#email")))
	b.Axe("the login page on a first visit")
	b.Do("a wrong login",
		chromedp.SendKeys(css("#email"), u.email),
		chromedp.SendKeys(css("#password"), "not the password at all"),
		chromedp.SendKeys(css("#code"), "123456"),
		chromedp.Submit(css("#code")),
		chromedp.WaitVisible(css(".error")),
	)
	b.Axe("the login page after a failed login")
	browserLogin(t, b, a, ts.URL, u)
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"360 px", 360, 740}} {
		b.Do("size "+size.name, chromedp.EmulateViewport(size.width, size.height))
		b.Do("the staff page", chromedp.Navigate(ts.URL+"/admin/staff"), chromedp.WaitVisible(css("main h1")))
		b.Axe("the staff page (" + size.name + ")")
		checkboxesBesideLabels(t, b, "the staff page ("+size.name+")")
		fits(t, b, "the staff page ("+size.name+")")
		b.Do("the audit log", chromedp.Navigate(ts.URL+"/admin/audit"), chromedp.WaitVisible(css("table.audit")))
		b.Axe("the audit log (" + size.name + ")")
		fits(t, b, "the audit log ("+size.name+")")
		b.Do("the erasure form", chromedp.Navigate(ts.URL+"/admin/erase"), chromedp.WaitVisible(css("#receipt")))
		b.Axe("the erasure form (" + size.name + ")")
		fits(t, b, "the erasure form ("+size.name+")")
		b.Do("a 404", chromedp.Navigate(ts.URL+"/no/such/page"), chromedp.WaitVisible(css("main h1")))
		b.Axe("the 404 page (" + size.name + ")")
	}
	b.Do("create an account",
		chromedp.Navigate(ts.URL+"/admin/staff"),
		chromedp.WaitVisible(css("main h1")),
		chromedp.SendKeys(css(`form[action="/admin/staff"] input[name="email"]`), "new@clinic.example"),
		chromedp.Click(css(`form[action="/admin/staff"] input[value="viewer"]`)),
		chromedp.Submit(css(`form[action="/admin/staff"] input[name="email"]`)),
		chromedp.WaitVisible(css("#create-code")),
	)
	b.Axe("the page with a new account's code")
	b.Do("erase: the receipt",
		chromedp.Navigate(ts.URL+"/admin/erase"),
		chromedp.WaitVisible(css("#receipt")),
		chromedp.SendKeys(css("#receipt"), s.receipt),
		chromedp.Click(css("#find-receipt")),
		chromedp.WaitVisible(css("#erase")),
	)
	if named := b.Text("#erase-receipt"); named != s.receipt {
		t.Errorf("the confirmation names %q, want %s", named, s.receipt)
	}
	bg := browsertest.Run(b, "button colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#erase')).backgroundColor`))
	if bg != "rgb(164, 14, 38)" {
		t.Errorf("the erase button is %s, not the danger colour", bg)
	}
	b.Axe("the erasure confirmation")
	b.Do("erase: confirm", chromedp.Click(css("#erase")), chromedp.WaitVisible(css("#erased")))
	if done := b.Text("#erased"); !strings.Contains(done, s.receipt) {
		t.Errorf("after the erasure the page says %q", done)
	}
	b.Axe("the page after an erasure")
}

// checkboxesBesideLabels fails t for every checkbox on the page whose
// label is not beside it on the same line.
func checkboxesBesideLabels(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	bad := browsertest.Run(b, "checkbox positions", chromedp.Evaluate[[]string](`[...document.querySelectorAll('input[type=checkbox]')].map(box => {
  const label = document.querySelector('label[for="' + box.id + '"]') || box.closest('label');
  if (!label) return box.name + ': no label';
  const b = box.getBoundingClientRect(), l = label.getBoundingClientRect();
  const beside = l.left >= b.right - 1 && l.top < b.bottom && l.bottom > b.top;
  const around = label.contains(box) && Math.abs((b.top + b.bottom) / 2 - (l.top + l.bottom) / 2) < 8;
  return beside || around ? '' : box.name + ': label not beside its box (box ' + [b.left, b.top, b.right, b.bottom].map(Math.round) +
    ', label ' + [l.left, l.top, l.right, l.bottom].map(Math.round) + ')';
}).filter(x => x)`))
	for _, m := range bad {
		t.Errorf("%s: %s", page, m)
	}
}

// filterLabelTops are the tops of the list filters' labels that share a
// row with the first one, and the first one's top.
const filterLabelTops = `(() => {
  const labels = [...document.querySelectorAll('form.filters > div > label')].filter(l => !l.closest('.check'));
  const first = labels[0].getBoundingClientRect();
  return labels.filter(l => Math.abs(l.getBoundingClientRect().top - first.top) < 40).map(l => Math.round(l.getBoundingClientRect().top));
})()`

// fits fails t when the page is wider than the viewport (it would scroll
// sideways as a whole).
func fits(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	w := browsertest.Run(b, "page width", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if w[0] > w[1] {
		t.Errorf("%s is %d px wide in a %d px viewport", page, w[0], w[1])
	}
}

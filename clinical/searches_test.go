package clinical

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
)

var searchLocation = regexp.MustCompile(`^/submissions\?search=[A-Za-z0-9_-]{43}$`)

// TestSearchPostRedirectGet: a search with text answers 303 to an opaque
// id (never the text) whose GET page shows the results, again on reload;
// filters alone redirect to their own query string; the id works for no
// other session, not after logout, not when altered, not after it expires;
// the stored search holds no plaintext.
func TestSearchPostRedirectGet(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	jane := a.insert(t, "new-patient", patient("Quillfeather", "Jane", ""), day, ReviewNew)
	other := a.insert(t, "new-patient", patient("Roe", "Richard", ""), day.Add(time.Hour), ReviewNew)
	c := a.client()
	c.login(t, u)

	rec := c.post("/submissions", url.Values{"q": {"Quillfeather 1980-02-29"}, "status": {"new"}})
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !searchLocation.MatchString(loc) {
		t.Fatalf("search: %d to %q", rec.Code, loc)
	}
	rec = c.post("/submissions", url.Values{"q": {"quillfeather"}})
	loc = rec.Header().Get("Location")
	for i := 0; i < 2; i++ { // the page and its reload
		page := c.get(loc)
		got := listed(page.Body.String())
		if page.Code != http.StatusOK || len(got) != 1 || got[0] != jane.intakeID {
			t.Fatalf("GET %s (%d): %d, listed %v", loc, i, page.Code, got)
		}
		if !strings.Contains(page.Body.String(), `value="quillfeather"`) {
			t.Errorf("the search box does not show the search")
		}
	}

	if rec := c.get(loc + "&q=quillfeather"); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("search text in the address beside a search id: %d", rec.Code)
	}

	// Filters alone need no saved search.
	rec = c.post("/submissions", url.Values{"q": {"  "}, "status": {"new"}, "sort": {"oldest"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/submissions?sort=oldest&status=new" {
		t.Fatalf("filters: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	if got := listed(c.get(rec.Header().Get("Location")).Body.String()); len(got) != 2 || got[0] != jane.intakeID || got[1] != other.intakeID {
		t.Fatalf("filters listed %v", got)
	}
	// A refused search is refused on the POST, not after the redirect.
	if rec := c.post("/submissions", url.Values{"q": {"!!!"}}); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("bad search: %d", rec.Code)
	}

	// Another session, of another user or of the same one, cannot use it.
	v := a.newUser(t, "view@clinic.example", true, true, RoleViewer)
	vc := a.client()
	vc.login(t, v)
	same := a.client()
	same.login(t, u)
	id := strings.TrimPrefix(loc, "/submissions?search=")
	altered := []byte(id)
	altered[10] ^= 1
	if altered[10] == '-'+1 || altered[10] == '_'+1 {
		altered[10] = 'A'
	}
	for name, probe := range map[string]func() *httptest.ResponseRecorder{
		"another user":                 func() *httptest.ResponseRecorder { return vc.get(loc) },
		"another session of this user": func() *httptest.ResponseRecorder { return same.get(loc) },
		"an altered id":                func() *httptest.ResponseRecorder { return c.get("/submissions?search=" + string(altered)) },
		"a short id":                   func() *httptest.ResponseRecorder { return c.get("/submissions?search=abc") },
	} {
		rec := probe()
		if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), jane.intakeID) || strings.Contains(rec.Body.String(), "quillfeather") {
			t.Errorf("%s: %d %.300s", name, rec.Code, rec.Body.String())
		}
	}

	// Nothing readable is stored.
	var n int
	if err := a.owner.QueryRow(t.Context(), `SELECT count(*) FROM saved_searches WHERE position('quillfeather' in encode(sealed, 'escape')) > 0`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a stored search holds its text in clear (%d, %v)", n, err)
	}

	// It expires.
	h := sessionHashOf(c)
	if _, err := a.srv.searches.Load(context.Background(), h, id); err != nil {
		t.Fatalf("load before expiry: %v", err)
	}
	a.clock.advance(SearchTTL + time.Second)
	if _, err := a.srv.searches.Load(context.Background(), h, id); codeOf(err) != CodeNotFound {
		t.Errorf("load after expiry: %v", err)
	}

	// Logout removes the session's searches.
	c2 := a.client()
	c2.login(t, u)
	loc2 := c2.post("/submissions", url.Values{"q": {"quillfeather"}}).Header().Get("Location")
	if rec := c2.post("/logout", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	if err := a.owner.QueryRow(t.Context(), `SELECT count(*) FROM saved_searches WHERE session_hash = $1`, sessionHashOf(c2)).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d searches outlive their session (%v)", n, err)
	}
	c2.login(t, u)
	if rec := c2.get(loc2); rec.Code != http.StatusNotFound {
		t.Errorf("a search of the session before logout: %d", rec.Code)
	}
}

// sessionHashOf is the stored hash of a client's session token.
func sessionHashOf(c *client) []byte {
	ck, ok := c.cookies[sessionCookie]
	if !ok {
		return nil
	}
	h := sha256.Sum256([]byte(ck.Value))
	return h[:]
}

// TestBrowserBackAfterSearch: in headless Chromium, search, open a result,
// go Back: the results are shown again with no "Confirm Form Resubmission"
// (which headless Chromium shows as ERR_CACHE_MISS), and a reload too; the
// address names an opaque search, never the text.
func TestBrowserBackAfterSearch(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	day := time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)
	target := a.insert(t, "new-patient", patient("Quillfeather", "Jane", ""), day, ReviewNew)
	other := a.insert(t, "new-patient", patient("Roe", "Richard", ""), day.Add(time.Hour), ReviewNew)
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	b := browsertest.New(t, 3*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	a.clock.advance(30 * time.Second)
	b.Do("log in",
		chromedp.Navigate(ts.URL+"/login"),
		chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), u.email),
		chromedp.SendKeys(css("#password"), u.password),
		chromedp.SendKeys(css("#code"), a.code(t, u)),
		chromedp.Submit(css("#code")),
		chromedp.WaitVisible(css("#q")),
	)
	row := css(`a[href="/submissions/` + target.intakeID + `"]`)
	gone := css(`a[href="/submissions/` + other.intakeID + `"]`)
	b.Do("search by name",
		chromedp.SendKeys(css("#q"), "quillfeather"),
		chromedp.Submit(css("#q")),
		chromedp.WaitNotPresent(gone),
		chromedp.WaitVisible(row),
	)
	loc := b.Location()
	u2, err := url.Parse(loc)
	if err != nil || !searchLocation.MatchString(u2.RequestURI()) || strings.Contains(strings.ToLower(loc), "quillfeather") {
		t.Fatalf("results at %q", loc)
	}
	b.Do("open the result",
		chromedp.Click(row),
		chromedp.WaitVisible(css("#set-status")),
	)
	detail := b.Location()
	// history.back() rather than chromedp.NavigateBack, which waits for a
	// load event that a page restored from the back/forward cache never
	// sends.
	browsertest.Run(b, "go back", chromedp.Evaluate[bool](`history.back(), true`))
	for deadline := time.Now().Add(30 * time.Second); b.Location() == detail && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if got := b.Location(); got != loc {
		t.Fatalf("Back leads to %q, want %q", got, loc)
	}
	// Read the page by script: chromedp's DOM tracking does not follow a
	// page restored from the back/forward cache.
	has := func(id string) bool {
		return browsertest.Run(b, "look for a row", chromedp.Evaluate[bool](`document.querySelector('a[href="/submissions/`+id+`"]') !== null`))
	}
	for deadline := time.Now().Add(20 * time.Second); !has(target.intakeID) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	text := browsertest.Run(b, "read the page", chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText`))
	if !has(target.intakeID) || has(other.intakeID) || !strings.Contains(text, "Quillfeather") {
		t.Fatalf("after Back the page shows %.300q", text)
	}
	b.Do("reload",
		chromedp.Reload(),
		chromedp.WaitVisible(row),
	)
	if strings.Contains(b.Text("main"), "Roe") {
		t.Error("reload lost the search")
	}
	b.Axe("search results")
}

package clinical

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// shownCodes is every <code> value of a page but paths: what an admin is
// shown.
func shownCodes(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<code[^>]*>([^<]*)</code>`).FindAllStringSubmatch(body, -1) {
		if v := html.UnescapeString(m[1]); !strings.HasPrefix(v, "/") {
			out = append(out, v)
		}
	}
	return out
}

// tryEverything uses every value one admin was shown, alone and in every
// pair, as a password (with the TOTP code of any otpauth URI among them)
// and as enrolment codes. It returns what worked.
func tryEverything(t *testing.T, a *app, email string, shown []string) []string {
	t.Helper()
	codes := []string{""}
	for _, v := range shown {
		if k, err := otp.NewKeyFromURL(v); err == nil && k.Type() == "totp" {
			c, _ := totp.GenerateCode(k.Secret(), a.clock.now())
			codes = append(codes, c)
		}
	}
	var worked []string
	for _, pw := range shown {
		for _, code := range codes {
			c := a.client()
			if rec := c.post("/login", url.Values{"email": {email}, "password": {pw}, "code": {code}}); rec.Code == http.StatusSeeOther {
				worked = append(worked, fmt.Sprintf("login with password %q and code %q", pw, code))
			}
		}
		for _, other := range shown {
			c := a.client()
			if rec := c.post("/enrol/start", url.Values{"email": {email}, "create_code": {pw}, "approve_code": {other}}); rec.Code == http.StatusSeeOther {
				worked = append(worked, fmt.Sprintf("enrolment with codes %q and %q", pw, other))
			}
		}
	}
	return worked
}

// TestResetThenApproveGivesNoAdminALogin: admin A resets a clinician's
// account and admin B approves it. Nothing either admin was shown, used
// alone, logs in as the clinician or enrols the account; both admins'
// codes together (what the clinician gets) do enrol it.
func TestResetThenApproveGivesNoAdminALogin(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.srv.accounts.AccountLimit, a.srv.accounts.AddrLimit = 1000, 1000 // this test is not about throttling
	adminA := a.newUser(t, "a@clinic.example", true, true, RoleAdmin)
	adminB := a.newUser(t, "b@clinic.example", true, true, RoleAdmin)
	victim := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	ca, cb := a.client(), a.client()
	ca.login(t, adminA)
	cb.login(t, adminB)

	rec := ca.post(fmt.Sprintf("/admin/staff/%d/reset", victim.id), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("reset: %d", rec.Code)
	}
	shownA := shownCodes(rec.Body.String())
	if len(shownA) == 0 {
		t.Fatalf("the resetting admin was shown nothing to pass on")
	}
	rec = cb.post(fmt.Sprintf("/admin/staff/%d/approve", victim.id), nil)
	if rec.Code != http.StatusOK && rec.Code != http.StatusSeeOther {
		t.Fatalf("approve: %d", rec.Code)
	}
	shownB := shownCodes(rec.Body.String())
	a.clock.advance(60e9)
	if worked := tryEverything(t, a, victim.email, shownA); len(worked) > 0 {
		t.Errorf("the resetting admin alone got in: %v", worked)
	}
	if worked := tryEverything(t, a, victim.email, shownB); len(worked) > 0 {
		t.Errorf("the approving admin alone got in: %v", worked)
	}
	// The resetting admin cannot approve in B's place either.
	if rec := ca.post(fmt.Sprintf("/admin/staff/%d/approve", victim.id), nil); rec.Code == http.StatusOK || rec.Code == http.StatusSeeOther {
		t.Errorf("the resetting admin approved: %d", rec.Code)
	}
	if len(shownB) != 1 || len(shownA) != 1 {
		t.Fatalf("shown to A: %d values, to B: %d; want one code each", len(shownA), len(shownB))
	}
	person := a.client()
	rec = person.post("/enrol/start", url.Values{"email": {victim.email}, "create_code": {shownA[0]}, "approve_code": {shownB[0]}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/enrol" {
		t.Errorf("the person with both codes: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

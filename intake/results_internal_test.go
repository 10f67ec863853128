package intake

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/results"
	"github.com/airlockhq/airlock/shared/seal"
)

// resultsIntake is an intake server whose login holds the writer and the
// results roles, as deployed, with results put in as transfer would.
type resultsIntake struct {
	srv   *Server
	url   string
	owner string
}

func newResultsIntake(t *testing.T) *resultsIntake {
	t.Helper()
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	pool, err := pg.Connect(context.Background(), pgtest.URLAsRoles(t, owner, "airlock_test_intake_server",
		"airlock_intake_writer", "airlock_intake_results"), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	key, _ := seal.GenerateKey()
	rowKey, _ := seal.NewRowKey()
	cfg := &Config{PlainHTTP: true, Recipients: []seal.PublicKey{key.Public}, RowKey: rowKey, Forms: forms.Builtin(), MaxBody: 1 << 20}
	srv := NewServer(cfg, NewStore(pool), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	ts := httptest.NewServer(srv.Echo)
	t.Cleanup(ts.Close)
	return &resultsIntake{srv: srv, url: ts.URL, owner: owner}
}

// put stores a result sealed with the date of birth, as transfer carries it.
func (ri *resultsIntake) put(t *testing.T, dob string) results.Token {
	t.Helper()
	tok := results.NewToken()
	pool, err := pg.Connect(context.Background(), pgtest.URLAs(t, ri.owner, "airlock_intake_transfer"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(context.Background(), `INSERT INTO results (token_hash, sealed_title, sealed, size, birth_date_required, expires_at)
VALUES ($1, $2, $3, 10, true, now() + interval '1 day')`, tok.Hash(), tok.SealTitle("Letter"),
		tok.SealDocument(results.Document{ContentType: "text/plain", Data: []byte("0123456789")}, dob))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var csrfInPage = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// answerer GETs a link once for its CSRF pair, then posts dates of birth.
func (ri *resultsIntake) answerer(t *testing.T, tok results.Token) func(d, m, y string) int {
	t.Helper()
	resp, err := http.Get(ri.url + "/r/" + tok.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInPage.FindSubmatch(b)
	if resp.StatusCode != http.StatusOK || m == nil || len(resp.Cookies()) == 0 {
		t.Fatalf("GET link: %d", resp.StatusCode)
	}
	cookie, csrf := resp.Cookies()[0], string(m[1])
	return func(d, mo, y string) int {
		form := url.Values{"_csrf": {csrf}, "dob-day": {d}, "dob-month": {mo}, "dob-year": {y}}
		req, _ := http.NewRequest(http.MethodPost, ri.url+"/r/"+tok.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// TestWrongBirthDatesLimitedPerAddress: past its budget of wrong dates of
// birth, a client address gets 429 on every link, even with the right
// date, and the refused request counts nothing against the link.
func TestWrongBirthDatesLimitedPerAddress(t *testing.T) {
	t.Parallel()
	ri := newResultsIntake(t)
	ri.srv.birthDateLimiter = newRateLimiter(1, 3, 0) // a burst of 3, then one a minute
	first, second := ri.put(t, "1984-02-29"), ri.put(t, "1970-01-01")
	answer := ri.answerer(t, first)
	for i := range 3 {
		if code := answer("1", "1", "2000"); code != http.StatusForbidden {
			t.Fatalf("wrong answer %d: %d, want 403", i+1, code)
		}
	}
	if code := ri.answerer(t, second)("1", "1", "1970"); code != http.StatusTooManyRequests {
		t.Errorf("right answer on another link past the budget: %d, want 429", code)
	}
	var failures int
	pool, _ := pg.Connect(context.Background(), ri.owner, 1)
	defer pool.Close()
	pool.QueryRow(context.Background(), `SELECT failures FROM results WHERE token_hash = $1`, second.Hash()).Scan(&failures)
	if failures != 0 {
		t.Errorf("the refused request counted %d failures on the link", failures)
	}
}

// TestConcurrentWrongBirthDatesLockOnce: many wrong answers at once are
// counted exactly: five are refused with 403 (the fifth uses the link up),
// every other one finds the link gone, and the right answer after them gets
// nothing.
func TestConcurrentWrongBirthDatesLockOnce(t *testing.T) {
	t.Parallel()
	ri := newResultsIntake(t)
	ri.srv.birthDateLimiter = newRateLimiter(1, 1000, 0)
	tok := ri.put(t, "1984-02-29")
	answer := ri.answerer(t, tok)
	const n = 12
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- answer("2", "2", "2002") })
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusForbidden] != results.MaxWrongBirthDates || count[http.StatusGone] != n-results.MaxWrongBirthDates {
		t.Errorf("answers %v: want %d × 403 and the rest 410", count, results.MaxWrongBirthDates)
	}
	if code := answer("29", "2", "1984"); code != http.StatusGone {
		t.Errorf("right answer after the link was used up: %d, want 410", code)
	}
}

// TestBirthDateWithFullAddressTable: once a flood from many addresses has
// filled the per-address table, a patient from a new address still gets an
// answer (the per-link limit holds), not a 500 from a nil limiter.
func TestBirthDateWithFullAddressTable(t *testing.T) {
	t.Parallel()
	ri := newResultsIntake(t)
	rl := newRateLimiter(1, 10, 0)
	now := time.Now()
	for i := range maxClients {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		rl.clients[a] = &clientEntry{lim: rate.NewLimiter(rl.perClient, rl.burst), lastSeen: now}
	}
	ri.srv.birthDateLimiter = rl
	tok := ri.put(t, "1984-02-29")
	if code := ri.answerer(t, tok)("1", "1", "2000"); code != http.StatusForbidden {
		t.Fatalf("a wrong date of birth with the address table full: %d, want 403", code)
	}
}

// TestConcurrentWrongBirthDatesAcrossLinksKeepTheAddressBudget: wrong
// dates of birth sent at once from one address to many links (each link's
// own limit untouched) are tried no more often than the address's budget:
// each answer spends its token before it is tried.
func TestConcurrentWrongBirthDatesAcrossLinksKeepTheAddressBudget(t *testing.T) {
	t.Parallel()
	ri := newResultsIntake(t)
	ri.srv.birthDateLimiter = newRateLimiter(1, 3, 0) // a burst of 3, then one a minute
	const n = 12
	answers := make([]func(day, month, year string) int, n)
	for i := range answers {
		answers[i] = ri.answerer(t, ri.put(t, "1984-02-29"))
	}
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for _, answer := range answers {
		wg.Go(func() { codes <- answer("1", "1", "2000") })
	}
	wg.Wait()
	close(codes)
	tried := map[int]int{}
	for c := range codes {
		tried[c]++
	}
	if tried[http.StatusForbidden] > 3 || tried[http.StatusForbidden]+tried[http.StatusTooManyRequests] != n {
		t.Fatalf("answers %v: want at most 3 tried (403) and the rest refused (429)", tried)
	}
}

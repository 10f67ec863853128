package clinical

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/textsearch"
)

// testClock is a clock tests move by hand (TOTP steps, session timeouts).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cheapArgon2 keeps tests fast; the parameters travel with each hash.
var cheapArgon2 = Argon2Params{Memory: 1024, Time: 1, Threads: 1}

// app is the staff app over a fresh database, served through its real
// router and connected as the airlock_clinical_app role, so every test also
// proves the grants suffice.
type app struct {
	srv    *Server
	clock  *testClock
	owner  *pgxpool.Pool // the database owner, for fixtures and tampering
	secret SecretKey
	logs   *syncBuffer
	appURL string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newApp builds the app; opts adjust its serve settings first.
func newApp(tb testing.TB, opts ...func(*ServeConfig)) *app {
	tb.Helper()
	ctx := context.Background()
	ownerURL := pgtest.NewDB(tb, "clinical", migrations.Clinical())
	appURL := pgtest.URLAs(tb, ownerURL, "airlock_clinical_app")
	owner, err := pg.Connect(ctx, ownerURL, 4)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(owner.Close)
	pool, err := pg.Connect(ctx, appURL, 8)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	secret, err := NewSecretKey()
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &ServeConfig{
		Config:      &Config{DatabaseURL: appURL, SecretKey: secret, Forms: forms.Builtin()},
		SessionIdle: 15 * time.Minute, SessionMax: 12 * time.Hour, Argon2: cheapArgon2,
	}
	for _, o := range opts {
		o(cfg)
	}
	a := &app{clock: &testClock{t: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}, owner: owner, secret: secret,
		logs: &syncBuffer{}, appURL: appURL}
	a.srv = NewServer(cfg, pool, slog.New(slog.NewJSONHandler(a.logs, nil)), a.clock.now)
	return a
}

// staffUser is a test staff account with its credentials.
type staffUser struct {
	id       int64
	email    string
	password string
	secret   string // TOTP
	// the enrolment codes of an account that has not enrolled
	createCode, approveCode string
}

// code is the staffUser's current TOTP code on the app's clock.
func (a *app) code(tb testing.TB, u *staffUser) string {
	tb.Helper()
	c, err := totp.GenerateCodeCustom(u.secret, a.clock.now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newUser creates an account as `staff add` would, with bootstrap off;
// active makes it active (approved by the database owner, with an approve
// code issued as an approval would) and enrolled makes it also enrolled
// through StartEnrol and Enrol, with a known password and TOTP secret.
func (a *app) newUser(tb testing.TB, email string, active, enrolled bool, roles ...string) *staffUser {
	tb.Helper()
	ctx := context.Background()
	en, err := a.srv.accounts.Create(ctx, "test", nil, email, roles, false)
	if err != nil {
		tb.Fatalf("create %s: %v", email, err)
	}
	u := &staffUser{id: en.Staff.ID, email: en.Staff.Email, createCode: en.CreateCode}
	if active {
		if _, err := a.owner.Exec(ctx, `UPDATE staff SET status = 'active' WHERE id = $1`, u.id); err != nil {
			tb.Fatal(err)
		}
		err := pg.InTx(ctx, a.srv.accounts.pool, func(tx pgx.Tx) error {
			var err error
			u.approveCode, _, err = a.srv.accounts.issueCode(ctx, tx, u.id, CodeKindApprove, nil)
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if enrolled {
		st, err := a.srv.accounts.StartEnrol(ctx, u.email, u.createCode, u.approveCode, "test")
		if err != nil {
			tb.Fatalf("start enrolment of %s: %v", email, err)
		}
		if u.secret, err = a.srv.accounts.EnrolTOTPSecret(st); err != nil {
			tb.Fatal(err)
		}
		pw := fmt.Sprintf("violet tram orbit %d", u.id)
		a.clock.advance(30 * time.Second)
		if err := a.srv.accounts.Enrol(ctx, st, pw, pw, a.code(tb, u), "test"); err != nil {
			tb.Fatalf("enrol %s: %v", email, err)
		}
		u.password = pw
		u.createCode, u.approveCode = "", ""
	}
	return u
}

// client is one browser: it keeps cookies between requests.
type client struct {
	a       *app
	cookies map[string]*http.Cookie
	addr    string
}

func (a *app) client() *client {
	b := make([]byte, 4)
	rand.Read(b)
	return &client{a: a, cookies: map[string]*http.Cookie{}, addr: fmt.Sprintf("10.%d.%d.%d:4242", b[0], b[1], b[2])}
}

func (c *client) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	req.RemoteAddr = c.addr
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.a.srv.Echo.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return rec
}

func (c *client) get(path string) *httptest.ResponseRecorder { return c.do(http.MethodGet, path, nil) }

// post sends a form with the session's CSRF token added.
func (c *client) post(path string, form url.Values) *httptest.ResponseRecorder {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if !f.Has("csrf") {
		f.Set("csrf", c.csrf())
	}
	return c.do(http.MethodPost, path, f)
}

// search sends the list form as a browser does: a POST answered by 303,
// then a GET of where it leads. Anything but a 303 is returned as it came.
func (c *client) search(form url.Values) *httptest.ResponseRecorder {
	rec := c.post("/submissions", form)
	if rec.Code != http.StatusSeeOther {
		return rec
	}
	return c.get(rec.Header().Get("Location"))
}

// csrf is the token the pages of this browser carry.
func (c *client) csrf() string {
	m := hmac.New(sha256.New, c.a.srv.csrfKey)
	if ck, ok := c.cookies[sessionCookie]; ok {
		h := sha256.Sum256([]byte(ck.Value))
		m.Write([]byte("session\x00"))
		m.Write(h[:])
	} else {
		if _, ok := c.cookies[preCookie]; !ok {
			c.get("/login")
		}
		m.Write([]byte("pre\x00" + c.cookies[preCookie].Value))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// login logs u in (moving the clock to a fresh TOTP step) and fails the
// test unless it succeeds.
func (c *client) login(tb testing.TB, u *staffUser) {
	tb.Helper()
	c.a.clock.advance(30 * time.Second)
	rec := c.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {c.a.code(tb, u)}})
	if rec.Code != http.StatusSeeOther {
		tb.Fatalf("login %s: status %d: %s", u.email, rec.Code, rec.Body.String())
	}
}

// fixture submission
type sub struct {
	id       int64
	intakeID string
	receipt  string
}

var subCounter struct {
	sync.Mutex
	n int
}

// insert stores a submission as transfer would, as the database owner.
func (a *app) insert(tb testing.TB, formID string, answers forms.Answers, receivedAt time.Time, status string) sub {
	tb.Helper()
	subCounter.Lock()
	subCounter.n++
	n := subCounter.n
	subCounter.Unlock()
	b, err := json.Marshal(answers)
	if err != nil {
		tb.Fatal(err)
	}
	s := sub{intakeID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), receipt: testReceipt(n)}
	err = a.owner.QueryRow(context.Background(), `INSERT INTO submissions
  (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers, status, search)
VALUES ($1::uuid, $2, $3, $4, '1', '0123456789abcdef', $5, $5, $6, $7, array_to_tsvector($8::text[])) RETURNING id`,
		s.intakeID, n, s.receipt, formID, receivedAt, b, status, textsearch.AnswerWords(answers)).Scan(&s.id)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// exportOne exports the one submission of form q as FHIR NDJSON, checks
// it against q (the strict check), and returns it parsed and as written.
func (a *app) exportOne(t *testing.T, q *forms.Questionnaire) (QuestionnaireResponse, string) {
	t.Helper()
	var nd bytes.Buffer
	if _, err := a.srv.exporter.Export(context.Background(), &nd, "ndjson", "test", ExportFilter{FormID: q.ID}); err != nil {
		t.Fatal(err)
	}
	var qr QuestionnaireResponse
	if err := json.Unmarshal(bytes.TrimSpace(nd.Bytes()), &qr); err != nil {
		t.Fatalf("%v: %s", err, nd.Bytes())
	}
	if p := q.CheckResponse(qr.Item); len(p) > 0 {
		t.Errorf("export does not fit the form: %v", p)
	}
	return qr, nd.String()
}

// exportCSVRow exports the one submission of formID as CSV and returns the
// header and the row by column.
func (a *app) exportCSVRow(t *testing.T, formID string) (header []string, row map[string]string) {
	t.Helper()
	var out bytes.Buffer
	if _, err := a.srv.exporter.Export(context.Background(), &out, "csv", "test", ExportFilter{FormID: formID}); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(records) != 2 {
		t.Fatalf("CSV: %v %q", err, records)
	}
	row = map[string]string{}
	for i, col := range records[0] {
		row[col] = records[1][i]
	}
	return records[0], row
}

// newFormApp is a clinical app that knows the built-in forms and the
// Questionnaire in formJSON, which it returns parsed.
func newFormApp(t *testing.T, formJSON string) (*app, *forms.Questionnaire) {
	t.Helper()
	q, reg := formstest.Registry(t, formJSON, forms.Builtin().List()...)
	return newApp(t, func(c *ServeConfig) { c.Forms = reg }), q
}

// testReceipt makes a well-formed, unique receipt from n.
func testReceipt(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var raw []byte
	for i := 0; i < 20; i++ {
		raw = append(raw, alphabet[(n*(i+7)+i*i)%32])
	}
	for i := 0; i < 4; i++ {
		raw = append(raw, alphabet[(n>>(5*(3-i)))&31])
	}
	r, _ := NormaliseReceipt(string(raw))
	return r
}

func str(s string) forms.Value { return forms.Value{ValueString: &s} }

func patient(family, given, history string) forms.Answers {
	a := forms.Answers{"family-name": {str(family)}, "given-name": {str(given)}}
	if history != "" {
		a["medications"] = []forms.Value{str(history)}
	}
	return a
}

func (a *app) countAudit(tb testing.TB, action string) int {
	tb.Helper()
	var n int
	if err := a.owner.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1`, action).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// auditText is the whole audit log as text, to search for leaked content.
func (a *app) auditText(tb testing.TB) string {
	tb.Helper()
	var s string
	if err := a.owner.QueryRow(context.Background(), `SELECT coalesce(string_agg(actor || ' ' || action || ' ' || target || ' ' || detail, E'\n'), '') FROM audit_log`).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

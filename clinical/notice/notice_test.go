package notice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// smtpServer is a real SMTP server process (Debian's python3-aiosmtpd)
// that stores every message it accepts in a maildir.
type smtpServer struct {
	addr    string
	maildir string
	cmd     *exec.Cmd
}

const aiosmtpdPython = "/usr/bin/python3"

func startSMTP(t *testing.T, extra ...string) *smtpServer {
	t.Helper()
	if out, err := exec.Command(aiosmtpdPython, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		t.Fatalf("the notice tests need a real SMTP server: apt-get install python3-aiosmtpd (%v: %s)", err, out)
	}
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := append([]string{"-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + strconv.Itoa(port)}, extra...)
	args = append(args, "-c", "aiosmtpd.handlers.Mailbox", maildir)
	cmd := exec.Command(aiosmtpdPython, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &smtpServer{addr: "127.0.0.1:" + strconv.Itoa(port), maildir: maildir, cmd: cmd}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if i == 300 {
			t.Fatalf("SMTP server did not start on %s: %v", s.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// messages returns every message the server stored, parsed.
func (s *smtpServer) messages(t *testing.T) []*mail.Message {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.maildir, "new", "*"))
	var out []*mail.Message
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("stored message does not parse: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func body(t *testing.T, m *mail.Message) string {
	t.Helper()
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type fixture struct {
	owner *pgxpool.Pool
	app   *pgxpool.Pool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	ownerURL := pgtest.NewDB(t, "clinical", migrations.Clinical())
	owner, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	app, err := pgxpool.New(ctx, pgtest.URLAs(t, ownerURL, "airlock_clinical_app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return &fixture{owner: owner, app: app}
}

// Patient data the notices must never carry.
const (
	patientName = "Zebedee Quartermain"
	allergy     = "penicillin anaphylaxis"
)

var succession int64

// deliver inserts a submission as transfer would and returns its receipt.
func (f *fixture) deliver(t *testing.T, formID string) string {
	t.Helper()
	succession++
	receipt := fmt.Sprintf("RCPT-%04d-SECRET", succession)
	_, err := f.owner.Exec(context.Background(), `
		INSERT INTO submissions (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
		VALUES (gen_random_uuid(), $1, $2, $3, '1', 'k1', now(), now(), $4)`,
		succession, receipt, formID, fmt.Sprintf(`{"family-name":%q,"allergies":%q}`, patientName, allergy))
	if err != nil {
		t.Fatal(err)
	}
	return receipt
}

func (f *fixture) quarantine(t *testing.T) {
	t.Helper()
	_, err := f.owner.Exec(context.Background(), `
		INSERT INTO quarantine (digest, reason, intake_seq, intake_id, form_id, form_version, key_id, received_at, envelope, mac)
		VALUES (sha256(gen_random_uuid()::text::bytea), 'mac', 1, gen_random_uuid(), 'f', '1', 'k1', now(), '\x00', '\x00')`)
	if err != nil {
		t.Fatal(err)
	}
}

func titles(id string) string {
	return map[string]string{"registration": "New patient registration", "allergy": "Allergy update"}[id]
}

func testConfig(t *testing.T, s *smtpServer) *Config {
	t.Helper()
	env := map[string]string{
		"CLINICAL_NOTIFY_SMTP": "smtp://" + s.addr,
		"CLINICAL_NOTIFY_TO":   "staff@clinic.example, Front Desk <desk@clinic.example>",
		"CLINICAL_NOTIFY_FROM": "airlock@clinic.example",
	}
	r := config.NewReader(func(k string) string { return env[k] })
	c := LoadConfig(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	c.Timeout = 20 * time.Second
	return c
}

func quietLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func TestDigestCountsAndCarriesNoPatientData(t *testing.T) {
	f := newFixture(t)
	s := startSMTP(t)
	n := New(testConfig(t, s), f.app, titles, quietLog())
	ctx := context.Background()

	var receipts []string
	for range 3 {
		receipts = append(receipts, f.deliver(t, "registration"))
	}
	receipts = append(receipts, f.deliver(t, "allergy"))
	f.quarantine(t)

	d, err := n.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Submissions() != 4 || d.Quarantined != 1 {
		t.Fatalf("digest counted %d submissions, %d quarantined; want 4 and 1", d.Submissions(), d.Quarantined)
	}
	msgs := s.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	m := msgs[0]
	text := body(t, m)
	for _, want := range []string{"3 new submissions on New patient registration", "1 new submission on Allergy update", "1 row quarantined"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice body lacks %q:\n%s", want, text)
		}
	}
	if got := m.Header.Get("Subject"); got != "Airlock: 4 new submissions; 1 row quarantined" {
		t.Errorf("subject %q", got)
	}
	if to := m.Header.Get("To"); !strings.Contains(to, "staff@clinic.example") || !strings.Contains(to, "desk@clinic.example") {
		t.Errorf("To header %q names not every recipient", to)
	}
	// Nothing of a patient, an answer or a receipt, in headers or body.
	var all strings.Builder
	for k, v := range m.Header {
		fmt.Fprintf(&all, "%s: %s\n", k, strings.Join(v, " "))
	}
	all.WriteString(text)
	secrets := append([]string{patientName, "Zebedee", "Quartermain", allergy, "penicillin", "SECRET", "RCPT-"}, receipts...)
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(all.String()), strings.ToLower(s)) {
			t.Errorf("notice carries patient data %q:\n%s", s, all.String())
		}
	}

	// Nothing new: nothing sent.
	if d, err := n.Tick(ctx); err != nil || !d.Empty() {
		t.Fatalf("second tick: %+v, %v; want an empty digest", d, err)
	}
	if got := len(s.messages(t)); got != 1 {
		t.Fatalf("%d messages after a tick with nothing new, want still 1", got)
	}

	// One more arrives: the next notice counts only it.
	f.deliver(t, "allergy")
	if _, err := n.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	msgs = s.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Header.Get("Subject") == "Airlock: 1 new submission" {
			return
		}
	}
	t.Fatalf("no notice says exactly 1 new submission")
}

// A failed send marks nothing: the same rows are reported once the server
// is back.
func TestFailedSendKeepsRowsForTheNextNotice(t *testing.T) {
	f := newFixture(t)
	s := startSMTP(t)
	cfg := testConfig(t, s)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	n := New(cfg, f.app, titles, quietLog())
	f.deliver(t, "registration")
	f.deliver(t, "registration")
	if _, err := n.Tick(context.Background()); err == nil {
		t.Fatal("tick succeeded with the SMTP server down")
	}

	s2 := startSMTP(t)
	cfg.Server = s2.addr
	d, err := n.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Submissions() != 2 {
		t.Fatalf("after the failed send the digest counted %d, want 2", d.Submissions())
	}
	if len(s2.messages(t)) != 1 {
		t.Fatal("no message after the server came back")
	}
}

// Two app replicas ticking together report each row once between them.
func TestConcurrentNotifiersCountEachRowOnce(t *testing.T) {
	f := newFixture(t)
	s := startSMTP(t)
	cfg := testConfig(t, s)
	for range 20 {
		f.deliver(t, "registration")
	}
	var wg sync.WaitGroup
	counts := make([]int, 4)
	errs := make([]error, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := New(cfg, f.app, titles, quietLog()).Tick(context.Background())
			counts[i], errs[i] = d.Submissions(), err
		}()
	}
	wg.Wait()
	total := 0
	for i := range counts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += counts[i]
	}
	if total != 20 {
		t.Fatalf("replicas counted %d rows between them, want 20 (%v)", total, counts)
	}
	if got := len(s.messages(t)); got != 1 {
		t.Fatalf("%d notices for one batch of rows, want 1", got)
	}
}

// smtps:// speaks TLS from the first byte and checks the server's
// certificate against CLINICAL_NOTIFY_SMTP_CA_FILE.
func TestImplicitTLSWithClinicCA(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	s := startSMTP(t, "--smtpscert", certFile, "--smtpskey", keyFile)
	env := map[string]string{
		"CLINICAL_NOTIFY_SMTP":         "smtps://" + s.addr,
		"CLINICAL_NOTIFY_SMTP_CA_FILE": certFile,
		"CLINICAL_NOTIFY_TO":           "staff@clinic.example",
		"CLINICAL_NOTIFY_FROM":         "airlock@clinic.example",
	}
	r := config.NewReader(func(k string) string { return env[k] })
	cfg := LoadConfig(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, "allergy")
	if _, err := New(cfg, f.app, titles, quietLog()).Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.messages(t)) != 1 {
		t.Fatal("no message over smtps")
	}

	// Without the clinic's CA the certificate is not trusted: nothing is
	// sent and the row waits.
	cfg.RootCAs = nil
	f.deliver(t, "allergy")
	if _, err := New(cfg, f.app, titles, quietLog()).Tick(context.Background()); err == nil {
		t.Fatal("sent to a server whose certificate no trusted root signed")
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	ok := map[string]string{
		"CLINICAL_NOTIFY_SMTP": "smtp://mail.clinic.example:587",
		"CLINICAL_NOTIFY_TO":   "staff@clinic.example",
		"CLINICAL_NOTIFY_FROM": "airlock@clinic.example",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		if v == "<unset>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"scheme", with("CLINICAL_NOTIFY_SMTP", "http://mail:25"), "CLINICAL_NOTIFY_SMTP:"},
		{"credentials in URL", with("CLINICAL_NOTIFY_SMTP", "smtp://u:p@mail:25"), "CLINICAL_NOTIFY_SMTP: must not carry credentials"},
		{"path", with("CLINICAL_NOTIFY_SMTP", "smtp://mail:25/x"), "CLINICAL_NOTIFY_SMTP:"},
		{"no host", with("CLINICAL_NOTIFY_SMTP", "smtp://"), "CLINICAL_NOTIFY_SMTP:"},
		{"to missing", with("CLINICAL_NOTIFY_TO", "<unset>"), "CLINICAL_NOTIFY_TO:"},
		{"to bad", with("CLINICAL_NOTIFY_TO", "not-an-address"), "CLINICAL_NOTIFY_TO:"},
		{"to injection", with("CLINICAL_NOTIFY_TO", "a@b.example\r\nBcc: x@y.example"), "CLINICAL_NOTIFY_TO:"},
		{"from missing", with("CLINICAL_NOTIFY_FROM", "<unset>"), "CLINICAL_NOTIFY_FROM:"},
		{"interval", with("CLINICAL_NOTIFY_INTERVAL", "10s"), "CLINICAL_NOTIFY_INTERVAL:"},
		{"interval bad", with("CLINICAL_NOTIFY_INTERVAL", "often"), "CLINICAL_NOTIFY_INTERVAL:"},
		{"user without password", with("CLINICAL_NOTIFY_SMTP_USERNAME", "airlock"), "CLINICAL_NOTIFY_SMTP_USERNAME:"},
		{"ca file", with("CLINICAL_NOTIFY_SMTP_CA_FILE", pw), "CLINICAL_NOTIFY_SMTP_CA_FILE:"},
		{"to without smtp", map[string]string{"CLINICAL_NOTIFY_TO": "a@b.example"}, "CLINICAL_NOTIFY_SMTP: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := config.NewReader(func(k string) string { return c.env[k] })
			LoadConfig(r)
			if err := r.Err(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want one starting %q", err, c.want)
			}
		})
	}

	good := with("CLINICAL_NOTIFY_SMTP_USERNAME", "airlock")
	good["CLINICAL_NOTIFY_SMTP_PASSWORD_FILE"] = pw
	r := config.NewReader(func(k string) string { return good[k] })
	c := LoadConfig(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Server != "mail.clinic.example:587" || c.Password != "s3cret" || c.Interval != 5*time.Minute || c.ImplicitTLS {
		t.Fatalf("config %+v", c)
	}
	if r := config.NewReader(func(string) string { return "" }); LoadConfig(r) != nil || r.Err() != nil {
		t.Fatal("notices are on with nothing set")
	}
}

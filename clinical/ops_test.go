package clinical

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
)

// TestEraseAndRetention: an admin erases one submission by its receipt,
// retention deletes old done submissions; both audited, chain intact.
func TestEraseAndRetention(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	adm := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
	day := a.clock.now().Add(-400 * 24 * time.Hour)
	erased := a.insert(t, "new-patient", patient("Doe", "Jane", ""), day, ReviewNew)
	kept := a.insert(t, "new-patient", patient("Doe", "John", ""), day, ReviewNew)
	oldDone := a.insert(t, "new-patient", patient("Roe", "Rita", ""), day, ReviewDone)
	newDone := a.insert(t, "new-patient", patient("Poe", "Paul", ""), a.clock.now(), ReviewDone)
	a.owner.Exec(t.Context(), `INSERT INTO submission_notes (submission_id, staff_id, body) VALUES ($1, $2, 'note')`, erased.id, adm.id)

	c := a.client()
	c.login(t, adm)
	// The receipt alone asks for confirmation, naming it, and erases nothing.
	confirm := c.post("/admin/erase", url.Values{"receipt": {strings.ToLower(erased.receipt)}})
	body := confirm.Body.String()
	if confirm.Code != http.StatusOK || !strings.Contains(body, `<code id="erase-receipt">`+erased.receipt+`</code>`) ||
		!strings.Contains(body, `<button type="submit" class="danger" id="erase">Erase receipt `+erased.receipt+`</button>`) ||
		!strings.Contains(body, `<input type="hidden" name="confirm" value="yes">`) || !strings.Contains(body, "New patient registration") {
		t.Errorf("erase without confirming: %d, want a confirmation naming the receipt:\n%s", confirm.Code, body)
	}
	if a.countAudit(t, "submission.erase") != 0 {
		t.Errorf("the confirmation step erased")
	}
	if rec := c.post("/admin/erase", url.Values{"receipt": {"not-a-receipt"}, "confirm": {"yes"}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("malformed receipt: %d, want 422", rec.Code)
	}
	if rec := c.post("/admin/erase", url.Values{"receipt": {testReceipt(999999)}, "confirm": {"yes"}}); rec.Code != http.StatusNotFound {
		t.Errorf("unknown receipt: %d, want 404", rec.Code)
	}
	done := c.post("/admin/erase", url.Values{"receipt": {erased.receipt}, "confirm": {"yes"}})
	if done.Code != http.StatusOK {
		t.Fatalf("erase: %d", done.Code)
	}
	if !strings.Contains(done.Body.String(), `Erased the submission with receipt <code>`+erased.receipt+`</code>`) {
		t.Errorf("the page does not say which receipt was erased:\n%s", done.Body.String())
	}
	exists := func(s sub) bool {
		var n int
		a.owner.QueryRow(t.Context(), `SELECT count(*) FROM submissions WHERE id = $1`, s.id).Scan(&n)
		return n == 1
	}
	if exists(erased) || !exists(kept) {
		t.Errorf("erasure: erased row exists %v, other row exists %v", exists(erased), exists(kept))
	}

	n, err := RunRetention(t.Context(), a.srv.subs, a.srv.audit, "test", 365*24*time.Hour, a.clock.now(), nil)
	if err != nil || n != 1 || exists(oldDone) || !exists(newDone) || !exists(kept) {
		t.Errorf("retention: %d deleted (%v); old done gone %v, recent done kept %v, not done kept %v", n, err, !exists(oldDone), exists(newDone), exists(kept))
	}
	if a.countAudit(t, "submission.erase") != 1 || a.countAudit(t, "retention.delete") != 1 {
		t.Errorf("erasure or retention not audited")
	}
	if _, err := a.srv.audit.Verify(t.Context()); err != nil {
		t.Errorf("audit chain after erasure and retention: %v", err)
	}
	// The command refuses to run without a policy, and runs with one.
	env := map[string]string{"CLINICAL_DATABASE_URL": a.appURL, "CLINICAL_SECRET_KEY": a.secret.String()}
	var out strings.Builder
	if err := Run(t.Context(), cliEnv(env, &out, io.Discard, "retention", "run")); exitCode(err) != 2 {
		t.Errorf("retention run without CLINICAL_RETENTION: exit %d, want 2", exitCode(err))
	}
	env["CLINICAL_RETENTION"] = "1h"
	if err := Run(t.Context(), cliEnv(env, &out, io.Discard, "retention", "run")); exitCode(err) != 2 {
		t.Errorf("retention under a day: exit %d, want 2", exitCode(err))
	}
	env["CLINICAL_RETENTION"] = "8760h"
	if err := Run(t.Context(), cliEnv(env, &out, io.Discard, "retention", "run")); err != nil || !strings.Contains(out.String(), `{"deleted":0}`) {
		t.Errorf("retention run: %v %q", err, out.String())
	}
}

// TestAuditPageDetectsTampering: the admin's verify button finds an edited
// and a deleted entry, as `clinical audit verify` does.
func TestAuditPageDetectsTampering(t *testing.T) {
	t.Parallel()
	for _, tamper := range []string{
		`UPDATE audit_log SET detail = '{"reason":"nothing happened"}' WHERE id = 2`,
		`DELETE FROM audit_log WHERE id = 2`,
	} {
		a := newApp(t)
		adm := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
		c := a.client()
		c.login(t, adm)
		if rec := c.post("/admin/audit/verify", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Audit chain intact") {
			t.Fatalf("verify before tampering: %d", rec.Code)
		}
		if _, err := a.owner.Exec(t.Context(), tamper); err != nil {
			t.Fatal(err)
		}
		rec := c.post("/admin/audit/verify", nil)
		if !strings.Contains(rec.Body.String(), "audit chain broken at entry") {
			t.Errorf("%s: not detected on the audit page", tamper)
		}
		var brk *ChainBreak
		if _, err := a.srv.audit.Verify(t.Context()); !errors.As(err, &brk) {
			t.Errorf("%s: Verify says %v", tamper, err)
		}
		if page := c.get("/admin/audit"); page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "login.success") {
			t.Errorf("audit page: %d", page.Code)
		}
	}
}

// TestServeConfig: plain HTTP only on loopback or when asked; every bad
// setting is a usage error naming its variable.
func TestServeConfig(t *testing.T) {
	t.Parallel()
	key, _ := NewSecretKey()
	base := map[string]string{"CLINICAL_DATABASE_URL": "postgres://u@h/db", "CLINICAL_SECRET_KEY": key.String()}
	for _, tc := range []struct {
		env  map[string]string
		want string // "" ok, else the variable named
	}{
		{map[string]string{}, ""},
		{map[string]string{"CLINICAL_ADDR": "[::1]:8444"}, ""},
		{map[string]string{"CLINICAL_ADDR": "localhost:8444"}, ""},
		{map[string]string{"CLINICAL_ADDR": ":8444"}, "CLINICAL_TLS_CERT"},
		{map[string]string{"CLINICAL_ADDR": "10.0.0.5:8444"}, "CLINICAL_TLS_CERT"},
		{map[string]string{"CLINICAL_ADDR": "10.0.0.5:8444", "CLINICAL_PLAIN_HTTP": "1"}, ""},
		{map[string]string{"CLINICAL_TLS_CERT": "c.pem"}, "CLINICAL_TLS_CERT"},
		{map[string]string{"CLINICAL_TLS_CERT": "c.pem", "CLINICAL_TLS_KEY": "k.pem", "CLINICAL_PLAIN_HTTP": "1"}, "CLINICAL_PLAIN_HTTP"},
		{map[string]string{"CLINICAL_ADDR": "nope"}, "CLINICAL_ADDR"},
		{map[string]string{"CLINICAL_SESSION_IDLE": "soon"}, "CLINICAL_SESSION_IDLE"},
		{map[string]string{"CLINICAL_SESSION_MAX": "-1h"}, "CLINICAL_SESSION_MAX"},
		{map[string]string{"CLINICAL_SESSION_IDLE": "13h"}, "CLINICAL_SESSION_IDLE"},
		{map[string]string{"CLINICAL_RETENTION": "1h"}, "CLINICAL_RETENTION"},
		{map[string]string{"CLINICAL_SECRET_KEY": "short"}, "CLINICAL_SECRET_KEY"},
		{map[string]string{"CLINICAL_NOTIFY_SMTP": "smtp://127.0.0.1:25", "CLINICAL_NOTIFY_TO": "a@clinic.example", "CLINICAL_NOTIFY_FROM": "b@clinic.example"}, ""},
		{map[string]string{"CLINICAL_NOTIFY_SMTP": "smtp://127.0.0.1:25", "CLINICAL_NOTIFY_FROM": "b@clinic.example"}, "CLINICAL_NOTIFY_TO"},
		{map[string]string{"CLINICAL_NOTIFY_TO": "a@clinic.example"}, "CLINICAL_NOTIFY_SMTP"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		_, err := LoadServeConfig(func(k string) string { return env[k] })
		var ue *cli.UsageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want != "" && (!errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, tc.want+":")):
			t.Errorf("%v: %v, want a usage error naming %s", tc.env, err, tc.want)
		}
	}
}

// TestServeCommand boots the real `clinical serve` on a free loopback port,
// waits for its listening line, checks health and a page, and stops it.
func TestServeCommand(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	env := map[string]string{"CLINICAL_DATABASE_URL": a.appURL, "CLINICAL_SECRET_KEY": a.secret.String(), "CLINICAL_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cliEnv(env, io.Discard, pw, "serve"))
		pw.Close()
	}()
	var addr string
	lines := bufio.NewScanner(pr)
	deadline := time.AfterFunc(20*time.Second, func() { pw.CloseWithError(errors.New("timeout")) })
	var logged strings.Builder
	for lines.Scan() {
		logged.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), `"msg":"clinical listening"`) {
			i := strings.Index(lines.Text(), `"addr":"`) + len(`"addr":"`)
			addr = lines.Text()[i : i+strings.Index(lines.Text()[i:], `"`)]
			break
		}
	}
	deadline.Stop()
	copied := make(chan struct{})
	go func() { io.Copy(&logged, pr); close(copied) }()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		cancel()
		t.Fatalf("no listening line with an address: %q", addr)
	}
	for _, p := range []string{"/healthz", "/login"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", p, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	<-copied
	if !strings.Contains(logged.String(), `"msg":"audit chain head"`) {
		t.Errorf("no audit chain head in the log:\n%s", logged.String())
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{
		"", "short", "elevenchars", "password1234", "Password1234!", "P@ssw0rd2024!!", "iloveyou123456",
		"qwertyuiopasdf", "123456789012", "aaaaaaaaaaaaaaa", "abcabcabcabc", "zyxwvutsrqpon",
		"correcthorsebatterystaple", "Correct Horse Battery Staple", "doctor.who@x1234", "doctor.who2024!",
		strings.Repeat("x", 257) + "y",
	} {
		if CheckPassword(pw, "doctor.who@clinic.example") == nil {
			t.Errorf("%q accepted", pw)
		}
	}
	for _, pw := range []string{"violet tram orbit 42", "quiet lantern seventy rivers", "839204719283", "Tägliche Übung macht 7"} {
		if err := CheckPassword(pw, "doctor.who@clinic.example"); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	if n := len(commonPasswords()); n < 500 {
		t.Errorf("only %d common passwords", n)
	}
}

func TestPasswordHashes(t *testing.T) {
	t.Parallel()
	p := NewPasswords(cheapArgon2)
	h, err := p.Hash("violet tram orbit 42")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q: %v", h, err)
	}
	if ok, err := p.Verify(h, "violet tram orbit 42"); !ok || err != nil {
		t.Errorf("right password: %v %v", ok, err)
	}
	if ok, _ := p.Verify(h, "violet tram orbit 43"); ok {
		t.Errorf("wrong password accepted")
	}
	// Parameters come from the stored hash, not the hasher.
	if ok, _ := NewPasswords(DefaultArgon2).Verify(h, "violet tram orbit 42"); !ok {
		t.Errorf("a hash with other parameters does not verify")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := p.Verify(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

// TestAuditHeadGoingBackwardsIsLogged: serve remembers the newest entry it
// appended or saw, and its periodic head check logs an error when the
// database no longer holds it (the tail was cut, then maybe continued).
func TestAuditHeadGoingBackwardsIsLogged(t *testing.T) {
	t.Parallel()
	const alarm = `"msg":"audit chain head went backwards"`
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, a *app, newest *Entry)
		alarm  bool
	}{
		{"another instance appends", func(t *testing.T, a *app, _ *Entry) {
			if _, err := NewAudit(a.srv.pool, a.secret).Append(t.Context(), "staff:9", "view", "", map[string]int{}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"newest entry deleted", func(t *testing.T, a *app, newest *Entry) {
			a.ownerExec(t, `DELETE FROM audit_log WHERE id = $1`, newest.ID)
		}, true},
		{"newest entry deleted, then this app appends", func(t *testing.T, a *app, newest *Entry) {
			a.ownerExec(t, `DELETE FROM audit_log WHERE id = $1`, newest.ID)
			if _, err := a.srv.audit.Append(t.Context(), "staff:1", "view", "", map[string]int{}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"newest entry deleted, id sequence reset, another instance appends", func(t *testing.T, a *app, newest *Entry) {
			a.ownerExec(t, `DELETE FROM audit_log WHERE id = $1`, newest.ID)
			a.ownerExec(t, `SELECT setval('audit_log_id_seq', $1)`, newest.ID-1)
			if _, err := NewAudit(a.srv.pool, a.secret).Append(t.Context(), "staff:9", "view", "", map[string]int{}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"an entry inside the chain deleted", func(t *testing.T, a *app, newest *Entry) {
			a.ownerExec(t, `DELETE FROM audit_log WHERE seq = $1`, newest.Seq-1)
		}, true},
		{"entry seen at the last check deleted", func(t *testing.T, a *app, _ *Entry) {
			e, err := NewAudit(a.srv.pool, a.secret).Append(t.Context(), "staff:9", "view", "", map[string]int{})
			if err != nil {
				t.Fatal(err)
			}
			a.srv.logAuditHead(t.Context())
			a.ownerExec(t, `DELETE FROM audit_log WHERE id = $1`, e.ID)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			var newest *Entry
			for i := range 3 {
				e, err := a.srv.audit.Append(t.Context(), "staff:1", "view", fmt.Sprintf("submission:%d", i), map[string]int{})
				if err != nil {
					t.Fatal(err)
				}
				newest = e
			}
			a.srv.logAuditHead(t.Context())
			if strings.Contains(a.logs.String(), alarm) {
				t.Fatalf("alarm on an intact log:\n%s", a.logs.String())
			}
			tc.change(t, a, newest)
			a.srv.logAuditHead(t.Context())
			logged := a.logs.String()
			if got := strings.Contains(logged, alarm) && strings.Contains(logged, `"level":"ERROR"`); got != tc.alarm {
				t.Errorf("alarm logged %v, want %v:\n%s", got, tc.alarm, logged)
			}
			// Each event is logged once: the head now is the new reference.
			a.srv.logAuditHead(t.Context())
			if n := strings.Count(a.logs.String(), alarm); n != strings.Count(logged, alarm) {
				t.Errorf("the alarm was logged again at the next check (%d times)", n)
			}
			// And counted once, for the AirlockAuditHeadWentBackwards alert.
			rec := httptest.NewRecorder()
			a.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			want := fmt.Sprintf("airlock_clinical_audit_head_went_back_total %d\n", strings.Count(logged, alarm))
			if !strings.Contains(rec.Body.String(), want) || (tc.alarm && strings.Contains(want, " 0\n")) {
				t.Errorf("/metrics lacks %q", want)
			}
		})
	}
}

// TestServeConfigTLSFiles: the certificate and key are loaded with the
// settings, so a missing, unreadable or unusable file is exit 2 with one
// line naming the variable, never the file's contents.
func TestServeConfigTLSFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA := testCertPair(t)
	_, keyB := testCertPair(t)
	cert, key, otherKey := write("cert.pem", certA), write("key.pem", keyA), write("other-key.pem", keyB)
	junk := write("junk.pem", []byte("-----BEGIN PRIVATE KEY-----\nSECRET-MARKER-42\n-----END PRIVATE KEY-----\n"))
	missing := filepath.Join(dir, "missing.pem")
	secret, _ := NewSecretKey()
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"a good pair", cert, key, ""},
		{"no certificate file", missing, key, "CLINICAL_TLS_CERT"},
		{"no key file", cert, missing, "CLINICAL_TLS_KEY"},
		{"a directory as the key", cert, dir, "CLINICAL_TLS_KEY"},
		{"key of another certificate", cert, otherKey, "CLINICAL_TLS_CERT"},
		{"junk as the key", cert, junk, "CLINICAL_TLS_CERT"},
		{"junk as the certificate", junk, key, "CLINICAL_TLS_CERT"},
	} {
		env := map[string]string{"CLINICAL_DATABASE_URL": "postgres://u@127.0.0.1:1/db", "CLINICAL_SECRET_KEY": secret.String(),
			"CLINICAL_ADDR": "10.0.0.5:8444", "CLINICAL_TLS_CERT": tc.cert, "CLINICAL_TLS_KEY": tc.key}
		cfg, err := LoadServeConfig(func(k string) string { return env[k] })
		if tc.want == "" {
			if err != nil || cfg.Certificate == nil {
				t.Errorf("%s: %v, want the pair loaded", tc.name, err)
			}
			continue
		}
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, tc.want+":") || strings.Contains(ue.Msg, "\n") ||
			strings.Contains(ue.Msg, "SECRET-MARKER") {
			t.Errorf("%s: %v, want one line naming %s", tc.name, err, tc.want)
		}
		// The command itself exits 2 before it touches the database.
		err = Run(t.Context(), cliEnv(env, io.Discard, io.Discard, "serve"))
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: serve exit %d (%v), want 2 naming %s", tc.name, exitCode(err), err, tc.want)
		}
	}
}

// testCertPair makes a self-signed ECDSA certificate and its key, PEM.
func testCertPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clinical.test"},
		DNSNames: []string{"clinical.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// ownerExec runs sql as the database owner, who can edit any row.
func (a *app) ownerExec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := a.owner.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

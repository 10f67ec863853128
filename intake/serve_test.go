package intake_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

var listeningRE = regexp.MustCompile(`"msg":"intake listening","addr":"([^"]+)".*"metrics":"([^"]*)"`)

// TestServeMetricsListener boots `intake serve` in-process and checks that
// metrics are served on their own listener and not on the public one, and
// that the server stops cleanly.
func TestServeMetricsListener(t *testing.T) {
	t.Parallel()
	env := serveEnv(t)
	env["INTAKE_METRICS_ADDR"] = "127.0.0.1:0"
	public, metrics, stop, stderr := startServe(t, env, "http://")
	if metrics == "" {
		t.Fatalf("no metrics address logged:\n%s", stderr.String())
	}
	metrics = "http://" + metrics

	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(public + "/forms/new-patient"); code != http.StatusOK {
		t.Errorf("public form page: %d", code)
	}
	if code := get(public + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", code)
	}
	if code := get(metrics + "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics on the metrics listener: %d, want 200", code)
	}
	if code := get(metrics + "/forms/new-patient"); code != http.StatusNotFound {
		t.Errorf("a form on the metrics listener: %d, want 404", code)
	}

	if err := stop(); err != nil {
		t.Errorf("serve returned %v after SIGTERM-like cancel", err)
	}
	if !strings.Contains(stderr.String(), `"msg":"intake stopped"`) {
		t.Errorf("no clean stop logged")
	}
}

// serveEnv is an `intake serve` environment on a fresh database, plain
// HTTP on a free port.
func serveEnv(t *testing.T) map[string]string {
	t.Helper()
	k := newTestKeys(t)
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	env := validEnv(k)
	env["INTAKE_DATABASE_URL"] = pgtest.URLAs(t, owner, "airlock_intake_writer")
	env["INTAKE_ADDR"] = "127.0.0.1:0"
	return env
}

// startServe runs `intake serve` in-process until stop is called, and
// returns its public base URL and metrics address.
func startServe(t *testing.T, env map[string]string, scheme string) (public, metrics string, stop func() error, stderr *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- intake.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: getenv(env), Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr})
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(25 * time.Second):
			t.Fatal("serve did not stop")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			return scheme + m[1], m[2], stop, stderr
		}
		select {
		case err := <-done:
			t.Fatalf("intake serve exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("intake serve did not start listening:\n%s", stderr.String())
	return
}

// TestServeTLS boots `intake serve` with certificate files: TLS 1.2 and
// 1.3 with HTTP/2 are served with the security headers, TLS 1.1 and a
// CBC suite are refused, and plain HTTP on the TLS port gets nowhere.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	env := serveEnv(t)
	certFile, keyFile := writeTLSPair(t, t.TempDir())
	delete(env, "INTAKE_PLAIN_HTTP")
	env["INTAKE_TLS_CERT"], env["INTAKE_TLS_KEY"] = certFile, keyFile
	public, _, _, stderr := startServe(t, env, "https://")

	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	client := func(cfg *tls.Config) *http.Client {
		cfg.RootCAs, cfg.ServerName = roots, "intake.test"
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		resp, err := client(&tls.Config{MinVersion: v, MaxVersion: v}).Get(public + "/forms/new-patient")
		if err != nil {
			t.Fatalf("TLS %x: %v", v, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Errorf("TLS %x: status %d over %s, want 200 over HTTP/2", v, resp.StatusCode, resp.Proto)
		}
		checkSecurityHeaders(t, resp.Header)
	}
	if _, err := client(&tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}).Get(public + "/healthz"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	cbc := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	if _, err := client(cbc).Get(public + "/healthz"); err == nil {
		t.Error("a CBC cipher suite accepted")
	}
	plain := strings.Replace(public, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served on the TLS port")
		}
	}
	// The refused handshakes are logged without the client's address.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(stderr.String(), `"msg":"http server"`); {
		time.Sleep(20 * time.Millisecond)
	}
	logged := false
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, `"msg":"http server"`) {
			logged = true
			if strings.Contains(line, "127.0.0.1") {
				t.Errorf("a server error names the client: %s", line)
			}
		}
	}
	if !logged {
		t.Errorf("refused handshakes were not logged at all:\n%s", stderr.String())
	}
}

// TestServeRefusesAWrongLogin: serve starts only with a login that can
// store submissions and cannot read them back; with transfer's login (which
// can read and delete) or a superuser it refuses, naming the setting.
func TestServeRefusesAWrongLogin(t *testing.T) {
	t.Parallel()
	env := serveEnv(t)
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	for name, c := range map[string]struct{ url, want string }{
		"transfer's login": {pgtest.URLAs(t, owner, "airlock_intake_transfer"), "INTAKE_DATABASE_URL: the login lacks INSERT on submissions"},
		"superuser":        {owner, "INTAKE_DATABASE_URL: the login has SELECT on submissions, which airlock_intake_writer must never have"},
	} {
		env := maps.Clone(env)
		env["INTAKE_DATABASE_URL"] = c.url
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := intake.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: getenv(env), Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: serve returned %v, want an error containing %q", name, err, c.want)
		}
	}
}

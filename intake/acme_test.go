package intake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/airlockhq/airlock/intake"
)

// pebbleModule is the ACME test server the ACME test runs: Let's Encrypt's
// Pebble, built from the Go module proxy (a test-only tool, not a
// dependency of intake).
const pebbleModule = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"

// TestACMEWithPebble: intake, given INTAKE_ACME_* settings, obtains a
// certificate from a real ACME server (Pebble, on loopback) by TLS-ALPN-01
// on its own port and serves it. Pebble's validation really connects to
// intake: its DNS questions go to a resolver in this test that answers
// 127.0.0.1, and its tlsPort is intake's port (no PEBBLE_VA_ALWAYS_VALID).
func TestACMEWithPebble(t *testing.T) {
	t.Parallel()
	const domain = "forms.airlock.test"
	dir := t.TempDir()

	// Pebble's own HTTPS (its ACME API): a CA made here, which
	// INTAKE_ACME_CA_FILE hands to intake.
	caFile, certFile, keyFile := writeCAAndLeaf(t, dir)
	pebbleAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	cache := filepath.Join(dir, "acme-cache")

	env := serveEnv(t)
	delete(env, "INTAKE_PLAIN_HTTP")
	env["INTAKE_ACME_DOMAINS"] = domain
	env["INTAKE_ACME_CACHE"] = cache
	env["INTAKE_ACME_DIRECTORY"] = "https://" + pebbleAddr + "/dir"
	env["INTAKE_ACME_EMAIL"] = "ops@airlock.test"
	env["INTAKE_ACME_CA_FILE"] = caFile
	public, _, _, stderr := startServe(t, env, "https://")
	intakeURL, err := url.Parse(public)
	if err != nil {
		t.Fatal(err)
	}

	dnsAddr := startDNS(t)
	startPebble(t, dir, pebbleAddr, mgmtAddr, dnsAddr, intakeURL.Port(), certFile, keyFile, caFile)

	// Pebble's issuing root, from its management interface.
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pebbleTLS := x509.NewCertPool()
	pebbleTLS.AppendCertsFromPEM(caPEM)
	mgmt := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pebbleTLS}}}
	resp, err := mgmt.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if resp.StatusCode != http.StatusOK || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble roots: %d %s", resp.StatusCode, rootPEM)
	}

	// The first handshake for the domain makes intake obtain the
	// certificate (Pebble connects back to intake's port to validate);
	// the handshake waits for it. The client trusts Pebble's root only.
	client := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: domain, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	resp, err = client.Get("https://" + intakeURL.Host + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz over the ACME certificate: %v\nintake log:\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, domain) {
		t.Errorf("served certificate names %v, want %s", leaf.DNSNames, domain)
	}
	if resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("negotiated %q, want h2", resp.TLS.NegotiatedProtocol)
	}
	// Kept in the cache for the next start.
	entries, err := os.ReadDir(cache)
	if err != nil || !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), domain) }) {
		t.Errorf("no certificate for %s in INTAKE_ACME_CACHE: %v %v", domain, entries, err)
	}
	// A name intake was not configured for gets no certificate.
	conn, err := tls.Dial("tcp", intakeURL.Host, &tls.Config{RootCAs: roots, ServerName: "other.airlock.test"})
	if err == nil {
		conn.Close()
		t.Error("a handshake for an unconfigured name succeeded")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeCAAndLeaf makes a CA and a certificate it signs for 127.0.0.1 and
// localhost: Pebble's HTTPS identity.
func writeCAAndLeaf(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "airlock test ACME API CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = writeFile(t, dir, "pebble-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	certFile = writeFile(t, dir, "pebble-cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "pebble-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return caFile, certFile, keyFile
}

// startDNS serves DNS over TCP (what Pebble's -dnsserver speaks) on
// loopback: every A question is answered 127.0.0.1, every other question
// with no records.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveDNSConn(conn)
		}
	}()
	return ln.Addr().String()
}

func serveDNSConn(conn net.Conn) {
	defer conn.Close()
	for {
		conn.SetDeadline(time.Now().Add(time.Minute))
		var n uint16
		if binary.Read(conn, binary.BigEndian, &n) != nil {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(msg)
		if err != nil {
			return
		}
		q, err := p.Question()
		if err != nil {
			return
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		}
		out, err := b.Finish()
		if err != nil {
			return
		}
		if binary.Write(conn, binary.BigEndian, uint16(len(out))) != nil {
			return
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// startPebble builds Pebble from the module proxy and runs it on loopback,
// validating TLS-ALPN-01 on tlsPort with names resolved by dnsAddr.
func startPebble(t *testing.T, dir, addr, mgmtAddr, dnsAddr, tlsPort, certFile, keyFile, caFile string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "go", "install", pebbleModule)
	install.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", pebbleModule, err, out)
	}
	port, _ := strconv.Atoi(tlsPort)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": addr, "managementListenAddress": mgmtAddr,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": 5002, "tlsPort": port, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := writeFile(t, dir, "pebble.json", string(b))

	cmd := exec.Command(filepath.Join(bin, "pebble"), "-config", cfgFile, "-dnsserver", dnsAddr)
	// No random sleep before validating, no nonces refused for practice.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", out.String())
		}
	})
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get("https://" + addr + "/dir")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer on %s: %v\n%s", addr, err, out.String())
		}
	}
}

// TestACMESettings: the INTAKE_ACME_* settings load, and each bad one is
// exit 2 with one line naming it; ACME excludes the certificate files and
// plain HTTP.
func TestACMESettings(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	dir := t.TempDir()
	certFile, keyFile := writeTLSPair(t, dir)
	notPEM := writeFile(t, dir, "not.pem", "not a certificate\n")
	acmeEnv := func(set map[string]string) map[string]string {
		env := validEnv(k)
		delete(env, "INTAKE_PLAIN_HTTP")
		env["INTAKE_ACME_DOMAINS"] = "forms.example.org, Forms.Example.org,www.example.org"
		env["INTAKE_ACME_CACHE"] = filepath.Join(dir, "cache")
		for k, v := range set {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}
	cfg, err := intake.LoadConfig(getenv(acmeEnv(nil)))
	if err != nil {
		t.Fatalf("ACME settings: %v", err)
	}
	if a := cfg.ACME; a == nil || !slices.Equal(a.Domains, []string{"forms.example.org", "www.example.org"}) ||
		a.Directory != "https://acme-v02.api.letsencrypt.org/directory" || a.Roots != nil {
		t.Errorf("ACME config %+v: want two domains, Let's Encrypt's production directory, system roots", cfg.ACME)
	}
	for _, tc := range []struct {
		name, wantVar string
		set           map[string]string
	}{
		{"with certificate files", "INTAKE_ACME_DOMAINS", map[string]string{"INTAKE_TLS_CERT": certFile, "INTAKE_TLS_KEY": keyFile}},
		{"with plain HTTP", "INTAKE_PLAIN_HTTP", map[string]string{"INTAKE_PLAIN_HTTP": "1"}},
		{"no cache", "INTAKE_ACME_CACHE", map[string]string{"INTAKE_ACME_CACHE": ""}},
		{"cache is a file", "INTAKE_ACME_CACHE", map[string]string{"INTAKE_ACME_CACHE": notPEM}},
		{"wildcard", "INTAKE_ACME_DOMAINS", map[string]string{"INTAKE_ACME_DOMAINS": "*.example.org"}},
		{"IP address", "INTAKE_ACME_DOMAINS", map[string]string{"INTAKE_ACME_DOMAINS": "192.0.2.1"}},
		{"plain HTTP directory", "INTAKE_ACME_DIRECTORY", map[string]string{"INTAKE_ACME_DIRECTORY": "http://acme.example.org/dir"}},
		{"bad email", "INTAKE_ACME_EMAIL", map[string]string{"INTAKE_ACME_EMAIL": "not an address"}},
		{"CA file not PEM", "INTAKE_ACME_CA_FILE", map[string]string{"INTAKE_ACME_CA_FILE": notPEM}},
		{"CA file missing", "INTAKE_ACME_CA_FILE", map[string]string{"INTAKE_ACME_CA_FILE": filepath.Join(dir, "nope.pem")}},
		{"cache without domains", "INTAKE_ACME_CACHE", map[string]string{"INTAKE_ACME_DOMAINS": "", "INTAKE_PLAIN_HTTP": "1"}},
	} {
		_, err := intake.LoadConfig(getenv(acmeEnv(tc.set)))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		checkUsageError(t, err, tc.wantVar, nil)
		if !strings.HasPrefix(err.Error(), tc.wantVar+": ") {
			t.Errorf("%s: %q does not start with %s", tc.name, err, tc.wantVar)
		}
	}
}

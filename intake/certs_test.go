package intake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeCert(t *testing.T, dir string, serial int64, mod time.Time) (string, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"intake.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.Chtimes(certFile, mod, mod)
	os.Chtimes(keyFile, mod, mod)
	return certFile, keyFile
}

// TestCertReload: a renewed certificate is served without a restart; a
// broken renewal keeps the previous one.
func TestCertReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Now().Add(-time.Hour)
	certFile, keyFile := writeCert(t, dir, 1, start)
	cl, err := newCertLoader(certFile, keyFile, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		c, err := cl.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		return leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	writeCert(t, dir, 2, start.Add(time.Minute))
	if s := serial(); s != 1 {
		t.Errorf("reloaded before the check interval: serial %d", s)
	}
	cl.lastCheck = time.Now().Add(-2 * certReloadEvery)
	if s := serial(); s != 2 {
		t.Errorf("renewed certificate not served: serial %d", s)
	}
	// A half-written renewal: the key no longer matches.
	os.WriteFile(certFile, bytes.Repeat([]byte("x"), 10), 0o600)
	os.Chtimes(certFile, start.Add(2*time.Minute), start.Add(2*time.Minute))
	cl.lastCheck = time.Now().Add(-2 * certReloadEvery)
	if s := serial(); s != 2 {
		t.Errorf("broken renewal replaced the certificate: serial %d", s)
	}
}

package intake

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloadEvery is how often the certificate files are checked for a
// change, so a renewed certificate (certbot, cert-manager) is served
// without a restart.
const certReloadEvery = time.Minute

// certLoader serves the certificate from INTAKE_TLS_CERT/INTAKE_TLS_KEY and
// reloads it when either file changes. A renewal that cannot be loaded is
// logged and the previous certificate kept.
type certLoader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	modTime   time.Time
	lastCheck time.Time
}

func newCertLoader(certFile, keyFile string, log *slog.Logger) (*certLoader, error) {
	cl := &certLoader{certFile: certFile, keyFile: keyFile, log: log}
	if err := cl.load(time.Now()); err != nil {
		return nil, err
	}
	return cl, nil
}

func (cl *certLoader) newestModTime() time.Time {
	var newest time.Time
	for _, f := range []string{cl.certFile, cl.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	return newest
}

func (cl *certLoader) load(now time.Time) error {
	mod := cl.newestModTime()
	cert, err := tls.LoadX509KeyPair(cl.certFile, cl.keyFile)
	if err != nil {
		return fmt.Errorf("load INTAKE_TLS_CERT/INTAKE_TLS_KEY: %w", err)
	}
	cl.cert, cl.modTime, cl.lastCheck = &cert, mod, now
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (cl *certLoader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	now := time.Now()
	if now.Sub(cl.lastCheck) >= certReloadEvery {
		cl.lastCheck = now
		if mod := cl.newestModTime(); mod.After(cl.modTime) {
			if err := cl.load(now); err != nil {
				cl.log.Error("TLS certificate changed but cannot be loaded; still serving the previous one", "error", err.Error())
				cl.modTime = mod // do not retry on every handshake
			} else {
				cl.log.Info("TLS certificate reloaded")
			}
		}
	}
	return cl.cert, nil
}

package intake

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/airlockhq/airlock/shared/config"
)

// DefaultACMEDirectory is Let's Encrypt's production directory, the default
// of INTAKE_ACME_DIRECTORY.
const DefaultACMEDirectory = autocert.DefaultACMEDirectory

// ACMEConfig is intake's ACME setup: certificates for Domains obtained and
// renewed from Directory, proving control with TLS-ALPN-01 on intake's own
// port (no port 80 needed), kept in Cache.
type ACMEConfig struct {
	Domains   []string
	Cache     string
	Directory string
	Email     string
	// Roots are the roots trusted for the ACME server's own HTTPS
	// (INTAKE_ACME_CA_FILE); nil means the system's.
	Roots *x509.CertPool `json:"-"`
}

// acmeVars are the settings that mean something only with INTAKE_ACME_DOMAINS.
var acmeVars = []string{"INTAKE_ACME_CACHE", "INTAKE_ACME_DIRECTORY", "INTAKE_ACME_EMAIL", "INTAKE_ACME_CA_FILE"}

// loadACME reads the INTAKE_ACME_* settings; nil when ACME is off.
func loadACME(r *config.Reader) *ACMEConfig {
	domains := r.List("INTAKE_ACME_DOMAINS")
	if len(domains) == 0 {
		for _, v := range acmeVars {
			if r.String(v, "") != "" {
				r.Fail(v, "set only with INTAKE_ACME_DOMAINS")
				return nil
			}
		}
		return nil
	}
	a := &ACMEConfig{
		Cache:     r.String("INTAKE_ACME_CACHE", ""),
		Directory: r.String("INTAKE_ACME_DIRECTORY", DefaultACMEDirectory),
		Email:     r.String("INTAKE_ACME_EMAIL", ""),
	}
	for i, d := range domains {
		d = strings.ToLower(d)
		if !validDomain(d) {
			r.Fail("INTAKE_ACME_DOMAINS", "entry %d is not a DNS name such as forms.example.org (no wildcard, no IP address)", i+1)
			return nil
		}
		if !slices.Contains(a.Domains, d) {
			a.Domains = append(a.Domains, d)
		}
	}
	if a.Cache == "" {
		r.Fail("INTAKE_ACME_CACHE", "required with INTAKE_ACME_DOMAINS: a directory kept across restarts for the account key and certificates")
		return nil
	}
	if st, err := os.Stat(a.Cache); err == nil && !st.IsDir() {
		r.Fail("INTAKE_ACME_CACHE", "names a file, not a directory")
		return nil
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		r.Fail("INTAKE_ACME_DIRECTORY", "must be an https:// URL of an ACME directory")
		return nil
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			r.Fail("INTAKE_ACME_EMAIL", "must be an email address such as ops@example.org")
			return nil
		}
	}
	if f := r.String("INTAKE_ACME_CA_FILE", ""); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			r.Fail("INTAKE_ACME_CA_FILE", "cannot read the file it names")
			return nil
		}
		a.Roots = x509.NewCertPool()
		if !a.Roots.AppendCertsFromPEM(pem) {
			r.Fail("INTAKE_ACME_CA_FILE", "holds no PEM certificate")
			return nil
		}
	}
	return a
}

// validDomain accepts a DNS name of at least two labels of letters, digits
// and inner hyphens. TLS-ALPN-01 cannot prove a wildcard.
func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// acmeTimeout bounds each request to the ACME server.
const acmeTimeout = 30 * time.Second

// client is the ACME client over an HTTP client that trusts Roots.
func (a *ACMEConfig) client() *acme.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.Roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: a.Roots, MinVersion: tls.VersionTLS12}
	}
	return &acme.Client{DirectoryURL: a.Directory, HTTPClient: &http.Client{Transport: tr, Timeout: acmeTimeout}}
}

// manager is the autocert manager serving a.Domains: it obtains a
// certificate on the first handshake that asks for one of them, answers the
// ACME server's TLS-ALPN-01 challenge on the same port, and renews in time.
func (a *ACMEConfig) manager() *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.Cache),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client:     a.client(),
	}
}

// acmeGetCertificate wraps the manager's GetCertificate: failures for
// intake's own names are logged (the server name is one of the configured
// domains, never a client's), others are refused quietly.
func acmeGetCertificate(m *autocert.Manager, domains []string, log *slog.Logger) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := m.GetCertificate(hello)
		if err != nil && slices.Contains(domains, strings.ToLower(hello.ServerName)) {
			log.Error("ACME: no certificate for this domain", "domain", strings.ToLower(hello.ServerName), "error", err.Error())
		}
		return cert, err
	}
}

// checkACME is `intake check`'s view of ACME: the directory answers (with
// the configured roots) and the cache directory is writable.
func checkACME(ctx context.Context, a *ACMEConfig) []error {
	var problems []error
	ctx, cancel := context.WithTimeout(ctx, acmeTimeout)
	defer cancel()
	if _, err := a.client().Discover(ctx); err != nil {
		problems = append(problems, fmt.Errorf("ACME directory %s (INTAKE_ACME_DIRECTORY): %w", a.Directory, err))
	}
	if err := os.MkdirAll(a.Cache, 0o700); err != nil {
		problems = append(problems, fmt.Errorf("INTAKE_ACME_CACHE: cannot create the directory: %w", err))
	} else if f, err := os.CreateTemp(a.Cache, ".check-*"); err != nil {
		problems = append(problems, fmt.Errorf("INTAKE_ACME_CACHE: cannot write in the directory: %w", err))
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	return problems
}

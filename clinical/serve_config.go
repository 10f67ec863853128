package clinical

import (
	"crypto/tls"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/clinical/notice"
	"github.com/airlockhq/airlock/shared/clientip"
	"github.com/airlockhq/airlock/shared/config"
)

// ServeConfig is what `clinical serve` reads beyond Config.
type ServeConfig struct {
	*Config
	Addr    string
	TLSCert string
	TLSKey  string
	// Certificate is the pair TLSCert and TLSKey name, loaded with the
	// settings so a bad file stops start-up as a bad setting does.
	Certificate *tls.Certificate `json:"-"`
	PlainHTTP   bool             // CLINICAL_PLAIN_HTTP=1: behind a TLS-terminating proxy
	// SessionIdle and SessionMax are the idle and absolute session timeouts.
	SessionIdle, SessionMax time.Duration
	// Retention deletes submissions done for longer than this; 0 is off.
	Retention time.Duration
	// AuditHeadInterval is how often the audit chain head is logged.
	AuditHeadInterval time.Duration
	ShutdownTimeout   time.Duration
	Argon2            Argon2Params
	// Notify is the content-free email digest (CLINICAL_NOTIFY_*); nil is off.
	Notify *notice.Config
	// TrustedProxies are the peers whose X-Forwarded-For login throttling
	// believes (CLINICAL_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// IntakeURL is intake's public base URL (CLINICAL_INTAKE_URL), where
	// one-time result links point; "" turns publishing in the app off.
	IntakeURL string
	// MetricsAddr is the Prometheus, /livez and /readyz listener; empty
	// turns it off.
	MetricsAddr string
}

// LoadServeConfig reads and checks the settings of `clinical serve`.
func LoadServeConfig(getenv func(string) string) (*ServeConfig, error) {
	base, err := LoadConfig(getenv)
	if err != nil {
		return nil, err
	}
	r := config.NewReader(getenv)
	c := &ServeConfig{
		Config:            base,
		Addr:              r.Addr("CLINICAL_ADDR", "127.0.0.1:8444"),
		TLSCert:           r.String("CLINICAL_TLS_CERT", ""),
		TLSKey:            r.String("CLINICAL_TLS_KEY", ""),
		PlainHTTP:         r.Bool("CLINICAL_PLAIN_HTTP"),
		SessionIdle:       r.Duration("CLINICAL_SESSION_IDLE", 15*time.Minute),
		SessionMax:        r.Duration("CLINICAL_SESSION_MAX", 12*time.Hour),
		Retention:         readRetention(r),
		AuditHeadInterval: r.Duration("CLINICAL_AUDIT_HEAD_INTERVAL", 10*time.Minute),
		ShutdownTimeout:   20 * time.Second,
		Argon2:            DefaultArgon2,
		TrustedProxies:    clientip.ReadTrusted(r, "CLINICAL_TRUSTED_PROXIES"),
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		r.Fail("CLINICAL_TLS_CERT", "set both CLINICAL_TLS_CERT and CLINICAL_TLS_KEY, or neither")
	case c.TLSCert != "" && c.PlainHTTP:
		r.Fail("CLINICAL_PLAIN_HTTP", "set either TLS files or CLINICAL_PLAIN_HTTP=1, not both")
	case c.TLSCert == "" && !c.PlainHTTP && !config.Loopback(c.Addr):
		r.Fail("CLINICAL_TLS_CERT", "no TLS certificate: set CLINICAL_TLS_CERT and CLINICAL_TLS_KEY, listen on a loopback CLINICAL_ADDR, or set CLINICAL_PLAIN_HTTP=1 behind a TLS-terminating proxy")
	case c.TLSCert != "":
		c.Certificate = loadTLSPair(r, c.TLSCert, c.TLSKey)
	}
	c.Notify = notice.LoadConfig(r)
	c.IntakeURL = intakeBaseURL(r, false)
	if r.String("CLINICAL_METRICS_ADDR", "") != "" {
		c.MetricsAddr = r.Addr("CLINICAL_METRICS_ADDR", "")
		if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			r.Fail("CLINICAL_METRICS_ADDR", "must differ from CLINICAL_ADDR: metrics are never served on the staff app's listener")
		}
	}
	if c.SessionIdle > c.SessionMax {
		r.Fail("CLINICAL_SESSION_IDLE", "must not be longer than CLINICAL_SESSION_MAX")
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadTLSPair loads the certificate and key at start-up, so a missing,
// unreadable or mismatched file is a setting error naming its variable
// (exit 2) rather than a failure once serving starts. No message repeats
// the files' contents.
func loadTLSPair(r *config.Reader, certFile, keyFile string) *tls.Certificate {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		r.Fail("CLINICAL_TLS_CERT", "cannot read the certificate file it names")
		return nil
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		r.Fail("CLINICAL_TLS_KEY", "cannot read the key file it names")
		return nil
	}
	defer clear(keyPEM)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls errors describe the problem, never the PEM contents.
		r.Fail("CLINICAL_TLS_CERT", "CLINICAL_TLS_CERT and CLINICAL_TLS_KEY are not a usable PEM certificate and key pair: %v", err)
		return nil
	}
	return &cert
}

// readRetention reads CLINICAL_RETENTION: unset or "off" turns retention
// off; otherwise a Go duration of at least a day.
func readRetention(r *config.Reader) time.Duration {
	if v := r.String("CLINICAL_RETENTION", "off"); v == "off" || v == "0" {
		return 0
	}
	d := r.Duration("CLINICAL_RETENTION", 0)
	if d > 0 && d < 24*time.Hour {
		r.Fail("CLINICAL_RETENTION", "must be at least 24h (or off)")
	}
	return d
}

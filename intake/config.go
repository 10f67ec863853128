package intake

import (
	"crypto/tls"
	"fmt"
	"os"
	"time"

	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// Config is everything `intake serve` reads from its environment.
type Config struct {
	DatabaseURL string `json:"-"`
	Addr        string
	TLSCert     string
	TLSKey      string
	PlainHTTP   bool
	// Recipients are the clinic's public keys; the first seals new submissions.
	Recipients []seal.PublicKey
	RowKey     seal.RowKey `json:"-"`
	Forms      *forms.Registry
	// RateLimit is submissions per minute per client address; 0 turns limiting off.
	RateLimit int
	MaxBody   int64
	// ShutdownTimeout bounds how long in-flight requests may finish on SIGTERM.
	ShutdownTimeout time.Duration
}

// LoadConfig reads and checks the settings of `intake serve`.
func LoadConfig(getenv func(string) string) (*Config, error) {
	r := config.NewReader(getenv)
	c := &Config{
		DatabaseURL:     r.DatabaseURL("INTAKE_DATABASE_URL"),
		Addr:            r.Addr("INTAKE_ADDR", ":8443"),
		TLSCert:         r.String("INTAKE_TLS_CERT", ""),
		TLSKey:          r.String("INTAKE_TLS_KEY", ""),
		PlainHTTP:       r.Bool("INTAKE_PLAIN_HTTP"),
		RateLimit:       r.Int("INTAKE_RATE_LIMIT", 60, 0, 1_000_000),
		MaxBody:         r.Bytes("INTAKE_MAX_BODY", 10<<20),
		ShutdownTimeout: 20 * time.Second,
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		r.Fail("INTAKE_TLS_CERT", "set both INTAKE_TLS_CERT and INTAKE_TLS_KEY, or neither")
	case c.TLSCert == "" && !c.PlainHTTP:
		r.Fail("INTAKE_TLS_CERT", "no TLS certificate: set INTAKE_TLS_CERT and INTAKE_TLS_KEY, or INTAKE_PLAIN_HTTP=1 behind a TLS-terminating proxy")
	case c.TLSCert != "" && c.PlainHTTP:
		r.Fail("INTAKE_PLAIN_HTTP", "set either TLS files or INTAKE_PLAIN_HTTP=1, not both")
	case c.TLSCert != "":
		checkTLSFiles(r, c.TLSCert, c.TLSKey)
	}

	// Fail closed: without a valid recipient intake must not accept anything.
	keys := r.List("INTAKE_RECIPIENTS")
	if len(keys) == 0 {
		r.Fail("INTAKE_RECIPIENTS", "required but not set (the public key string from `transfer keys show`)")
	}
	seen := map[seal.KeyID]bool{}
	for i, s := range keys {
		pk, err := seal.ParsePublicKey(s)
		if err != nil {
			r.Fail("INTAKE_RECIPIENTS", "entry %d: %v", i+1, err)
			break
		}
		if seen[pk.ID] {
			r.Fail("INTAKE_RECIPIENTS", "entry %d: key id %s listed twice", i+1, pk.ID)
			break
		}
		seen[pk.ID] = true
		c.Recipients = append(c.Recipients, pk)
	}

	if s := r.Secret("INTAKE_ROW_KEY", true); s != "" {
		k, err := seal.ParseRowKey(s)
		if err != nil {
			r.Fail("INTAKE_ROW_KEY", "%v", err)
		}
		c.RowKey = k
	}

	if dir := r.String("INTAKE_FORMS_DIR", ""); dir != "" {
		reg, err := forms.LoadDir(dir)
		if err != nil {
			r.Fail("INTAKE_FORMS_DIR", "%v", err)
		}
		c.Forms = reg
	} else {
		c.Forms = forms.Builtin()
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTLSFiles loads the certificate and key once at start-up, so a missing,
// unreadable or mismatched file is a configuration error naming the variable
// (exit 2) rather than a runtime failure once Serve starts. Serve loads them
// again; neither the paths nor the contents are repeated in a message.
func checkTLSFiles(r *config.Reader, certFile, keyFile string) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		r.Fail("INTAKE_TLS_CERT", "cannot read the certificate file it names")
		return
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		r.Fail("INTAKE_TLS_KEY", "cannot read the key file it names")
		return
	}
	defer clear(keyPEM)
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		// crypto/tls errors describe the problem, never the PEM contents.
		r.Fail("INTAKE_TLS_CERT", "INTAKE_TLS_CERT and INTAKE_TLS_KEY are not a usable PEM certificate and key pair: %v", err)
	}
}

func (c *Config) String() string {
	return fmt.Sprintf("addr=%s tls=%t recipients=%d", c.Addr, c.TLSCert != "", len(c.Recipients))
}

// Package notice sends clinic staff a content-free email digest: how many
// submissions arrived on each form and how many rows transfer quarantined
// since the last notice. It never names a patient, an answer or a receipt:
// the only words in a notice come from the form titles ops configured and
// from this package.
package notice

import (
	"crypto/x509"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/config"
)

// Config is the CLINICAL_NOTIFY_* settings. A nil *Config means notices are off.
type Config struct {
	// Server is host:port of the SMTP server.
	Server string
	// ImplicitTLS is true for smtps:// (TLS from the first byte); smtp://
	// upgrades with STARTTLS, which is required unless Server is on loopback.
	ImplicitTLS bool
	Username    string
	Password    string `json:"-"`
	// RootCAs, from CLINICAL_NOTIFY_SMTP_CA_FILE, verify the server's
	// certificate instead of the system roots (a clinic's own CA).
	RootCAs  *x509.CertPool `json:"-"`
	From     *mail.Address
	To       []*mail.Address
	Interval time.Duration
	// Timeout bounds one whole SMTP conversation, dial included.
	Timeout time.Duration
}

// LoadConfig reads the CLINICAL_NOTIFY_* settings into r. It returns nil when
// CLINICAL_NOTIFY_SMTP is unset, and records a problem naming the variable
// when a setting is bad or one of the required ones is missing.
func LoadConfig(r *config.Reader) *Config {
	raw := r.String("CLINICAL_NOTIFY_SMTP", "")
	if raw == "" {
		for _, name := range []string{"CLINICAL_NOTIFY_TO", "CLINICAL_NOTIFY_FROM", "CLINICAL_NOTIFY_SMTP_USERNAME"} {
			if r.String(name, "") != "" {
				r.Fail("CLINICAL_NOTIFY_SMTP", "required when %s is set (smtp://host:port or smtps://host:port)", name)
				return nil
			}
		}
		return nil
	}
	c := &Config{
		Interval: r.Duration("CLINICAL_NOTIFY_INTERVAL", 5*time.Minute),
		Timeout:  30 * time.Second,
		Username: r.String("CLINICAL_NOTIFY_SMTP_USERNAME", ""),
		Password: r.Secret("CLINICAL_NOTIFY_SMTP_PASSWORD", false),
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" || u.Opaque != "":
		r.Fail("CLINICAL_NOTIFY_SMTP", "must be smtp://host:port or smtps://host:port")
		return nil
	case u.User != nil:
		// A password in the URL would travel into process listings and
		// logs: credentials have their own settings, the password by _FILE.
		r.Fail("CLINICAL_NOTIFY_SMTP", "must not carry credentials; set CLINICAL_NOTIFY_SMTP_USERNAME and CLINICAL_NOTIFY_SMTP_PASSWORD_FILE")
		return nil
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		r.Fail("CLINICAL_NOTIFY_SMTP", "must be smtp://host:port or smtps://host:port, nothing after the port")
		return nil
	}
	c.ImplicitTLS = u.Scheme == "smtps"
	port := u.Port()
	if port == "" {
		port = "25"
		if c.ImplicitTLS {
			port = "465"
		}
	}
	c.Server = net.JoinHostPort(u.Hostname(), port)
	if (c.Username == "") != (c.Password == "") {
		r.Fail("CLINICAL_NOTIFY_SMTP_USERNAME", "set both CLINICAL_NOTIFY_SMTP_USERNAME and CLINICAL_NOTIFY_SMTP_PASSWORD (or _FILE), or neither")
	}
	if f := r.String("CLINICAL_NOTIFY_SMTP_CA_FILE", ""); f != "" {
		pem, err := os.ReadFile(f)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			r.Fail("CLINICAL_NOTIFY_SMTP_CA_FILE", "must name a readable file of PEM certificates")
		}
		c.RootCAs = pool
	}
	from := r.String("CLINICAL_NOTIFY_FROM", "")
	if from == "" {
		r.Fail("CLINICAL_NOTIFY_FROM", "required with CLINICAL_NOTIFY_SMTP (the sender address)")
	} else if a, err := parseAddress(from); err != nil {
		r.Fail("CLINICAL_NOTIFY_FROM", "must be one email address such as airlock@clinic.example")
	} else {
		c.From = a
	}
	to := r.List("CLINICAL_NOTIFY_TO")
	if len(to) == 0 {
		r.Fail("CLINICAL_NOTIFY_TO", "required with CLINICAL_NOTIFY_SMTP (comma-separated email addresses)")
	}
	for _, s := range to {
		a, err := parseAddress(s)
		if err != nil {
			r.Fail("CLINICAL_NOTIFY_TO", "must be comma-separated email addresses such as staff@clinic.example")
			break
		}
		c.To = append(c.To, a)
	}
	if c.Interval < time.Minute {
		r.Fail("CLINICAL_NOTIFY_INTERVAL", "must be at least 1m")
	}
	return c
}

// parseAddress accepts a bare address or "Name <address>", and refuses
// anything that could carry a second header or recipient.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n,;") {
		return nil, errBadAddress
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(a.Address, "\r\n<> ") {
		return nil, errBadAddress
	}
	return a, nil
}

type addrError string

func (e addrError) Error() string { return string(e) }

const errBadAddress = addrError("not a single email address")

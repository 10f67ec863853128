package intake

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/clientip"
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
	// ACME obtains and renews the certificate instead of TLSCert/TLSKey;
	// nil when INTAKE_ACME_DOMAINS is unset.
	ACME *ACMEConfig
	// Recipients are the clinic's public keys; the first seals new submissions.
	Recipients []seal.PublicKey
	RowKey     seal.RowKey `json:"-"`
	Forms      *forms.Registry
	// RateLimit is submissions per minute per client address (burst
	// RateBurst); 0 turns off both it and the global ceiling.
	RateLimit int
	// RateLimitGlobal is submissions per minute across all clients of this
	// process (burst a tenth of it, at least RateBurst); 0 means none.
	RateLimitGlobal int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	MaxBody        int64
	// MaxAttachment bounds one attached file, after base64 decoding.
	MaxAttachment int64
	// AttachmentTypes are the allowed media types, detected from content.
	AttachmentTypes []string
	// MetricsAddr is the Prometheus listener; empty turns it off.
	MetricsAddr string
	// DBMaxConns is the size of the database pool.
	DBMaxConns int
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
		RateLimit:       r.Int("INTAKE_RATE_LIMIT", DefaultRateLimit, 0, 1_000_000),
		RateLimitGlobal: r.Int("INTAKE_RATE_LIMIT_GLOBAL", DefaultRateLimitGlobal, 0, 100_000_000),
		MaxBody:         r.Bytes("INTAKE_MAX_BODY", DefaultMaxBody),
		MaxAttachment:   r.Bytes("INTAKE_MAX_ATTACHMENT", DefaultMaxAttachment),
		DBMaxConns:      r.Int("INTAKE_DB_MAX_CONNS", DefaultDBMaxConns, 1, 1000),
		ShutdownTimeout: 20 * time.Second,
	}
	if c.MaxBody > seal.MaxBody {
		// The intake schema bounds a stored envelope (seal.MaxEnvelope); a
		// larger body could seal into a row the database refuses.
		r.Fail("INTAKE_MAX_BODY", "must be at most 16MiB (the intake schema bounds a stored envelope at 64MiB)")
	}
	if c.MaxAttachment > c.MaxBody {
		// A file can never be larger than the body that carries it.
		c.MaxAttachment = c.MaxBody
	}
	if addr := r.String("INTAKE_METRICS_ADDR", ""); addr != "" {
		c.MetricsAddr = r.Addr("INTAKE_METRICS_ADDR", "")
		if sameListener(c.MetricsAddr, c.Addr) {
			r.Fail("INTAKE_METRICS_ADDR", "must differ from INTAKE_ADDR: metrics are never served on the public listener")
		}
	}
	c.TrustedProxies = clientip.ReadTrusted(r, "INTAKE_TRUSTED_PROXIES")
	c.AttachmentTypes = parseAttachmentTypes(r, r.String("INTAKE_ATTACHMENT_TYPES", strings.Join(DefaultAttachmentTypes, ",")))
	c.ACME = loadACME(r)
	switch {
	case c.ACME != nil && (c.TLSCert != "" || c.TLSKey != ""):
		r.Fail("INTAKE_ACME_DOMAINS", "set either INTAKE_ACME_DOMAINS or INTAKE_TLS_CERT and INTAKE_TLS_KEY, not both")
	case c.ACME != nil && c.PlainHTTP:
		r.Fail("INTAKE_PLAIN_HTTP", "set either INTAKE_ACME_DOMAINS or INTAKE_PLAIN_HTTP=1, not both")
	case c.ACME != nil:
	case (c.TLSCert == "") != (c.TLSKey == ""):
		r.Fail("INTAKE_TLS_CERT", "set both INTAKE_TLS_CERT and INTAKE_TLS_KEY, or neither")
	case c.TLSCert == "" && !c.PlainHTTP:
		r.Fail("INTAKE_TLS_CERT", "no TLS certificate: set INTAKE_TLS_CERT and INTAKE_TLS_KEY, or INTAKE_ACME_DOMAINS and INTAKE_ACME_CACHE, or INTAKE_PLAIN_HTTP=1 behind a TLS-terminating proxy")
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

	c.Forms = r.Forms("INTAKE_FORMS_DIR")
	if c.Forms != nil {
		if err := checkReservedNames(c.Forms); err != nil {
			r.Fail("INTAKE_FORMS_DIR", "%v", err)
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Defaults of the settings, as `intake --help` and docs/intake.md state them.
const (
	DefaultRateLimit       = 60   // per client address, per minute
	RateBurst              = 20   // submissions a client may make at once
	DefaultRateLimitGlobal = 6000 // per process, per minute (100 a second)
	DefaultMaxBody         = 10 << 20
	DefaultMaxAttachment   = 5 << 20
	DefaultDBMaxConns      = 32
)

// DefaultAttachmentTypes are the media types an attachment may have, as
// detected from its first bytes: PDF, PNG, JPEG and plain text.
var DefaultAttachmentTypes = []string{"application/pdf", "image/png", "image/jpeg", "text/plain"}

// detectableTypes are the allow-list entries filetype.Detect can produce;
// anything else in INTAKE_ATTACHMENT_TYPES could never match.
var detectableTypes = map[string]bool{
	"application/pdf": true, "image/png": true, "image/jpeg": true, "text/plain": true,
	"image/gif": true, "image/webp": true, "image/bmp": true, "audio/mpeg": true,
	"audio/wave": true, "video/mp4": true, "video/webm": true, "application/zip": true,
}

func parseAttachmentTypes(r *config.Reader, v string) []string {
	var out []string
	for _, t := range config.SplitList(v) {
		t = strings.ToLower(t)
		if !detectableTypes[t] {
			r.Fail("INTAKE_ATTACHMENT_TYPES", "unsupported type in the list; choose from application/pdf, image/png, image/jpeg, text/plain, image/gif, image/webp, image/bmp, audio/mpeg, audio/wave, video/mp4, video/webm, application/zip")
			return nil
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		r.Fail("INTAKE_ATTACHMENT_TYPES", "lists no type")
	}
	return out
}

// sameListener reports whether two listen addresses would collide: the
// same port on the same host, or on every address. Port 0 never collides.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// checkReservedNames refuses a form whose linkIds collide with the names the
// HTML form uses for itself.
func checkReservedNames(reg *forms.Registry) error {
	for _, q := range reg.List() {
		for _, name := range reservedFieldNames {
			if q.Item(name) != nil {
				return fmt.Errorf("form %q: linkId %q is reserved by intake's HTML form", q.ID, name)
			}
		}
	}
	return nil
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
	tls := "files"
	switch {
	case c.ACME != nil:
		tls = "acme:" + strings.Join(c.ACME.Domains, ",")
	case c.PlainHTTP:
		tls = "off"
	}
	return fmt.Sprintf("addr=%s tls=%s recipients=%d metrics=%q", c.Addr, tls, len(c.Recipients), c.MetricsAddr)
}

package intake_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

// dbPassword is distinctive so a test can tell if a message repeats the URL.
const dbPassword = "Zq-db-password-7731"

// testKeys are a recipient and a row key in the string forms ops paste.
type testKeys struct {
	public  string
	public2 string
	rowKey  string
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	var out testKeys
	for _, p := range []*string{&out.public, &out.public2} {
		k, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		*p = k.Public.String()
	}
	rk, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	out.rowKey = rk.String()
	return out
}

// validEnv is a complete, valid `intake serve` environment.
func validEnv(k testKeys) map[string]string {
	return map[string]string{
		"INTAKE_DATABASE_URL": "postgres://intake:" + dbPassword + "@127.0.0.1:5432/intake?sslmode=disable",
		"INTAKE_PLAIN_HTTP":   "1",
		"INTAKE_RECIPIENTS":   k.public,
		"INTAKE_ROW_KEY":      k.rowKey,
	}
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// changeOneChar returns s with the character at i replaced by a different
// one from the same alphabet (hex digits and base64url both contain a and b).
func changeOneChar(s string, i int) string {
	c := byte('a')
	if s[i] == 'a' {
		c = 'b'
	}
	return s[:i] + string(c) + s[i+1:]
}

// writeFile writes content to name in dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTLSPair writes a self-signed certificate and its key as PEM files.
func writeTLSPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "intake.test"},
		DNSNames:     []string{"intake.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func TestLoadConfigValid(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	env := validEnv(k)
	env["INTAKE_RECIPIENTS"] = " " + k.public + " ,\n" + k.public2 + ","
	cfg, err := intake.LoadConfig(getenv(env))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Addr != ":8443" || cfg.RateLimit != 60 || cfg.MaxBody != 10<<20 || !cfg.PlainHTTP {
		t.Errorf("defaults: addr %q rate %d max body %d plain %t; want :8443, 60, 10MiB, true",
			cfg.Addr, cfg.RateLimit, cfg.MaxBody, cfg.PlainHTTP)
	}
	if len(cfg.Recipients) != 2 || cfg.Recipients[0].String() != k.public || cfg.Recipients[1].String() != k.public2 {
		t.Errorf("recipients %v, want the two keys in order (the first seals)", cfg.Recipients)
	}
	if cfg.RowKey.String() != k.rowKey {
		t.Errorf("row key not loaded")
	}
	if _, ok := cfg.Forms.Get("new-patient"); !ok {
		t.Errorf("without INTAKE_FORMS_DIR the built-in forms are not loaded")
	}

	// Neither the printed nor the JSON form of the config carries a secret.
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{cfg.String(), string(js)} {
		for _, secret := range []string{dbPassword, k.rowKey, base64.RawStdEncoding.EncodeToString(cfg.RowKey[:])} {
			if strings.Contains(out, secret) {
				t.Errorf("config output holds a secret: %s", out)
			}
		}
	}
}

func TestLoadConfigSettings(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	dir := t.TempDir()
	rowKeyFile := writeFile(t, dir, "row-key", k.rowKey+"\n")
	dbURLFile := writeFile(t, dir, "db-url", validEnv(k)["INTAKE_DATABASE_URL"]+"\n")
	formsDir := filepath.Join(dir, "forms")
	if err := os.Mkdir(formsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, formsDir, "walk-in.json", `{"resourceType":"Questionnaire","id":"walk-in","url":"https://clinic.example/fhir/Questionnaire/walk-in","title":"Walk-in","status":"active",
		"item":[{"linkId":"reason","text":"Why are you here?","type":"string","required":true}]}`)
	certFile, keyFile := writeTLSPair(t, dir)

	cases := []struct {
		name  string
		set   map[string]string
		check func(t *testing.T, cfg *intake.Config)
	}{
		{
			name: "row key from a file",
			set:  map[string]string{"INTAKE_ROW_KEY": "", "INTAKE_ROW_KEY_FILE": rowKeyFile},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.RowKey.String() != k.rowKey {
					t.Errorf("row key from INTAKE_ROW_KEY_FILE not loaded")
				}
			},
		},
		{
			name: "database URL from a file",
			set:  map[string]string{"INTAKE_DATABASE_URL": "", "INTAKE_DATABASE_URL_FILE": dbURLFile},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.DatabaseURL != validEnv(k)["INTAKE_DATABASE_URL"] {
					t.Errorf("database URL from the file is %q", cfg.DatabaseURL)
				}
			},
		},
		{
			name: "TLS files",
			set:  map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": certFile, "INTAKE_TLS_KEY": keyFile},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.PlainHTTP || cfg.TLSCert != certFile || cfg.TLSKey != keyFile {
					t.Errorf("TLS settings %+v", cfg)
				}
			},
		},
		{
			name: "explicit values",
			set:  map[string]string{"INTAKE_ADDR": "127.0.0.1:0", "INTAKE_RATE_LIMIT": "0", "INTAKE_MAX_BODY": "512KiB", "INTAKE_PLAIN_HTTP": "true"},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.Addr != "127.0.0.1:0" || cfg.RateLimit != 0 || cfg.MaxBody != 512<<10 || !cfg.PlainHTTP {
					t.Errorf("addr %q rate %d max body %d plain %t", cfg.Addr, cfg.RateLimit, cfg.MaxBody, cfg.PlainHTTP)
				}
			},
		},
		{
			name: "defaults of the abuse and attachment settings",
			set:  map[string]string{},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.RateLimit != 60 || cfg.RateLimitGlobal != 6000 || cfg.MaxAttachment != 5<<20 || cfg.MetricsAddr != "" ||
					len(cfg.TrustedProxies) != 0 || strings.Join(cfg.AttachmentTypes, ",") != "application/pdf,image/png,image/jpeg,text/plain" {
					t.Errorf("defaults %+v", cfg)
				}
			},
		},
		{
			name: "abuse, attachment and metrics settings",
			set: map[string]string{"INTAKE_RATE_LIMIT_GLOBAL": "0", "INTAKE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32",
				"INTAKE_MAX_ATTACHMENT": "1MiB", "INTAKE_ATTACHMENT_TYPES": "application/pdf, IMAGE/PNG", "INTAKE_METRICS_ADDR": "127.0.0.1:9464",
				"INTAKE_DB_MAX_CONNS": "8"},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.RateLimitGlobal != 0 || len(cfg.TrustedProxies) != 3 || cfg.TrustedProxies[1].String() != "192.0.2.7/32" ||
					cfg.MaxAttachment != 1<<20 || strings.Join(cfg.AttachmentTypes, ",") != "application/pdf,image/png" ||
					cfg.MetricsAddr != "127.0.0.1:9464" || cfg.DBMaxConns != 8 {
					t.Errorf("settings %+v", cfg)
				}
			},
		},
		{
			name: "attachment limit capped by the body limit",
			set:  map[string]string{"INTAKE_MAX_BODY": "1MiB", "INTAKE_MAX_ATTACHMENT": "4MiB"},
			check: func(t *testing.T, cfg *intake.Config) {
				if cfg.MaxAttachment != 1<<20 {
					t.Errorf("max attachment %d", cfg.MaxAttachment)
				}
			},
		},
		{
			name: "forms directory",
			set:  map[string]string{"INTAKE_FORMS_DIR": formsDir},
			check: func(t *testing.T, cfg *intake.Config) {
				if _, ok := cfg.Forms.Get("walk-in"); !ok {
					t.Errorf("form from INTAKE_FORMS_DIR not loaded")
				}
				if _, ok := cfg.Forms.Get("new-patient"); ok {
					t.Errorf("INTAKE_FORMS_DIR should replace the built-in forms")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := validEnv(k)
			for name, v := range tc.set {
				env[name] = v
			}
			cfg, err := intake.LoadConfig(getenv(env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	dir := t.TempDir()

	badFormsDir := filepath.Join(dir, "bad-forms")
	emptyFormsDir := filepath.Join(dir, "no-forms")
	for _, d := range []string{badFormsDir, emptyFormsDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	reservedFormsDir := filepath.Join(dir, "reserved-forms")
	if err := os.Mkdir(reservedFormsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, reservedFormsDir, "reserved.json", `{"resourceType":"Questionnaire","id":"reserved","title":"Reserved","status":"active",
		"item":[{"linkId":"_csrf","text":"Question","type":"string"}]}`)
	writeFile(t, badFormsDir, "broken.json", `{"resourceType":"Questionnaire","id":"broken","title":"Broken","status":"active",
		"item":[{"linkId":"q1","text":"Question","type":"no-such-type"}]}`)

	rowKeyFile := writeFile(t, dir, "row-key", k.rowKey+"\n")
	emptyFile := writeFile(t, dir, "empty", "")
	certFile, keyFile := writeTLSPair(t, dir)
	notPEM := writeFile(t, dir, "not.pem", "Zq-not-a-certificate\n")
	otherCert, _ := writeTLSPair(t, t.TempDir())

	// A public key string with one character of its key changed. The key
	// field is found by position (airlock-pk1-<16 hex id>-<43 base64url>-
	// <checksum>): base64url holds "-" itself, so splitting on "-" gave a
	// random fragment, sometimes one letter found in every message.
	keyAt := len("airlock-pk1-") + 16 + 1
	keyField := k.public[keyAt : keyAt+43]
	badChecksum := changeOneChar(k.public, keyAt+21)
	shortRowKey := base64.StdEncoding.EncodeToString([]byte("Zq-sixteen-bytes"))

	cases := []struct {
		name    string
		set     map[string]string // "" unsets
		wantVar string            // the message must name it
		secrets []string          // the message must not contain them
	}{
		{name: "database URL missing", set: map[string]string{"INTAKE_DATABASE_URL": ""}, wantVar: "INTAKE_DATABASE_URL"},
		{
			name:    "database URL with a bad port",
			set:     map[string]string{"INTAKE_DATABASE_URL": "postgres://intake:" + dbPassword + "@127.0.0.1:notaport/intake"},
			wantVar: "INTAKE_DATABASE_URL", secrets: []string{dbPassword, "notaport"},
		},
		{
			name:    "database URL that is no URL",
			set:     map[string]string{"INTAKE_DATABASE_URL": "Zq-not-a-database-url " + dbPassword},
			wantVar: "INTAKE_DATABASE_URL", secrets: []string{dbPassword, "Zq-not-a-database-url"},
		},
		{
			name:    "database URL with a bad option",
			set:     map[string]string{"INTAKE_DATABASE_URL": "postgres://intake:" + dbPassword + "@127.0.0.1/intake?sslmode=Zq-sometimes"},
			wantVar: "INTAKE_DATABASE_URL", secrets: []string{dbPassword, "Zq-sometimes"},
		},
		{
			name:    "database URL and its file both set",
			set:     map[string]string{"INTAKE_DATABASE_URL_FILE": rowKeyFile},
			wantVar: "INTAKE_DATABASE_URL", secrets: []string{dbPassword},
		},

		{name: "recipients missing", set: map[string]string{"INTAKE_RECIPIENTS": ""}, wantVar: "INTAKE_RECIPIENTS"},
		{name: "recipients only commas", set: map[string]string{"INTAKE_RECIPIENTS": " , ,"}, wantVar: "INTAKE_RECIPIENTS"},
		{
			name:    "recipient with a bad checksum",
			set:     map[string]string{"INTAKE_RECIPIENTS": badChecksum},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{badChecksum, keyField},
		},
		{
			name:    "recipient with its checksum changed",
			set:     map[string]string{"INTAKE_RECIPIENTS": changeOneChar(k.public, len(k.public)-1)},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{keyField},
		},
		{
			name:    "recipient truncated",
			set:     map[string]string{"INTAKE_RECIPIENTS": k.public[:len(k.public)-3]},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{k.public[:len(k.public)-3], keyField},
		},
		{
			name:    "recipient cut in half",
			set:     map[string]string{"INTAKE_RECIPIENTS": k.public[:len(k.public)/2]},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{k.public[:len(k.public)/2]},
		},
		{
			name:    "recipient listed twice",
			set:     map[string]string{"INTAKE_RECIPIENTS": k.public + "," + k.public2 + "," + k.public},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{k.public, keyField},
		},
		{
			name:    "second recipient not a key",
			set:     map[string]string{"INTAKE_RECIPIENTS": k.public + ",Zq-not-a-key"},
			wantVar: "INTAKE_RECIPIENTS", secrets: []string{"Zq-not-a-key"},
		},

		{name: "row key missing", set: map[string]string{"INTAKE_ROW_KEY": ""}, wantVar: "INTAKE_ROW_KEY"},
		{
			name:    "row key not base64",
			set:     map[string]string{"INTAKE_ROW_KEY": "Zq-not-base64!!"},
			wantVar: "INTAKE_ROW_KEY", secrets: []string{"Zq-not-base64"},
		},
		{
			name:    "row key too short",
			set:     map[string]string{"INTAKE_ROW_KEY": shortRowKey},
			wantVar: "INTAKE_ROW_KEY", secrets: []string{shortRowKey},
		},
		{
			name:    "row key and row key file both set",
			set:     map[string]string{"INTAKE_ROW_KEY_FILE": rowKeyFile},
			wantVar: "INTAKE_ROW_KEY", secrets: []string{k.rowKey},
		},
		{
			name:    "row key file missing",
			set:     map[string]string{"INTAKE_ROW_KEY": "", "INTAKE_ROW_KEY_FILE": filepath.Join(dir, "Zq-no-such-file")},
			wantVar: "INTAKE_ROW_KEY_FILE",
		},
		{
			name:    "row key file empty",
			set:     map[string]string{"INTAKE_ROW_KEY": "", "INTAKE_ROW_KEY_FILE": emptyFile},
			wantVar: "INTAKE_ROW_KEY_FILE",
		},

		{name: "neither TLS nor plain HTTP", set: map[string]string{"INTAKE_PLAIN_HTTP": ""}, wantVar: "INTAKE_TLS_CERT"},
		{name: "plain HTTP off", set: map[string]string{"INTAKE_PLAIN_HTTP": "0"}, wantVar: "INTAKE_TLS_CERT"},
		{name: "only the TLS certificate", set: map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": certFile}, wantVar: "INTAKE_TLS_KEY"},
		{name: "only the TLS key", set: map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_KEY": keyFile}, wantVar: "INTAKE_TLS_CERT"},
		{
			name:    "TLS files and plain HTTP",
			set:     map[string]string{"INTAKE_TLS_CERT": certFile, "INTAKE_TLS_KEY": keyFile},
			wantVar: "INTAKE_PLAIN_HTTP",
		},
		{
			name:    "TLS certificate file missing",
			set:     map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": filepath.Join(dir, "Zq-missing.pem"), "INTAKE_TLS_KEY": keyFile},
			wantVar: "INTAKE_TLS_CERT", secrets: []string{"Zq-missing"},
		},
		{
			name:    "TLS key file missing",
			set:     map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": certFile, "INTAKE_TLS_KEY": filepath.Join(dir, "Zq-missing.pem")},
			wantVar: "INTAKE_TLS_KEY", secrets: []string{"Zq-missing"},
		},
		{
			name:    "TLS certificate not PEM",
			set:     map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": notPEM, "INTAKE_TLS_KEY": keyFile},
			wantVar: "INTAKE_TLS_CERT", secrets: []string{"Zq-not-a-certificate"},
		},
		{
			name:    "TLS certificate and key not a pair",
			set:     map[string]string{"INTAKE_PLAIN_HTTP": "", "INTAKE_TLS_CERT": otherCert, "INTAKE_TLS_KEY": keyFile},
			wantVar: "INTAKE_TLS_CERT",
		},
		{
			name:    "plain HTTP not a boolean",
			set:     map[string]string{"INTAKE_PLAIN_HTTP": "Zq-perhaps"},
			wantVar: "INTAKE_PLAIN_HTTP", secrets: []string{"Zq-perhaps"},
		},

		{name: "address without a port", set: map[string]string{"INTAKE_ADDR": "localhost"}, wantVar: "INTAKE_ADDR", secrets: []string{"localhost"}},
		{name: "address with an empty port", set: map[string]string{"INTAKE_ADDR": "192.0.2.7:"}, wantVar: "INTAKE_ADDR", secrets: []string{"192.0.2.7"}},
		{name: "address with a port out of range", set: map[string]string{"INTAKE_ADDR": ":99999"}, wantVar: "INTAKE_ADDR", secrets: []string{"99999"}},
		{name: "address with a named port", set: map[string]string{"INTAKE_ADDR": ":Zq-port"}, wantVar: "INTAKE_ADDR", secrets: []string{"Zq-port"}},
		{name: "address with too many colons", set: map[string]string{"INTAKE_ADDR": "1:2:3"}, wantVar: "INTAKE_ADDR", secrets: []string{"1:2:3"}},

		{name: "rate limit not a number", set: map[string]string{"INTAKE_RATE_LIMIT": "Zq-sixty"}, wantVar: "INTAKE_RATE_LIMIT", secrets: []string{"Zq-sixty"}},
		{name: "rate limit negative", set: map[string]string{"INTAKE_RATE_LIMIT": "-7"}, wantVar: "INTAKE_RATE_LIMIT", secrets: []string{"-7"}},
		{name: "rate limit fractional", set: map[string]string{"INTAKE_RATE_LIMIT": "1.5"}, wantVar: "INTAKE_RATE_LIMIT", secrets: []string{"1.5"}},

		{name: "max body not a size", set: map[string]string{"INTAKE_MAX_BODY": "Zq-big"}, wantVar: "INTAKE_MAX_BODY", secrets: []string{"Zq-big"}},
		{name: "max body decimal unit", set: map[string]string{"INTAKE_MAX_BODY": "10MB"}, wantVar: "INTAKE_MAX_BODY", secrets: []string{"10MB"}},
		{name: "max body zero", set: map[string]string{"INTAKE_MAX_BODY": "0"}, wantVar: "INTAKE_MAX_BODY"},
		{name: "max body negative", set: map[string]string{"INTAKE_MAX_BODY": "-5MiB"}, wantVar: "INTAKE_MAX_BODY", secrets: []string{"-5MiB"}},
		{name: "max body over the schema bound", set: map[string]string{"INTAKE_MAX_BODY": "17MiB"}, wantVar: "INTAKE_MAX_BODY"},

		{name: "global limit negative", set: map[string]string{"INTAKE_RATE_LIMIT_GLOBAL": "-1"}, wantVar: "INTAKE_RATE_LIMIT_GLOBAL"},
		{name: "trusted proxy not an address", set: map[string]string{"INTAKE_TRUSTED_PROXIES": "10.0.0.0/8,Zq-proxy"}, wantVar: "INTAKE_TRUSTED_PROXIES", secrets: []string{"Zq-proxy"}},
		{name: "trusted proxy prefix too long", set: map[string]string{"INTAKE_TRUSTED_PROXIES": "10.0.0.0/33"}, wantVar: "INTAKE_TRUSTED_PROXIES"},
		{name: "attachment type not detectable", set: map[string]string{"INTAKE_ATTACHMENT_TYPES": "application/pdf,Zq-type/x"}, wantVar: "INTAKE_ATTACHMENT_TYPES", secrets: []string{"Zq-type"}},
		{name: "attachment types empty", set: map[string]string{"INTAKE_ATTACHMENT_TYPES": " , "}, wantVar: "INTAKE_ATTACHMENT_TYPES"},
		{name: "max attachment not a size", set: map[string]string{"INTAKE_MAX_ATTACHMENT": "Zq-5"}, wantVar: "INTAKE_MAX_ATTACHMENT", secrets: []string{"Zq-5"}},
		{name: "metrics address bad", set: map[string]string{"INTAKE_METRICS_ADDR": "Zq-host"}, wantVar: "INTAKE_METRICS_ADDR", secrets: []string{"Zq-host"}},
		{name: "metrics on the public address", set: map[string]string{"INTAKE_ADDR": ":8443", "INTAKE_METRICS_ADDR": "0.0.0.0:8443"}, wantVar: "INTAKE_METRICS_ADDR"},
		{name: "database pool size zero", set: map[string]string{"INTAKE_DB_MAX_CONNS": "0"}, wantVar: "INTAKE_DB_MAX_CONNS"},

		// The message names the broken file, which helps ops and is no secret.
		{name: "forms directory with an invalid Questionnaire", set: map[string]string{"INTAKE_FORMS_DIR": badFormsDir}, wantVar: "INTAKE_FORMS_DIR"},
		{name: "forms directory with a linkId the HTML form reserves", set: map[string]string{"INTAKE_FORMS_DIR": reservedFormsDir}, wantVar: "INTAKE_FORMS_DIR"},
		{name: "forms directory without forms", set: map[string]string{"INTAKE_FORMS_DIR": emptyFormsDir}, wantVar: "INTAKE_FORMS_DIR"},
		{name: "forms directory missing", set: map[string]string{"INTAKE_FORMS_DIR": filepath.Join(dir, "nowhere")}, wantVar: "INTAKE_FORMS_DIR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := validEnv(k)
			for name, v := range tc.set {
				if v == "" {
					delete(env, name)
				} else {
					env[name] = v
				}
			}
			cfg, err := intake.LoadConfig(getenv(env))
			if err == nil {
				t.Fatalf("LoadConfig accepted it: %s", cfg)
			}
			if cfg != nil {
				t.Errorf("LoadConfig returned a config with its error")
			}
			checkUsageError(t, err, tc.wantVar, tc.secrets)
		})
	}
}

// checkUsageError asserts err is a one-line *cli.UsageError (exit code 2)
// naming wantVar and containing none of secrets.
func checkUsageError(t *testing.T, err error, wantVar string, secrets []string) {
	t.Helper()
	var ue *cli.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not a *cli.UsageError", err, err)
	}
	if code := cli.ExitCode(err); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	msg := err.Error()
	if !strings.Contains(msg, wantVar) {
		t.Errorf("message %q does not name %s", msg, wantVar)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message %q is not one line", msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("message %q repeats the value %q", msg, s)
		}
	}
}

// runIntake runs the intake program in-process, as its main would.
func runIntake(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = intake.Run(context.Background(), cli.Env{
		Args:   args,
		Getenv: getenv(env),
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errOut,
	})
	return out.String(), errOut.String(), err
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	badEnv := validEnv(k)
	delete(badEnv, "INTAKE_ROW_KEY")

	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantVar  string // for exit 2: what the message names
	}{
		{name: "no command", args: nil, wantCode: 2, wantVar: "migrate"},
		{name: "unknown command", args: []string{"Zq-frobnicate"}, wantCode: 2, wantVar: "Zq-frobnicate"},
		{name: "unknown flag", args: []string{"--Zq-verbose"}, wantCode: 2, wantVar: "--Zq-verbose"},
		{name: "serve with an argument", env: validEnv(k), args: []string{"serve", "extra"}, wantCode: 2, wantVar: "extra"},
		{name: "serve with a bad setting", env: badEnv, args: []string{"serve"}, wantCode: 2, wantVar: "INTAKE_ROW_KEY"},
		{name: "migrate without a database", env: map[string]string{}, args: []string{"migrate"}, wantCode: 2, wantVar: "INTAKE_DATABASE_URL"},
		{name: "--help", args: []string{"--help"}, wantCode: 0},
		{name: "-h", args: []string{"-h"}, wantCode: 0},
		{name: "help", args: []string{"help"}, wantCode: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runIntake(t, tc.env, tc.args...)
			if code := cli.ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code %d (error %v), want %d", code, err, tc.wantCode)
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing (cli.Main prints the error)", stderr)
			}
			if tc.wantCode == 2 {
				checkUsageError(t, err, tc.wantVar, nil)
				if stdout != "" {
					t.Errorf("stdout %q on a usage error", stdout)
				}
				return
			}
			if !strings.Contains(stdout, "Usage:") {
				t.Errorf("help does not print usage on stdout: %q", stdout)
			}
			for _, want := range []string{"migrate", "serve", "INTAKE_DATABASE_URL", "INTAKE_ADDR", "INTAKE_TLS_CERT",
				"INTAKE_TLS_KEY", "INTAKE_PLAIN_HTTP", "INTAKE_RECIPIENTS", "INTAKE_ROW_KEY", "INTAKE_FORMS_DIR",
				"INTAKE_RATE_LIMIT", "INTAKE_MAX_BODY", "_FILE", "INTAKE_RATE_LIMIT_GLOBAL", "INTAKE_TRUSTED_PROXIES",
				"INTAKE_MAX_ATTACHMENT", "INTAKE_ATTACHMENT_TYPES", "INTAKE_METRICS_ADDR", "INTAKE_DB_MAX_CONNS"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("usage does not mention %s", want)
				}
			}
		})
	}
}

// TestRunMigrate runs `intake migrate` twice on a database: it is idempotent.
func TestRunMigrate(t *testing.T) {
	t.Parallel()
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	for i := range 2 {
		_, stderr, err := runIntake(t, map[string]string{"INTAKE_DATABASE_URL": owner}, "migrate")
		if err != nil {
			t.Fatalf("migrate run %d: %v\n%s", i+1, err, stderr)
		}
		if !strings.Contains(stderr, `"msg":"intake database migrated"`) {
			t.Errorf("migrate run %d logged %q", i+1, stderr)
		}
	}
}

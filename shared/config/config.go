// Package config reads Airlock settings from environment variables. Every
// secret X may instead come from the file named by X_FILE (one trailing
// newline trimmed), which is how systemd credentials and Docker or Kubernetes
// secrets hand them over. The first bad setting becomes a cli.UsageError that
// names the variable, never its value.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
)

// Reader collects settings and remembers the first problem, so a config
// loader reads straight through and checks Err once at the end.
type Reader struct {
	getenv func(string) string
	err    error
}

// NewReader reads from getenv (os.Getenv in production).
func NewReader(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv}
}

// Err is the first problem met, as a *cli.UsageError, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records a problem with variable name unless one is already recorded.
func (r *Reader) Fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = cli.Usagef("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

// String returns the variable's value, or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Required returns the variable's value and records a problem when it is unset.
func (r *Reader) Required(name string) string {
	v := r.String(name, "")
	if v == "" {
		r.Fail(name, "required but not set")
	}
	return v
}

// Secret returns the value of name or, when name_FILE is set, the contents of
// that file with one trailing newline trimmed. Setting both is an error, so an
// operator never wonders which one won.
func (r *Reader) Secret(name string, required bool) string {
	direct := r.getenv(name)
	file := r.getenv(name + "_FILE")
	switch {
	case direct != "" && file != "":
		r.Fail(name, "set either %s or %s_FILE, not both", name, name)
		return ""
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			r.Fail(name+"_FILE", "cannot read the file it names")
			return ""
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" && required {
			r.Fail(name+"_FILE", "the file it names is empty")
		}
		return v
	case direct != "":
		return direct
	}
	if required {
		r.Fail(name, "required but not set (or set %s_FILE)", name)
	}
	return ""
}

// Bool accepts 1/0, true/false, yes/no; unset is false.
func (r *Reader) Bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(r.getenv(name))) {
	case "", "0", "false", "no", "off":
		return false
	case "1", "true", "yes", "on":
		return true
	}
	r.Fail(name, "must be 1 or 0")
	return false
}

// Duration parses a Go duration ("90s", "720h"); it must be positive.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.Fail(name, "must be a positive Go duration such as 90s or 720h")
		return def
	}
	return d
}

// Int parses a whole number within [min, max].
func (r *Reader) Int(name string, def, min, max int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.Fail(name, "must be a whole number from %d to %d", min, max)
		return def
	}
	return n
}

// Bytes parses a size such as 10MiB, 512KiB or 1048576 (bytes).
func (r *Reader) Bytes(name string, def int64) int64 {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, ok := ParseBytes(v)
	if !ok {
		r.Fail(name, "must be a size such as 10MiB, 512KiB or a number of bytes")
		return def
	}
	return n
}

// ParseBytes parses sizes with the binary suffixes B, KiB, MiB and GiB.
func ParseBytes(s string) (int64, bool) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, false
	}
	return n * mult, true
}

// Addr checks a listen address of the form host:port (host may be empty). The
// port must be a number from 0 to 65535: a bad one would otherwise surface
// only when the server starts listening, as a runtime failure rather than a
// configuration error.
func (r *Reader) Addr(name, def string) string {
	v := r.String(name, def)
	_, port, err := net.SplitHostPort(v)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		r.Fail(name, "must be host:port with a port from 0 to 65535, such as :8443 or 127.0.0.1:8444")
	}
	return v
}

// List splits a comma-separated value, dropping empty entries.
func (r *Reader) List(name string) []string {
	return SplitList(r.String(name, ""))
}

// SecretList is List for secrets: name or name_FILE.
func (r *Reader) SecretList(name string, required bool) []string {
	return SplitList(r.Secret(name, required))
}

// SplitList splits on commas and newlines and trims each entry.
func SplitList(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == '\n' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// DatabaseURL is a required Postgres URL; the value is checked to parse but
// never repeated (it may hold a password).
func (r *Reader) DatabaseURL(name string) string {
	v := r.Secret(name, true)
	if v != "" && !pg.ValidURL(v) {
		r.Fail(name, "%s", pg.ErrBadURL.Error())
	}
	return v
}

// Forms loads the Questionnaire directory named by the variable, or the
// built-in example forms when it is unset. Every service reads the same forms
// the same way, so intake, transfer and clinical agree on what a form is.
//
// The variable named like name with _DIR replaced by _BASE_URL (for example
// INTAKE_FORMS_BASE_URL) gives forms without a url their canonical url,
// BASE_URL/<form id>; without it such forms are refused.
func (r *Reader) Forms(name string) *forms.Registry {
	dir := r.String(name, "")
	baseName := strings.TrimSuffix(name, "_DIR") + "_BASE_URL"
	base := r.String(baseName, "")
	if base != "" {
		if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "urn") || strings.ContainsAny(base, "|# ") {
			r.Fail(baseName, "must be an absolute http(s) URL without | or #")
			return nil
		}
	}
	if dir == "" {
		return forms.Builtin()
	}
	reg, err := forms.LoadDirWith(dir, forms.LoadOptions{BaseURL: strings.TrimRight(base, "/")})
	if err != nil {
		r.Fail(name, "%v", err)
	}
	return reg
}

// Loopback reports whether host:port names a loopback address (localhost,
// 127.0.0.0/8, ::1): where plain HTTP or plain SMTP is acceptable.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package config_test

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
)

// reader returns a Reader over a fixed environment.
func reader(env map[string]string) *config.Reader {
	return config.NewReader(func(k string) string { return env[k] })
}

// checkErr asserts the reader's error: nil when wantVar is empty, otherwise a
// one-line *cli.UsageError naming wantVar and not containing value.
func checkErr(t *testing.T, r *config.Reader, wantVar, value string) {
	t.Helper()
	err := r.Err()
	if wantVar == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ue *cli.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T), want a *cli.UsageError", err, err)
	}
	if cli.ExitCode(err) != 2 {
		t.Errorf("exit code %d, want 2", cli.ExitCode(err))
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, wantVar+": ") {
		t.Errorf("message %q does not start with %s", msg, wantVar)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message %q is not one line", msg)
	}
	if value != "" && strings.Contains(msg, value) {
		t.Errorf("message %q repeats the value %q", msg, value)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		direct   string // the value of X
		file     *string
		required bool
		want     string
		wantVar  string // "" for no error
	}{
		{name: "direct", direct: "Zq-s3cret", want: "Zq-s3cret"},
		{name: "direct keeps spaces", direct: " Zq-s3cret \n", want: " Zq-s3cret \n"},
		{name: "file without newline", file: ptr("Zq-s3cret"), want: "Zq-s3cret"},
		{name: "file with one newline", file: ptr("Zq-s3cret\n"), want: "Zq-s3cret"},
		{name: "file with CRLF", file: ptr("Zq-s3cret\r\n"), want: "Zq-s3cret"},
		{name: "file with two newlines keeps one", file: ptr("Zq-s3cret\n\n"), want: "Zq-s3cret\n"},
		{name: "file keeps other whitespace", file: ptr("  Zq-s3cret \t\n"), want: "  Zq-s3cret \t"},
		{name: "file with inner newlines", file: ptr("Zq-line1\nZq-line2\n"), want: "Zq-line1\nZq-line2"},
		{name: "unset, optional", want: ""},
		{name: "unset, required", required: true, wantVar: "X"},
		{name: "both set", direct: "Zq-s3cret", file: ptr("Zq-other"), wantVar: "X"},
		{name: "empty file, required", file: ptr(""), required: true, wantVar: "X_FILE"},
		{name: "file with only a newline, required", file: ptr("\n"), required: true, wantVar: "X_FILE"},
		{name: "empty file, optional", file: ptr(""), want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"X": tc.direct}
			if tc.file != nil {
				env["X_FILE"] = writeFile(t, *tc.file)
			}
			r := reader(env)
			got := r.Secret("X", tc.required)
			if tc.wantVar == "" && got != tc.want {
				t.Errorf("Secret = %q, want %q", got, tc.want)
			}
			checkErr(t, r, tc.wantVar, "Zq-")
			if tc.wantVar != "" && got != "" {
				t.Errorf("Secret returned %q with an error", got)
			}
		})
	}

	t.Run("unreadable file", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "Zq-missing")
		r := reader(map[string]string{"X_FILE": missing})
		if got := r.Secret("X", true); got != "" {
			t.Errorf("Secret = %q", got)
		}
		checkErr(t, r, "X_FILE", missing)
	})
}

func ptr(s string) *string { return &s }

func TestDuration(t *testing.T) {
	t.Parallel()
	const def = 7 * time.Minute
	cases := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{value: "", want: def},
		{value: "90s", want: 90 * time.Second},
		{value: " 720h ", want: 720 * time.Hour},
		{value: "1h30m", want: 90 * time.Minute},
		{value: "1ms", want: time.Millisecond},
		{value: "0s", wantErr: true},
		{value: "0", wantErr: true},
		{value: "-5m", wantErr: true},
		{value: "90", wantErr: true},
		{value: "Zq-soon", wantErr: true},
		{value: "3 days", wantErr: true},
	}
	for _, tc := range cases {
		r := reader(map[string]string{"D": tc.value})
		got := r.Duration("D", def)
		if tc.wantErr {
			checkErr(t, r, "D", "Zq-")
			if got != def {
				t.Errorf("Duration(%q) = %v with an error, want the default", tc.value, got)
			}
			continue
		}
		checkErr(t, r, "", "")
		if got != tc.want {
			t.Errorf("Duration(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64 // 0: rejected
	}{
		{"1", 1},
		{"1048576", 1 << 20},
		{"5B", 5},
		{"512KiB", 512 << 10},
		{"10MiB", 10 << 20},
		{"10 MiB", 10 << 20},
		{"2GiB", 2 << 30},
		{"1024GiB", 1 << 40}, // the ceiling, 1 TiB
		{"1099511627776", 1 << 40},
		{"1025GiB", 0},
		{"1099511627777", 0},
		{"9223372036854775807GiB", 0}, // would overflow
		{"99999999999999999999", 0},
		{"", 0},
		{"0", 0},
		{"0MiB", 0},
		{"-1", 0},
		{"-5MiB", 0},
		{"+5MiB", 5 << 20}, // strconv accepts a plus sign; harmless
		{"1.5MiB", 0},
		{"10MB", 0},
		{"10mib", 0},
		{"10 M", 0},
		{"MiB", 0},
		{"B", 0},
		{"ten", 0},
		{"10MiBs", 0},
	}
	for _, tc := range cases {
		got, ok := config.ParseBytes(tc.in)
		if ok != (tc.want != 0) || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %t; want %d, %t", tc.in, got, ok, tc.want, tc.want != 0)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	const def = 3 << 20
	for _, tc := range []struct {
		value   string
		want    int64
		wantErr bool
	}{
		{value: "", want: def},
		{value: " 64KiB ", want: 64 << 10},
		{value: "Zq-large", want: def, wantErr: true},
		{value: "0", want: def, wantErr: true},
	} {
		r := reader(map[string]string{"B": tc.value})
		if got := r.Bytes("B", def); got != tc.want {
			t.Errorf("Bytes(%q) = %d, want %d", tc.value, got, tc.want)
		}
		if tc.wantErr {
			checkErr(t, r, "B", "Zq-")
		} else {
			checkErr(t, r, "", "")
		}
	}
}

func TestInt(t *testing.T) {
	t.Parallel()
	const def, min, max = 60, 0, 100
	for _, tc := range []struct {
		value   string
		want    int
		wantErr bool
	}{
		{value: "", want: def},
		{value: "0", want: 0},
		{value: "100", want: 100},
		{value: " 42 ", want: 42},
		{value: "-1", want: def, wantErr: true},
		{value: "101", want: def, wantErr: true},
		{value: "99999999999999999999999", want: def, wantErr: true},
		{value: "4.5", want: def, wantErr: true},
		{value: "Zq-many", want: def, wantErr: true},
		{value: "0x10", want: def, wantErr: true},
	} {
		r := reader(map[string]string{"N": tc.value})
		if got := r.Int("N", def, min, max); got != tc.want {
			t.Errorf("Int(%q) = %d, want %d", tc.value, got, tc.want)
		}
		if tc.wantErr {
			checkErr(t, r, "N", "Zq-")
		} else {
			checkErr(t, r, "", "")
		}
	}
	// The message states the bounds so an operator can fix the value.
	r := reader(map[string]string{"N": "500"})
	r.Int("N", def, 1, 100)
	if msg := r.Err().Error(); !strings.Contains(msg, "1") || !strings.Contains(msg, "100") {
		t.Errorf("message %q does not state the bounds", msg)
	}
}

func TestBool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value   string
		want    bool
		wantErr bool
	}{
		{value: "", want: false},
		{value: "0", want: false},
		{value: "false", want: false},
		{value: "no", want: false},
		{value: "off", want: false},
		{value: "1", want: true},
		{value: "true", want: true},
		{value: "TRUE", want: true},
		{value: " yes ", want: true},
		{value: "on", want: true},
		{value: "2", wantErr: true},
		{value: "Zq-maybe", wantErr: true},
		{value: "y", wantErr: true},
	} {
		r := reader(map[string]string{"F": tc.value})
		if got := r.Bool("F"); got != tc.want {
			t.Errorf("Bool(%q) = %t, want %t", tc.value, got, tc.want)
		}
		if tc.wantErr {
			checkErr(t, r, "F", "Zq-")
		} else {
			checkErr(t, r, "", "")
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{value: "", want: nil},
		{value: " , ,\n", want: nil},
		{value: "a", want: []string{"a"}},
		{value: "a,b", want: []string{"a", "b"}},
		{value: " a , b ,,c\n d\n", want: []string{"a", "b", "c", "d"}},
		{value: "a b,c", want: []string{"a b", "c"}},
	} {
		r := reader(map[string]string{"L": tc.value})
		if got := r.List("L"); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.value, got, tc.want)
		}
		checkErr(t, r, "", "")
	}

	t.Run("secret list from a file", func(t *testing.T) {
		r := reader(map[string]string{"L_FILE": writeFile(t, "k1\nk2,k3\n")})
		if got := r.SecretList("L", true); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
			t.Errorf("SecretList = %q", got)
		}
		checkErr(t, r, "", "")
	})
}

func TestStringAndRequired(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"S": "  value  ", "BLANK": "   "})
	if got := r.String("S", "def"); got != "value" {
		t.Errorf("String = %q, want the trimmed value", got)
	}
	if got := r.String("BLANK", "def"); got != "def" {
		t.Errorf("String of a blank value = %q, want the default", got)
	}
	if got := r.String("UNSET", "def"); got != "def" {
		t.Errorf("String of an unset value = %q, want the default", got)
	}
	if got := r.Required("S"); got != "value" {
		t.Errorf("Required = %q", got)
	}
	checkErr(t, r, "", "")
	r.Required("UNSET")
	checkErr(t, r, "UNSET", "")
}

func TestAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value   string
		wantErr bool
	}{
		{value: ""}, // the default
		{value: ":8443"},
		{value: ":0"},
		{value: "127.0.0.1:8444"},
		{value: "[::1]:443"},
		{value: "localhost:65535"},
		{value: "localhost", wantErr: true},
		{value: "127.0.0.1:", wantErr: true},
		{value: ":65536", wantErr: true},
		{value: ":-1", wantErr: true},
		{value: ":https", wantErr: true},
		{value: "::1:443", wantErr: true},
		{value: "Zq-host:Zq-port", wantErr: true},
	} {
		r := reader(map[string]string{"A": tc.value})
		got := r.Addr("A", ":9999")
		if tc.wantErr {
			checkErr(t, r, "A", "Zq-")
			continue
		}
		checkErr(t, r, "", "")
		if want := cmp.Or(tc.value, ":9999"); got != want {
			t.Errorf("Addr(%q) = %q, want %q", tc.value, got, want)
		}
	}
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	const password = "Zq-db-password"
	good := "postgres://u:" + password + "@127.0.0.1:5432/db?sslmode=disable"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		wantVar string
	}{
		{name: "URL", env: map[string]string{"DB": good}, want: good},
		{name: "keyword/value form", env: map[string]string{"DB": "host=127.0.0.1 dbname=db"}, want: "host=127.0.0.1 dbname=db"},
		{name: "from a file", env: map[string]string{"DB_FILE": writeFile(t, good+"\n")}, want: good},
		{name: "missing", env: map[string]string{}, wantVar: "DB"},
		{name: "bad port", env: map[string]string{"DB": "postgres://u:" + password + "@127.0.0.1:x/db"}, wantVar: "DB"},
		{name: "bad sslmode", env: map[string]string{"DB": "postgres://u:" + password + "@127.0.0.1/db?sslmode=Zq-bad"}, wantVar: "DB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := reader(tc.env)
			got := r.DatabaseURL("DB")
			checkErr(t, r, tc.wantVar, "Zq-")
			if tc.wantVar == "" && got != tc.want {
				t.Errorf("DatabaseURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFirstErrorWins(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"N": "x", "F": "x"})
	if r.Err() != nil {
		t.Fatal("a fresh reader has an error")
	}
	r.Int("N", 1, 0, 10)
	r.Bool("F")
	r.Fail("OTHER", "later problem %d", 3)
	checkErr(t, r, "N", "")
	if strings.Contains(r.Err().Error(), "OTHER") || strings.Contains(r.Err().Error(), "F:") {
		t.Errorf("error %q is not the first problem alone", r.Err())
	}

	r = reader(nil)
	r.Fail("V", "bad thing %d", 7)
	if got := r.Err().Error(); got != "V: bad thing 7" {
		t.Errorf("Fail message %q, want %q", got, "V: bad thing 7")
	}
}

func TestLoopback(t *testing.T) {
	for hp, want := range map[string]bool{
		"127.0.0.1:25": true, "[::1]:25": true, "localhost:25": true,
		"10.0.0.1:25": false, "mail.example:25": false, "bad": false,
	} {
		if got := config.Loopback(hp); got != want {
			t.Errorf("config.Loopback(%q) = %v", hp, got)
		}
	}
}

package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

const testPassphrase = "correct horse battery staple"

// cheapParams keep key files fast to unlock in tests; the format is the same.
var cheapParams = keyfile.Params{Time: 1, MemoryKiB: 8192, Threads: 1}

// writeKeyFile wraps k under pass into a new key file in dir.
func writeKeyFile(t testing.TB, dir, name string, k *seal.PrivateKey, pass string) string {
	t.Helper()
	file, err := keyfile.Wrap(k, []byte(pass), cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := keyfile.WriteNew(path, file, false); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTransfer runs the transfer program in-process with exactly env.
func runTransfer(t *testing.T, env map[string]string, args ...string) (*program, error) {
	t.Helper()
	p := &program{run: transfer.Run, env: env}
	return p, p.exec(context.Background(), args...)
}

// with returns a copy of env with the changes applied; "" unsets a variable.
func with(env map[string]string, changes map[string]string) map[string]string {
	out := maps.Clone(env)
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// cliEnv is the environment `transfer once` needs against f's databases,
// with f's key in a cheap key file.
func (f *fixture) cliEnv() map[string]string {
	f.t.Helper()
	return map[string]string{
		"INTAKE_DATABASE_URL":   pgtest.URLAs(f.t, f.intakeDB, "airlock_intake_transfer"),
		"CLINICAL_DATABASE_URL": pgtest.URLAs(f.t, f.clinicalDB, "airlock_clinical_transfer"),
		"TRANSFER_KEYS":         writeKeyFile(f.t, f.t.TempDir(), "clinic.key", f.key, testPassphrase),
		"TRANSFER_PASSPHRASE":   testPassphrase,
		"TRANSFER_ROW_KEYS":     f.rowKey.String(),
	}
}

// unreachable is a well-formed URL of a database nobody listens for.
const unreachable = "postgres://airlock:n0t-th1s-pw@127.0.0.1:1/airlock?sslmode=disable&connect_timeout=2"

// offlineEnv is a complete configuration whose databases cannot be reached:
// enough for every failure that must happen before connecting.
func offlineEnv(t *testing.T) map[string]string {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rk, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"INTAKE_DATABASE_URL":   unreachable,
		"CLINICAL_DATABASE_URL": unreachable,
		"TRANSFER_KEYS":         writeKeyFile(t, t.TempDir(), "clinic.key", k, testPassphrase),
		"TRANSFER_PASSPHRASE":   testPassphrase,
		"TRANSFER_ROW_KEYS":     rk.String(),
	}
}

func TestOnceThatCannotRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	f.submit("new-patient", newPatientAnswers, nil)
	f.submit("symptoms", symptomsAnswers, nil)
	f.ownerExec(`UPDATE submissions SET form_id = 'new-patient' WHERE form_id = 'symptoms'`) // one to quarantine

	otherKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherFile := writeKeyFile(t, t.TempDir(), "second.key", otherKey, "another passphrase entirely")
	cases := []struct {
		name   string
		env    map[string]string
		naming string // what the error must name
	}{
		{"wrong passphrase", with(env, map[string]string{"TRANSFER_PASSPHRASE": "wrong horse battery staple"}), env["TRANSFER_KEYS"]},
		{"second key file under another passphrase", with(env, map[string]string{"TRANSFER_KEYS": env["TRANSFER_KEYS"] + "," + otherFile}), otherFile},
		{"passphrase command prints a wrong passphrase", with(env, map[string]string{"TRANSFER_PASSPHRASE": "",
			"TRANSFER_PASSPHRASE_COMMAND": "printf 'wrong horse battery staple\\n'"}), env["TRANSFER_KEYS"]},
		{"passphrase command fails", with(env, map[string]string{"TRANSFER_PASSPHRASE": "",
			"TRANSFER_PASSPHRASE_COMMAND": "exit 3"}), "TRANSFER_PASSPHRASE_COMMAND"},
		{"passphrase command prints nothing", with(env, map[string]string{"TRANSFER_PASSPHRASE": "",
			"TRANSFER_PASSPHRASE_COMMAND": "true"}), "TRANSFER_PASSPHRASE_COMMAND"},
		{"clinical database unreachable", with(env, map[string]string{"CLINICAL_DATABASE_URL": unreachable}), "clinical database"},
		{"intake database unreachable", with(env, map[string]string{"INTAKE_DATABASE_URL": unreachable}), "intake database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := runTransfer(t, c.env, "once")
			if code := cli.ExitCode(err); code != 1 {
				t.Fatalf("exit code %d (%v), want 1", code, err)
			}
			if !strings.Contains(err.Error(), c.naming) {
				t.Errorf("error %q does not name %s", err, c.naming)
			}
			if strings.Contains(err.Error(), "n0t-th1s-pw") {
				t.Errorf("error %q repeats a database password", err)
			}
			if p.stdout.String() != "" {
				t.Errorf("printed %q although nothing ran", p.stdout.String())
			}
			if n := f.intakeCount(); n != 2 {
				t.Errorf("intake holds %d rows, want both still there", n)
			}
			for _, table := range []string{"submissions", "quarantine", "transfer_passes"} {
				if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("clinical %s holds %d rows", table, n)
				}
			}
		})
	}
	// The same environment with the right passphrase does run.
	if _, err := runTransfer(t, env, "once"); err != nil {
		t.Fatalf("once with the right passphrase: %v", err)
	}
	if n := f.intakeCount(); n != 0 {
		t.Fatalf("intake holds %d rows after a good run", n)
	}
}

func TestBadConfigurationIsExit2NamingTheVariable(t *testing.T) {
	t.Parallel()
	env := offlineEnv(t)
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	copyOfKey := writeKeyFile(t, dir, "copy.key", k, testPassphrase)
	copyOfKey2 := filepath.Join(dir, "copy2.key")
	if b, err := os.ReadFile(copyOfKey); err != nil || os.WriteFile(copyOfKey2, b, 0o600) != nil {
		t.Fatal("copy key file")
	}
	cases := []struct {
		name    string
		args    []string
		changes map[string]string
		naming  string
		secret  string // a value that must not be repeated
	}{
		{"row keys missing", []string{"once"}, map[string]string{"TRANSFER_ROW_KEYS": ""}, "TRANSFER_ROW_KEYS", ""},
		{"row key malformed", []string{"once"}, map[string]string{"TRANSFER_ROW_KEYS": "c2VjcmV0LXJvdy1rZXktdGhhdC1pcy1zaG9ydA"}, "TRANSFER_ROW_KEYS", "c2VjcmV0LXJvdy1rZXktdGhhdC1pcy1zaG9ydA"},
		{"row key and row key file", []string{"once"}, map[string]string{"TRANSFER_ROW_KEYS_FILE": passFile}, "TRANSFER_ROW_KEYS", ""},
		{"intake URL malformed", []string{"once"}, map[string]string{"INTAKE_DATABASE_URL": "postgres://airlock:s3cret-pw@db:notaport/intake"}, "INTAKE_DATABASE_URL", "s3cret-pw"},
		{"intake URL missing", []string{"once"}, map[string]string{"INTAKE_DATABASE_URL": ""}, "INTAKE_DATABASE_URL", ""},
		{"clinical URL malformed", []string{"once"}, map[string]string{"CLINICAL_DATABASE_URL": "postgres://airlock:s3cret-pw@db:notaport/clinical"}, "CLINICAL_DATABASE_URL", "s3cret-pw"},
		{"status: intake URL malformed", []string{"status"}, map[string]string{"INTAKE_DATABASE_URL": "postgres://airlock:s3cret-pw@db:notaport/intake"}, "INTAKE_DATABASE_URL", "s3cret-pw"},
		{"key files missing", []string{"once"}, map[string]string{"TRANSFER_KEYS": ""}, "TRANSFER_KEYS", ""},
		{"key file does not exist", []string{"once"}, map[string]string{"TRANSFER_KEYS": filepath.Join(dir, "absent.key")}, "TRANSFER_KEYS", ""},
		{"two key files with one key", []string{"once"}, map[string]string{"TRANSFER_KEYS": copyOfKey + "," + copyOfKey2}, "TRANSFER_KEYS", ""},
		{"retention malformed", []string{"once"}, map[string]string{"TRANSFER_RETENTION": "a month"}, "TRANSFER_RETENTION", ""},
		{"batch size zero", []string{"once"}, map[string]string{"TRANSFER_BATCH_SIZE": "0"}, "TRANSFER_BATCH_SIZE", ""},
		{"passphrase and passphrase file", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE_FILE": passFile}, "TRANSFER_PASSPHRASE", ""},
		{"passphrase and passphrase command", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE_COMMAND": "printf x"}, "TRANSFER_PASSPHRASE", ""},
		{"passphrase file and command", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": passFile,
			"TRANSFER_PASSPHRASE_COMMAND": "printf x"}, "TRANSFER_PASSPHRASE", ""},
		{"passphrase file unreadable", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": filepath.Join(dir, "absent")}, "TRANSFER_PASSPHRASE_FILE", ""},
		{"no passphrase and no terminal", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE": ""}, "TRANSFER_PASSPHRASE", ""},
		{"keys new: short passphrase", []string{"keys", "new", "--out", filepath.Join(dir, "short.key")}, map[string]string{"TRANSFER_PASSPHRASE": "too short"}, "TRANSFER_PASSPHRASE", ""},
		{"keys new: no --out", []string{"keys", "new"}, nil, "--out", ""},
		{"keys list: no key files", []string{"keys", "list"}, map[string]string{"TRANSFER_KEYS": ""}, "TRANSFER_KEYS", ""},
		{"keys list: two files with one key", []string{"keys", "list"}, map[string]string{"TRANSFER_KEYS": copyOfKey + "," + copyOfKey2}, "TRANSFER_KEYS", ""},
		{"unknown command", []string{"frobnicate"}, nil, "frobnicate", ""},
		{"no command", nil, nil, "missing command", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := runTransfer(t, with(env, c.changes), c.args...)
			if code := cli.ExitCode(err); code != 2 {
				t.Fatalf("exit code %d (%v), want 2", code, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.naming) || strings.Contains(msg, "\n") {
				t.Errorf("message %q is not one line naming %s", msg, c.naming)
			}
			if c.secret != "" && strings.Contains(msg, c.secret) {
				t.Errorf("message %q repeats the secret value", msg)
			}
			if p.stdout.String() != "" {
				t.Errorf("printed %q", p.stdout.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "short.key")); !os.IsNotExist(err) {
		t.Errorf("keys new with a short passphrase wrote a key file")
	}
}

func TestUnreachableDatabaseIsExit1(t *testing.T) {
	t.Parallel()
	env := offlineEnv(t)
	for _, args := range [][]string{{"once"}, {"status"}} {
		start := time.Now()
		_, err := runTransfer(t, env, args...)
		if code := cli.ExitCode(err); code != 1 {
			t.Errorf("%s: exit code %d (%v), want 1", args[0], code, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v to give up on a refused connection", args[0], d)
		}
	}
}

func TestOnceReadsThePassphraseFromEachSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	dir := t.TempDir()
	file := func(content string) string {
		path := filepath.Join(dir, strings.ReplaceAll(content, "\r", "CR")+".pass")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name    string
		changes map[string]string
	}{
		{"TRANSFER_PASSPHRASE", nil},
		{"TRANSFER_PASSPHRASE_FILE", map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": file(testPassphrase + "\n")}},
		{"TRANSFER_PASSPHRASE_FILE without newline", map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": file(testPassphrase)}},
		{"TRANSFER_PASSPHRASE_FILE with CRLF", map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": file(testPassphrase + "\r\n")}},
		{"TRANSFER_PASSPHRASE_COMMAND", map[string]string{"TRANSFER_PASSPHRASE": "",
			"TRANSFER_PASSPHRASE_COMMAND": "printf '%s\\n' '" + testPassphrase + "'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := f.submit("symptoms", symptomsAnswers, nil)
			p, err := runTransfer(t, with(env, c.changes), "once")
			if err != nil {
				t.Fatalf("once: %v\n%s", err, p.stderr.String())
			}
			var sum map[string]any
			if err := json.Unmarshal([]byte(p.stdout.String()), &sum); err != nil {
				t.Fatalf("once printed %q: %v", p.stdout.String(), err)
			}
			if sum["moved"] != 1.0 {
				t.Errorf("summary %v, want moved 1", sum)
			}
			if _, ok := f.clinicalRows()[s.SubmissionID]; !ok {
				t.Errorf("not delivered")
			}
		})
	}
}

func TestOnceAndStatusReportTheQueue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	stranger, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	moved := f.submit("new-patient", newPatientAnswers, nil)
	bad := f.submit("symptoms", symptomsAnswers, nil)
	f.ownerExec(`UPDATE submissions SET received_at = received_at - interval '1 second' WHERE id = $1::uuid`, bad.SubmissionID)
	f.submit("symptoms", symptomsAnswers, &intake.Sealer{Recipient: stranger.Public, RowKey: f.rowKey,
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})

	p, err := runTransfer(t, env, "once")
	if err != nil {
		t.Fatalf("once: %v\n%s", err, p.stderr.String())
	}
	out := p.stdout.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("once printed %q, want one JSON line", out)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"moved": 1, "quarantined": 1, "expired": 0, "unknown_key": 1} {
		if got, ok := sum[key].(float64); !ok || got != want {
			t.Errorf("once %s = %v, want %v", key, sum[key], want)
		}
	}
	if s, ok := sum["seconds"].(float64); !ok || s <= 0 || s > 30 {
		t.Errorf("once seconds = %v", sum["seconds"])
	}

	// One more pending row under the known key.
	f.submit("new-patient", newPatientAnswers, nil)

	// status needs neither the passphrase nor the row keys.
	statusEnv := with(env, map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_ROW_KEYS": ""})
	status := func(env map[string]string) map[string]any {
		t.Helper()
		p, err := runTransfer(t, env, "status")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, p.stderr.String())
		}
		if strings.Count(p.stdout.String(), "\n") != 1 {
			t.Fatalf("status printed %q, want one JSON line", p.stdout.String())
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(p.stdout.String()), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := status(statusEnv)
	for key, want := range map[string]float64{"pending": 2, "last_succession": float64(moved.seq), "quarantined": 1, "unknown_key": 1} {
		if got, ok := st[key].(float64); !ok || got != want {
			t.Errorf("status %s = %v, want %v", key, st[key], want)
		}
	}
	if got, ok := st["oldest_pending_seconds"].(float64); !ok || got < 7200 || got > 7300 {
		t.Errorf("status oldest_pending_seconds = %v, want about two hours", st["oldest_pending_seconds"])
	}
	if byKey, _ := st["pending_by_key"].(map[string]any); byKey[stranger.Public.ID.String()] != 1.0 || byKey[f.key.Public.ID.String()] != 1.0 {
		t.Errorf("status pending_by_key = %v", st["pending_by_key"])
	}

	// Without TRANSFER_KEYS the worker cannot know which keys are unknown.
	st = status(with(statusEnv, map[string]string{"TRANSFER_KEYS": ""}))
	if v, ok := st["unknown_key"]; !ok || v != nil {
		t.Errorf("status without TRANSFER_KEYS: unknown_key = %v, want null", v)
	}
	if st["pending"] != 2.0 {
		t.Errorf("status without TRANSFER_KEYS: pending = %v", st["pending"])
	}
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"TRANSFER_PASSPHRASE": testPassphrase}
	out := filepath.Join(dir, "clinic.key")

	p, err := runTransfer(t, env, "keys", "new", "--out", out)
	if err != nil {
		t.Fatalf("keys new: %v", err)
	}
	public := p.stdout.String()
	pub, err := seal.ParsePublicKey(public)
	if err != nil || strings.Count(public, "\n") != 1 {
		t.Fatalf("keys new printed %q, want one public key string: %v", public, err)
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(written, []byte(testPassphrase)) {
		t.Fatal("the key file holds the passphrase")
	}
	kf, err := keyfile.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kf.Unlock([]byte(testPassphrase))
	if err != nil || k.Public != pub {
		t.Fatalf("the key file does not unlock to the printed key: %v", err)
	}
	if _, err := kf.Unlock([]byte("wrong horse battery staple")); err == nil {
		t.Fatal("the key file unlocks with a wrong passphrase")
	}

	t.Run("show prints what new printed, without a passphrase", func(t *testing.T) {
		p, err := runTransfer(t, map[string]string{}, "keys", "show", out)
		if err != nil {
			t.Fatal(err)
		}
		if p.stdout.String() != public {
			t.Errorf("keys show printed %q, keys new %q", p.stdout.String(), public)
		}
	})
	t.Run("new refuses to overwrite a key file", func(t *testing.T) {
		p, err := runTransfer(t, env, "keys", "new", "--out", out)
		if err == nil || !strings.Contains(err.Error(), out) {
			t.Fatalf("keys new over an existing file: %v, want a refusal naming the file", err)
		}
		if p.stdout.String() != "" {
			t.Errorf("printed %q", p.stdout.String())
		}
		if again, _ := os.ReadFile(out); !bytes.Equal(again, written) {
			t.Error("the existing key file changed")
		}
	})
	t.Run("list prints the key id of each file", func(t *testing.T) {
		other, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		second := writeKeyFile(t, dir, "second.key", other, "a different passphrase")
		p, err := runTransfer(t, map[string]string{"TRANSFER_KEYS": out + ", " + second}, "keys", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := pub.ID.String() + "\t" + out + "\n" + other.Public.ID.String() + "\t" + second + "\n"
		if p.stdout.String() != want {
			t.Errorf("keys list printed %q, want %q", p.stdout.String(), want)
		}
	})
	t.Run("row-key prints a fresh row key", func(t *testing.T) {
		var keys []string
		for range 2 {
			p, err := runTransfer(t, map[string]string{}, "keys", "row-key")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := seal.ParseRowKey(p.stdout.String()); err != nil {
				t.Fatalf("keys row-key printed %q: %v", p.stdout.String(), err)
			}
			keys = append(keys, p.stdout.String())
		}
		if keys[0] == keys[1] {
			t.Error("two row keys are equal")
		}
	})
}

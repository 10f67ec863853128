package transfer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

const newTestPassphrase = "a brand new passphrase, long enough"

// readBytes is path's content, failing the test when it cannot be read.
func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirNames lists the names in dir, so a test can see nothing was left behind.
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

// wantExit checks a command's exit code and that its error names what it must,
// on one line.
func wantExit(t *testing.T, err error, code int, naming string) {
	t.Helper()
	if got := cli.ExitCode(err); got != code {
		t.Fatalf("exit code %d (%v), want %d", got, err, code)
	}
	if err == nil {
		return
	}
	if msg := err.Error(); !strings.Contains(msg, naming) || strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line naming %s", msg, naming)
	}
}

// logLines parses a program's stderr as JSON log lines.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// permissionWarnings are the log lines warning about path's permissions.
func permissionWarnings(t *testing.T, stderr, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logLines(t, stderr) {
		if l["level"] == "WARN" && l["file"] == path && strings.Contains(l["msg"].(string), "group or others") {
			out = append(out, l)
		}
	}
	return out
}

func TestKeysNewRefusesAnExistingFileBeforeAskingForAPassphrase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "passphrase-was-read")
	existing := filepath.Join(dir, "clinic.key")
	if err := os.WriteFile(existing, []byte("an existing key file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.key")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	// The passphrase comes from a command that leaves a mark: a refusal
	// must come before the passphrase is read, so before any derivation.
	env := map[string]string{"TRANSFER_PASSPHRASE_COMMAND": "touch '" + marker + "'; printf '%s' '" + testPassphrase + "'"}
	for _, c := range []struct{ name, out, naming string }{
		{"existing file", existing, existing},
		{"dangling symbolic link", dangling, dangling},
		{"missing directory", filepath.Join(dir, "no", "clinic.key"), "--out"},
		{"a directory", dir, dir},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := runTransfer(t, env, "keys", "new", "--out", c.out)
			wantExit(t, err, 2, c.naming)
			if !strings.Contains(err.Error(), "--out") {
				t.Errorf("error %q does not name --out", err)
			}
			if p.stdout.String() != "" {
				t.Errorf("printed %q", p.stdout.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the passphrase was read before the refusal")
			}
		})
	}
	if got := readBytes(t, existing); string(got) != "an existing key file\n" {
		t.Error("the existing file changed")
	}
	if names := dirNames(t, dir); names != "clinic.key,dangling.key" {
		t.Errorf("directory holds %s", names)
	}
}

func TestKeysNewWritesTheDefaultCost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "clinic.key")
	p, err := runTransfer(t, map[string]string{"TRANSFER_PASSPHRASE_FILE": passFile}, "keys", "new", "--out", out)
	if err != nil {
		t.Fatalf("keys new: %v", err)
	}
	f, err := keyfile.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.KDF.Params != keyfile.DefaultParams {
		t.Errorf("new key file costs %+v, want DefaultParams %+v", f.KDF.Params, keyfile.DefaultParams)
	}
	if p.stdout.String() != f.PublicKey+"\n" {
		t.Errorf("printed %q, want the file's public key string", p.stdout.String())
	}
	if strings.Contains(p.stderr.String(), testPassphrase) {
		t.Error("the log holds the passphrase")
	}
	var logged bool
	for _, l := range logLines(t, p.stderr.String()) {
		logged = logged || (l["msg"] == "key file written" && l["key_id"] == f.KeyID && l["file"] == out)
	}
	if !logged {
		t.Errorf("no log line names the new key id: %s", p.stderr.String())
	}
}

func TestKeysPasswd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	keyFile := env["TRANSFER_KEYS"]
	dir := filepath.Dir(keyFile)
	before, err := keyfile.Read(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Made long ago: passwd must keep the key's creation time.
	before.Created = time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.WriteFile(keyFile, before.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	original := readBytes(t, keyFile)
	sealedBefore := f.submit("new-patient", newPatientAnswers, nil)

	secrets := t.TempDir() // passphrase files live apart from the key
	newPassFile := filepath.Join(secrets, "new")
	if err := os.WriteFile(newPassFile, []byte(newTestPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notAKey := filepath.Join(secrets, "notes.txt")
	if err := os.WriteFile(notAKey, []byte("not a key file"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(secrets, "link.key")
	if err := os.Symlink(keyFile, link); err != nil {
		t.Fatal(err)
	}
	passwdEnv := with(env, map[string]string{"TRANSFER_NEW_PASSPHRASE_FILE": newPassFile})

	refusals := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		naming string
	}{
		{"wrong current passphrase", with(passwdEnv, map[string]string{"TRANSFER_PASSPHRASE": "wrong horse battery staple"}), []string{keyFile}, 1, keyFile},
		{"no current passphrase", with(passwdEnv, map[string]string{"TRANSFER_PASSPHRASE": ""}), []string{keyFile}, 2, "TRANSFER_PASSPHRASE"},
		{"no new passphrase", env, []string{keyFile}, 2, "TRANSFER_NEW_PASSPHRASE"},
		{"new passphrase too short", with(env, map[string]string{"TRANSFER_NEW_PASSPHRASE": "too short"}), []string{keyFile}, 2, "TRANSFER_NEW_PASSPHRASE"},
		{"new passphrase twice", with(passwdEnv, map[string]string{"TRANSFER_NEW_PASSPHRASE": newTestPassphrase}), []string{keyFile}, 2, "TRANSFER_NEW_PASSPHRASE"},
		{"new passphrase file missing", with(env, map[string]string{"TRANSFER_NEW_PASSPHRASE_FILE": filepath.Join(secrets, "absent")}), []string{keyFile}, 2, "TRANSFER_NEW_PASSPHRASE_FILE"},
		{"not a key file", passwdEnv, []string{notAKey}, 2, notAKey},
		{"missing key file", passwdEnv, []string{filepath.Join(dir, "absent.key")}, 2, "absent.key"},
		{"a symbolic link", passwdEnv, []string{link}, 2, link},
		{"no file", passwdEnv, nil, 2, "FILE"},
		{"two files", passwdEnv, []string{keyFile, keyFile}, 2, "FILE"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			p, err := runTransfer(t, c.env, append([]string{"keys", "passwd"}, c.args...)...)
			wantExit(t, err, c.code, c.naming)
			if !bytes.Equal(readBytes(t, keyFile), original) {
				t.Fatal("the refused passwd changed the key file")
			}
			if names := dirNames(t, dir); names != "clinic.key" {
				t.Errorf("key directory holds %s", names)
			}
			if p.stdout.String() != "" {
				t.Errorf("printed %q", p.stdout.String())
			}
		})
	}

	p, err := runTransfer(t, passwdEnv, "keys", "passwd", keyFile)
	if err != nil {
		t.Fatalf("keys passwd: %v\n%s", err, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), testPassphrase) || strings.Contains(p.stderr.String(), newTestPassphrase) {
		t.Error("the log holds a passphrase")
	}
	if names := dirNames(t, dir); names != "clinic.key" {
		t.Errorf("key directory holds %s after passwd", names)
	}
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file after passwd: %v, %v; want mode 0600", info.Mode(), err)
	}
	after, err := keyfile.Read(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyID != before.KeyID || after.PublicKey != before.PublicKey || !after.Created.Equal(before.Created) {
		t.Errorf("passwd changed the header: %s %v, was %s %v", after.KeyID, after.Created, before.KeyID, before.Created)
	}
	if after.KDF.Params != keyfile.DefaultParams {
		t.Errorf("passwd wrote cost %+v, want DefaultParams", after.KDF.Params)
	}
	k, err := after.Unlock([]byte(newTestPassphrase))
	if err != nil || k.Bytes() != f.key.Bytes() {
		t.Fatalf("the new passphrase does not unlock the same key: %v", err)
	}

	// The old passphrase no longer unlocks the file: exit 1, nothing moves.
	_, err = runTransfer(t, env, "once")
	wantExit(t, err, 1, keyFile)
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("intake holds %d rows after a refused once, want 1", n)
	}
	// The new one does, and the row sealed before the change moves.
	p, err = runTransfer(t, with(env, map[string]string{"TRANSFER_PASSPHRASE": newTestPassphrase}), "once")
	if err != nil {
		t.Fatalf("once with the new passphrase: %v\n%s", err, p.stderr.String())
	}
	if d, ok := f.clinicalRows()[sealedBefore.SubmissionID]; !ok || d.receipt != sealedBefore.receipt {
		t.Fatal("the row sealed before the passphrase change was not delivered")
	}
}

func TestKeysRetire(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	keyFile := env["TRANSFER_KEYS"]
	dir := filepath.Dir(keyFile)
	original := readBytes(t, keyFile)
	// A second name for the same bytes: retiring must destroy the bytes,
	// not only the name.
	if err := os.Link(keyFile, filepath.Join(dir, "hardlink.key")); err != nil {
		t.Fatal(err)
	}
	copyOfKey := filepath.Join(t.TempDir(), "copy.key")
	if err := os.WriteFile(copyOfKey, original, 0o600); err != nil {
		t.Fatal(err)
	}
	notAKey := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notAKey, []byte("precious notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherFile := writeKeyFile(t, t.TempDir(), "other.key", other, testPassphrase)

	// The worker's keyring without the key to retire: the procedure's state.
	retireEnv := with(env, map[string]string{"TRANSFER_KEYS": otherFile, "TRANSFER_PASSPHRASE": "", "TRANSFER_ROW_KEYS": ""})
	pending := f.submit("new-patient", newPatientAnswers, nil)

	refusals := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		naming string
	}{
		{"a row under the key is pending", retireEnv, []string{keyFile}, 1, keyFile},
		{"TRANSFER_KEYS still lists it", with(retireEnv, map[string]string{"TRANSFER_KEYS": otherFile + "," + keyFile}), []string{keyFile}, 2, "TRANSFER_KEYS"},
		{"TRANSFER_KEYS lists a copy of it", with(retireEnv, map[string]string{"TRANSFER_KEYS": copyOfKey}), []string{keyFile}, 2, "TRANSFER_KEYS"},
		{"no intake database", with(retireEnv, map[string]string{"INTAKE_DATABASE_URL": ""}), []string{keyFile}, 2, "INTAKE_DATABASE_URL"},
		{"intake database URL malformed", with(retireEnv, map[string]string{"INTAKE_DATABASE_URL": "postgres://x:s3cret@db:port/intake"}), []string{keyFile}, 2, "INTAKE_DATABASE_URL"},
		{"intake database unreachable", with(retireEnv, map[string]string{"INTAKE_DATABASE_URL": unreachable}), []string{keyFile}, 1, "intake database"},
		{"not a key file", retireEnv, []string{notAKey}, 2, notAKey},
		{"missing file", retireEnv, []string{filepath.Join(dir, "absent.key")}, 2, "absent.key"},
		{"a directory", retireEnv, []string{dir}, 2, dir},
		{"no file", retireEnv, nil, 2, "FILE"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			p, err := runTransfer(t, c.env, append([]string{"keys", "retire"}, c.args...)...)
			wantExit(t, err, c.code, c.naming)
			if !bytes.Equal(readBytes(t, keyFile), original) {
				t.Fatal("the refused retire changed the key file")
			}
			if got := readBytes(t, notAKey); string(got) != "precious notes" {
				t.Fatal("retire changed a file that is not a key file")
			}
			if p.stdout.String() != "" {
				t.Errorf("printed %q", p.stdout.String())
			}
		})
	}
	_, err = runTransfer(t, retireEnv, "keys", "retire", keyFile)
	if msg := err.Error(); !strings.Contains(msg, "1 pending") || !strings.Contains(msg, f.key.Public.ID.String()) {
		t.Errorf("refusal %q does not say how many rows under which key id", msg)
	}

	// A pending row under another key does not hold the retirement up.
	f.submit("symptoms", symptomsAnswers, &intake.Sealer{Recipient: other.Public, RowKey: f.rowKey, Now: time.Now})
	// Once the row under the key has moved, retire destroys it.
	if p, err := runTransfer(t, env, "once"); err != nil {
		t.Fatalf("once: %v\n%s", err, p.stderr.String())
	}
	if _, ok := f.clinicalRows()[pending.SubmissionID]; !ok {
		t.Fatal("the pending row did not move")
	}
	p, err := runTransfer(t, retireEnv, "keys", "retire", keyFile)
	if err != nil {
		t.Fatalf("retire: %v\n%s", err, p.stderr.String())
	}
	if _, err := os.Lstat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the key file is still there: %v", err)
	}
	if got := readBytes(t, filepath.Join(dir, "hardlink.key")); len(got) != 0 {
		t.Fatalf("the key file's bytes survive under another name (%d bytes)", len(got))
	}
	if names := dirNames(t, dir); names != "hardlink.key" {
		t.Errorf("key directory holds %s", names)
	}
	var logged bool
	for _, l := range logLines(t, p.stderr.String()) {
		logged = logged || (l["key_id"] == f.key.Public.ID.String() && strings.Contains(l["msg"].(string), "backup"))
	}
	if !logged {
		t.Errorf("no log line names the retired key id and reminds of backups:\n%s", p.stderr.String())
	}
	// The key is gone for good: the worker can no longer start with it.
	_, err = runTransfer(t, env, "once")
	wantExit(t, err, 2, "TRANSFER_KEYS")
}

func TestKeyFileOpenToOthersIsWarnedAbout(t *testing.T) {
	t.Parallel()
	env := offlineEnv(t)
	keyFile := env["TRANSFER_KEYS"]
	for _, c := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}, {0o620, true}} {
		if err := os.Chmod(keyFile, c.mode); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"keys", "list"}, {"keys", "show", keyFile}, {"once"}} {
			p, err := runTransfer(t, env, args...)
			if args[0] == "once" {
				wantExit(t, err, 1, "database") // unlocked, then no database
			} else if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			warnings := permissionWarnings(t, p.stderr.String(), keyFile)
			if (len(warnings) > 0) != c.warn {
				t.Errorf("mode %04o, %v: %d warnings, want warning %v:\n%s", c.mode, args, len(warnings), c.warn, p.stderr.String())
			}
			if want := fmt.Sprintf("%04o", c.mode.Perm()); len(warnings) > 0 && warnings[0]["mode"] != want {
				t.Errorf("warning names mode %v, want %s", warnings[0]["mode"], want)
			}
		}
	}
}

func TestBadKeyFilesAreExit2NamingTheFile(t *testing.T) {
	t.Parallel()
	env := offlineEnv(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.key")
	if err := os.WriteFile(corrupt, []byte(`{"format":"airlock-private-key","version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dup := filepath.Join(dir, "dup.key")
	if err := os.WriteFile(dup, readBytes(t, env["TRANSFER_KEYS"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		changes map[string]string
		naming  string
	}{
		{"once: corrupt key file", []string{"once"}, map[string]string{"TRANSFER_KEYS": corrupt}, corrupt},
		{"status: corrupt key file", []string{"status"}, map[string]string{"TRANSFER_KEYS": corrupt}, corrupt},
		{"list: corrupt key file", []string{"keys", "list"}, map[string]string{"TRANSFER_KEYS": env["TRANSFER_KEYS"] + "," + corrupt}, corrupt},
		{"show: corrupt key file", []string{"keys", "show", corrupt}, nil, corrupt},
		{"show: missing key file", []string{"keys", "show", filepath.Join(dir, "absent.key")}, nil, "absent.key"},
		{"once: one key listed twice", []string{"once"}, map[string]string{"TRANSFER_KEYS": env["TRANSFER_KEYS"] + "," + env["TRANSFER_KEYS"]}, "same key id"},
		{"status: two files with one key", []string{"status"}, map[string]string{"TRANSFER_KEYS": env["TRANSFER_KEYS"] + "," + dup}, "same key id"},
		{"empty passphrase file", []string{"once"}, map[string]string{"TRANSFER_PASSPHRASE": "", "TRANSFER_PASSPHRASE_FILE": filepath.Join(dir, "empty")}, "TRANSFER_PASSPHRASE_FILE"},
		{"keys: no subcommand", []string{"keys"}, nil, "missing subcommand"},
		{"keys: unknown subcommand", []string{"keys", "rotate"}, nil, "rotate"},
		{"keys list: an argument", []string{"keys", "list", "extra"}, nil, "no arguments"},
		{"keys row-key: an argument", []string{"keys", "row-key", "extra"}, nil, "no arguments"},
		{"keys show: no file", []string{"keys", "show"}, nil, "FILE"},
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := runTransfer(t, with(env, c.changes), c.args...)
			wantExit(t, err, 2, c.naming)
			if p.stdout.String() != "" {
				t.Errorf("printed %q", p.stdout.String())
			}
		})
	}

	// A file that parses but does not open is told apart from a wrong
	// passphrase by nobody: exit 1 naming the file, as a wrong passphrase.
	var m map[string]any
	if err := json.Unmarshal(readBytes(t, env["TRANSFER_KEYS"]), &m); err != nil {
		t.Fatal(err)
	}
	ct, err := base64.StdEncoding.DecodeString(m["ciphertext"].(string))
	if err != nil {
		t.Fatal(err)
	}
	ct[0] ^= 1
	m["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
	edited, _ := json.Marshal(m)
	damaged := filepath.Join(dir, "damaged.key")
	if err := os.WriteFile(damaged, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.Read(damaged); err != nil {
		t.Fatalf("the edited file does not parse: %v", err)
	}
	_, err = runTransfer(t, with(env, map[string]string{"TRANSFER_KEYS": damaged}), "once")
	wantExit(t, err, 1, damaged)
}

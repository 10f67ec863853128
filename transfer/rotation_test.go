package transfer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

// rotationStack is a complete Airlock run the way ops run it, through the
// programs' command lines and environments only: two databases, transfer's
// environment, and an intake server that is restarted with new keys, as a
// rotation does.
type rotationStack struct {
	t                          *testing.T
	intakeDB, clinicalDB       string        // owner URLs
	intakeOwner, clinicalOwner *pgxpool.Pool // for the test's own checks and for replays
	keyDir                     string
	transferEnv                map[string]string
	intakeURL                  string
	stopIntake                 func()
}

func newRotationStack(t *testing.T) *rotationStack {
	t.Helper()
	s := &rotationStack{
		t:          t,
		intakeDB:   pgtest.NewDB(t, "intake", migrations.Intake()),
		clinicalDB: pgtest.NewDB(t, "clinical", migrations.Clinical()),
		keyDir:     t.TempDir(),
	}
	s.intakeOwner = newPool(t, s.intakeDB, nil)
	s.clinicalOwner = newPool(t, s.clinicalDB, nil)
	passFile := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.transferEnv = map[string]string{
		"INTAKE_DATABASE_URL":      pgtest.URLAs(t, s.intakeDB, "airlock_intake_transfer"),
		"CLINICAL_DATABASE_URL":    pgtest.URLAs(t, s.clinicalDB, "airlock_clinical_transfer"),
		"TRANSFER_PASSPHRASE_FILE": passFile,
	}
	t.Cleanup(func() {
		if s.stopIntake != nil {
			s.stopIntake()
		}
	})
	return s
}

// transfer runs a transfer command with the stack's environment changed by
// changes; it fails the test unless the command succeeds.
func (s *rotationStack) transfer(changes map[string]string, args ...string) string {
	s.t.Helper()
	p, err := runTransfer(s.t, with(s.transferEnv, changes), args...)
	if err != nil {
		s.t.Fatalf("transfer %s: %v\n%s", strings.Join(args, " "), err, p.stderr.String())
	}
	return p.stdout.String()
}

// newKey makes a clinic key file and returns it with its public key string.
// It is written at the tests' cheap cost (the format is the same); `keys
// new` itself is tested in keys_test.go, at the real cost.
func (s *rotationStack) newKey(name string) (string, string) {
	s.t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		s.t.Fatal(err)
	}
	path := writeKeyFile(s.t, s.keyDir, name, k, testPassphrase)
	return path, strings.TrimSpace(s.transfer(nil, "keys", "show", path))
}

func (s *rotationStack) newRowKey() string {
	s.t.Helper()
	return strings.TrimSpace(s.transfer(nil, "keys", "row-key"))
}

// once runs `transfer once` and returns its summary.
func (s *rotationStack) once() map[string]float64 {
	s.t.Helper()
	var sum map[string]any
	out := s.transfer(nil, "once")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		s.t.Fatalf("once printed %q: %v", out, err)
	}
	counts := map[string]float64{}
	for k, v := range sum {
		if n, ok := v.(float64); ok {
			counts[k] = n
		}
	}
	return counts
}

// status runs `transfer status` without passphrase or row keys, as ops do.
func (s *rotationStack) status() map[string]any {
	s.t.Helper()
	out := s.transfer(map[string]string{"TRANSFER_PASSPHRASE_FILE": "", "TRANSFER_ROW_KEYS": ""}, "status")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("status printed %q: %v", out, err)
	}
	return st
}

// serveIntake (re)starts the intake server with these recipients and row key:
// a deployment of new intake settings.
func (s *rotationStack) serveIntake(recipients, rowKey string) {
	s.t.Helper()
	if s.stopIntake != nil {
		s.stopIntake()
	}
	p := &program{run: intake.Run, env: map[string]string{
		"INTAKE_DATABASE_URL": pgtest.URLAs(s.t, s.intakeDB, "airlock_intake_writer"),
		"INTAKE_ADDR":         "127.0.0.1:0",
		"INTAKE_PLAIN_HTTP":   "1",
		"INTAKE_RECIPIENTS":   recipients,
		"INTAKE_ROW_KEY":      rowKey,
		"INTAKE_RATE_LIMIT":   "0",
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.exec(ctx, "serve") }()
	s.intakeURL = "http://" + waitListening(s.t, &p.stderr, done)
	var once sync.Once
	s.stopIntake = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				s.t.Errorf("intake serve: %v", err)
			}
		})
	}
}

// stored is one row as intake stored it: its receipt (from the submitter)
// and its columns (as the intake database holds them).
type stored struct {
	receipt string
	seq     int64
	row     seal.Row
	mac     []byte
}

// submit posts a submission to the running intake and reads back its row.
func (s *rotationStack) submit() *stored {
	s.t.Helper()
	status, body := postJSON(s.t, s.intakeURL+"/api/v1/forms/symptoms/submissions", symptomsAnswers)
	receipt, _ := body["receipt"].(string)
	if status != http.StatusCreated || receipt == "" {
		s.t.Fatalf("submit: status %d, body %v", status, body)
	}
	r := &stored{receipt: receipt}
	err := s.intakeOwner.QueryRow(context.Background(), `SELECT seq, id::text, form_id, form_version, key_id, received_at, envelope, mac
FROM submissions ORDER BY seq DESC LIMIT 1`).Scan(&r.seq, &r.row.SubmissionID, &r.row.FormID, &r.row.FormVersion,
		&r.row.KeyID, &r.row.ReceivedAt, &r.row.Envelope, &r.mac)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// insertAsOwner stores a row with the given MAC straight into intake: what
// someone with database access (a backup, a captured INSERT) can do.
func (s *rotationStack) insertAsOwner(row seal.Row, mac []byte) {
	s.t.Helper()
	_, err := s.intakeOwner.Exec(context.Background(), `INSERT INTO submissions (id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7)`, row.SubmissionID, row.FormID, row.FormVersion, row.KeyID, row.ReceivedAt, row.Envelope, mac)
	if err != nil {
		s.t.Fatal(err)
	}
}

// deliveredOnce checks each row reached clinical exactly once, intact.
func (s *rotationStack) deliveredOnce(rows ...*stored) {
	s.t.Helper()
	for _, r := range rows {
		n := countRows(s.t, s.clinicalOwner, `SELECT count(*) FROM submissions WHERE intake_id = $1::uuid AND receipt = $2`,
			r.row.SubmissionID, r.receipt)
		if n != 1 {
			s.t.Errorf("seq %d (key %s) is in clinical %d times, want once", r.seq, r.row.KeyID, n)
		}
	}
}

func (s *rotationStack) quarantineReasons(r *stored) []string {
	s.t.Helper()
	rows, err := s.clinicalOwner.Query(context.Background(), `SELECT reason FROM quarantine WHERE intake_seq = $1`, r.seq)
	if err != nil {
		s.t.Fatal(err)
	}
	var reasons []string
	for rows.Next() {
		var reason string
		if err := rows.Scan(&reason); err != nil {
			s.t.Fatal(err)
		}
		reasons = append(reasons, reason)
	}
	return reasons
}

func wantCounts(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v (all: %v)", what, k, got[k], v, got)
		}
	}
}

// TestClinicalKeyRotationWithoutDowntime follows docs/keys.md: the new key
// goes to transfer first, then intake seals to it, old rows keep moving, and
// the old key is retired once status shows no row needs it.
func TestClinicalKeyRotationWithoutDowntime(t *testing.T) {
	t.Parallel()
	s := newRotationStack(t)
	fileA, publicA := s.newKey("clinic-a.key")
	rowKey := s.newRowKey()
	s.transferEnv["TRANSFER_KEYS"] = fileA
	s.transferEnv["TRANSFER_ROW_KEYS"] = rowKey
	idA := keyIDOf(t, publicA)
	s.serveIntake(publicA, rowKey)

	moved := s.submit()
	wantCounts(t, "first pass", s.once(), map[string]float64{"moved": 1})
	oldRow := s.submit() // under A, still pending while the rotation happens

	// 1. The new key goes to transfer first.
	fileB, publicB := s.newKey("clinic-b.key")
	idB := keyIDOf(t, publicB)
	s.transferEnv["TRANSFER_KEYS"] = fileA + "," + fileB
	if got, want := s.transfer(nil, "keys", "list"), idA+"\t"+fileA+"\n"+idB+"\t"+fileB+"\n"; got != want {
		t.Fatalf("keys list printed %q, want %q", got, want)
	}

	// 2. Then intake seals to it (the old key may stay listed second).
	s.serveIntake(publicB+","+publicA, rowKey)
	newRow := s.submit()
	if oldRow.row.KeyID != idA || newRow.row.KeyID != idB {
		t.Fatalf("rows under %s and %s, want %s then %s", oldRow.row.KeyID, newRow.row.KeyID, idA, idB)
	}
	st := s.status()
	if byKey, _ := st["pending_by_key"].(map[string]any); byKey[idA] != 1.0 || byKey[idB] != 1.0 || st["unknown_key"] != 0.0 {
		t.Fatalf("status during the rotation: %v, want one row pending under each key and none unknown", st)
	}

	// The old key cannot be retired while a row under it waits.
	retireEnv := map[string]string{"TRANSFER_KEYS": fileB}
	p, err := runTransfer(t, with(s.transferEnv, retireEnv), "keys", "retire", fileA)
	wantExit(t, err, 1, fileA)
	if _, err := os.Stat(fileA); err != nil {
		t.Fatalf("the refused retire removed the key file: %v", err)
	}
	if p.stdout.String() != "" {
		t.Errorf("refused retire printed %q", p.stdout.String())
	}

	// 3. Old and new rows both move with both keys in the keyring.
	wantCounts(t, "pass during the rotation", s.once(), map[string]float64{"moved": 2, "unknown_key": 0, "quarantined": 0})
	st = s.status()
	if byKey, _ := st["pending_by_key"].(map[string]any); byKey[idA] != nil && byKey[idA] != 0.0 {
		t.Fatalf("status after the pass: pending_by_key %v, want none under %s", byKey, idA)
	}
	if st["pending"] != 0.0 {
		t.Fatalf("status after the pass: %v, want nothing pending", st)
	}

	// 4. The old key leaves the keyring, intake stops listing it, and it is
	// retired: destroyed.
	s.transferEnv["TRANSFER_KEYS"] = fileB
	s.serveIntake(publicB, rowKey)
	if p, err := runTransfer(t, s.transferEnv, "keys", "retire", fileA); err != nil {
		t.Fatalf("retire once nothing needs the key: %v\n%s", err, p.stderr.String())
	}
	if _, err := os.Stat(fileA); !os.IsNotExist(err) {
		t.Fatalf("the retired key file is still there: %v", err)
	}
	after := s.submit()
	wantCounts(t, "pass after the retirement", s.once(), map[string]float64{"moved": 1, "unknown_key": 0})
	s.deliveredOnce(moved, oldRow, newRow, after)

	// An intake replica left behind still seals to the retired key: its row
	// is not delivered, not dropped, not quarantined, but waits and is
	// counted as unknown_key, which is how ops notice.
	s.serveIntake(publicA, rowKey)
	stale := s.submit()
	wantCounts(t, "pass with a stale replica's row", s.once(), map[string]float64{"moved": 0, "unknown_key": 1, "quarantined": 0})
	st = s.status()
	if byKey, _ := st["pending_by_key"].(map[string]any); st["unknown_key"] != 1.0 || byKey[idA] != 1.0 {
		t.Fatalf("status with a row under the retired key: %v", st)
	}
	if n := countRows(t, s.intakeOwner, `SELECT count(*) FROM submissions WHERE seq = $1`, stale.seq); n != 1 {
		t.Fatal("the row under the retired key left intake")
	}
	if n := countRows(t, s.clinicalOwner, `SELECT count(*) FROM submissions`); n != 4 {
		t.Fatalf("clinical holds %d submissions, want 4", n)
	}
}

// TestRowKeyRotation: a new row key goes to transfer first (TRANSFER_ROW_KEYS
// holds both), then intake authenticates with it, rows under the old one
// still move, and the old one is removed. Rows no configured key
// authenticates are quarantined; replays are never delivered twice.
func TestRowKeyRotation(t *testing.T) {
	t.Parallel()
	s := newRotationStack(t)
	keyFile, public := s.newKey("clinic.key")
	oldRowKey := s.newRowKey()
	s.transferEnv["TRANSFER_KEYS"] = keyFile
	s.transferEnv["TRANSFER_ROW_KEYS"] = oldRowKey
	s.serveIntake(public, oldRowKey)
	underOld := s.submit() // pending while the row key rotates

	// 1. The new row key goes to transfer first.
	newRowKey := s.newRowKey()
	s.transferEnv["TRANSFER_ROW_KEYS"] = newRowKey + "," + oldRowKey
	// 2. Then intake authenticates with it.
	s.serveIntake(public, newRowKey)
	underNew := s.submit()

	// A row no configured row key authenticated (a forger's key): it fails
	// under every one of them and is quarantined.
	forgerKey, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := underNew.row
	forged.SubmissionID = "6f1c1b1e-3b8a-4d57-9a3c-0d6f3f0d2a11"
	s.insertAsOwner(forged, forgerKey.MAC(forged))
	forgedRow := &stored{row: forged}
	if err := s.intakeOwner.QueryRow(context.Background(), `SELECT seq FROM submissions WHERE id = $1::uuid`, forged.SubmissionID).Scan(&forgedRow.seq); err != nil {
		t.Fatal(err)
	}

	wantCounts(t, "pass during the rotation", s.once(), map[string]float64{"moved": 2, "quarantined": 1})
	s.deliveredOnce(underOld, underNew)
	if r := s.quarantineReasons(forgedRow); len(r) != 1 || r[0] != "mac" {
		t.Errorf("forged row quarantined with %v, want [mac]", r)
	}
	if st := s.status(); st["pending"] != 0.0 {
		t.Fatalf("status after the pass: %v, want nothing pending", st)
	}

	// 3. Nothing pending was received before the switch: the old row key
	// is removed.
	s.transferEnv["TRANSFER_ROW_KEYS"] = newRowKey

	// Replays from a backup of intake: the row under the removed key now
	// fails its MAC and is quarantined; the row under the current key is a
	// duplicate. Neither is delivered twice.
	s.insertAsOwner(underOld.row, underOld.mac)
	replayOld := &stored{row: underOld.row}
	if err := s.intakeOwner.QueryRow(context.Background(), `SELECT seq FROM submissions WHERE id = $1::uuid`, underOld.row.SubmissionID).Scan(&replayOld.seq); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "replay under the removed row key", s.once(), map[string]float64{"moved": 0, "quarantined": 1, "duplicates": 0})
	if r := s.quarantineReasons(replayOld); len(r) != 1 || r[0] != "mac" {
		t.Errorf("replayed old row quarantined with %v, want [mac]", r)
	}
	s.insertAsOwner(underNew.row, underNew.mac)
	wantCounts(t, "replay under the current row key", s.once(), map[string]float64{"moved": 0, "quarantined": 0, "duplicates": 1})

	later := s.submit()
	wantCounts(t, "pass after the rotation", s.once(), map[string]float64{"moved": 1, "quarantined": 0})
	s.deliveredOnce(underOld, underNew, later)
	if n := countRows(t, s.clinicalOwner, `SELECT count(*) FROM submissions`); n != 3 {
		t.Fatalf("clinical holds %d submissions, want 3", n)
	}
	if n := countRows(t, s.intakeOwner, `SELECT count(*) FROM submissions`); n != 0 {
		t.Fatalf("intake still holds %d rows", n)
	}
}

// keyIDOf is the key id a public key string names.
func keyIDOf(t *testing.T, public string) string {
	t.Helper()
	pub, err := seal.ParsePublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	return pub.ID.String()
}

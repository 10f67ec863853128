package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/transfer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// lockedBuffer collects a program's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// program runs one of the three Airlock programs in-process, as its main would.
type program struct {
	run    func(context.Context, cli.Env) error
	env    map[string]string
	stdout lockedBuffer
	stderr lockedBuffer
}

func (p *program) exec(ctx context.Context, args ...string) error {
	return p.run(ctx, cli.Env{
		Args:   args,
		Getenv: func(k string) string { return p.env[k] },
		Stdin:  strings.NewReader(""),
		Stdout: &p.stdout,
		Stderr: &p.stderr,
	})
}

// stack is a complete Airlock: two databases, a key, and the three programs.
type stack struct {
	intakeDB, clinicalDB string // owner URLs
	intake, transfer     *program
	clinical             *program
	intakeURL            string
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{
		intakeDB:   pgtest.NewDB(t, "intake", migrations.Intake()),
		clinicalDB: pgtest.NewDB(t, "clinical", migrations.Clinical()),
	}
	keyFile := filepath.Join(t.TempDir(), "clinic.key")
	s.transfer = &program{run: transfer.Run, env: map[string]string{
		"INTAKE_DATABASE_URL":   pgtest.URLAs(t, s.intakeDB, "airlock_intake_transfer"),
		"CLINICAL_DATABASE_URL": pgtest.URLAs(t, s.clinicalDB, "airlock_clinical_transfer"),
		"TRANSFER_KEYS":         keyFile,
		"TRANSFER_PASSPHRASE":   "correct horse battery staple",
	}}
	if err := s.transfer.exec(ctx, "keys", "new", "--out", keyFile); err != nil {
		t.Fatalf("keys new: %v", err)
	}
	publicKey := strings.TrimSpace(s.transfer.stdout.String())
	s.transfer.stdout = lockedBuffer{}
	if err := s.transfer.exec(ctx, "keys", "row-key"); err != nil {
		t.Fatalf("keys row-key: %v", err)
	}
	rowKey := strings.TrimSpace(s.transfer.stdout.String())
	s.transfer.stdout = lockedBuffer{}
	s.transfer.env["TRANSFER_ROW_KEYS"] = rowKey

	s.intake = &program{run: intake.Run, env: map[string]string{
		// intake's login as deployed: the writer role and the results role.
		"INTAKE_DATABASE_URL": pgtest.URLAsRoles(t, s.intakeDB, "airlock_test_intake_server", "airlock_intake_writer", "airlock_intake_results"),
		"INTAKE_ADDR":         "127.0.0.1:0",
		"INTAKE_PLAIN_HTTP":   "1",
		"INTAKE_RECIPIENTS":   publicKey,
		"INTAKE_ROW_KEY":      rowKey,
		"INTAKE_RATE_LIMIT":   "0", // BenchmarkTimeToClinic posts faster than a person
	}}
	s.clinical = &program{run: clinical.Run, env: map[string]string{
		"CLINICAL_DATABASE_URL": pgtest.URLAs(t, s.clinicalDB, "airlock_clinical_app"),
		"CLINICAL_SECRET_KEY":   "qGH1TnJlBv2zN8o0d7Vn0yYk1fJ8mJ2q7wX5kQ3Lr0c=",
	}}

	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.intake.exec(srvCtx, "serve") }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("intake serve: %v", err)
		}
	})
	s.intakeURL = "http://" + waitListening(t, &s.intake.stderr, done)
	return s
}

var listeningRE = regexp.MustCompile(`"msg":"intake listening","addr":"([^"]+)"`)

func waitListening(t testing.TB, stderr *lockedBuffer, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("intake exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("intake did not start listening:\n%s", stderr.String())
	return ""
}

// secrets are distinctive answers: none may appear in intake's database or any log.
var secretAnswers = map[string]any{
	"family-name":      "Quixwellington",
	"given-name":       "Aurelinde",
	"birth-date":       "1984-02-29",
	"sex-at-birth":     "female",
	"email":            "aurelinde.q@example.org",
	"insurance-number": "INS-7734-ZQX-0042",
	"medications":      "Levothyroxine 50 microgram daily",
	"allergies":        true,
	"allergy-details":  "Penicillin rash since 1999",
	"smoker":           "never",
	"alcohol-units":    3,
	"height":           171.5,
	"consent":          true,
}

var secretStrings = []string{"Quixwellington", "Aurelinde", "aurelinde.q@example.org", "INS-7734-ZQX-0042",
	"Levothyroxine", "Penicillin rash"}

func postJSON(t testing.TB, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestEndToEndSubmissionTravelsSealed(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)

	start := time.Now()
	status, body := postJSON(t, s.intakeURL+"/api/v1/forms/new-patient/submissions", secretAnswers)
	if status != http.StatusCreated {
		t.Fatalf("submit: status %d, body %v", status, body)
	}
	receipt, _ := body["receipt"].(string)
	if receipt == "" {
		t.Fatalf("no receipt in %v", body)
	}

	// The intake database holds one row and no plaintext, anywhere.
	dump, err := exec.Command("pg_dump", "--data-only", s.intakeDB).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump intake: %v\n%s", err, dump)
	}
	for _, secret := range append(secretStrings, receipt) {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("intake database holds plaintext %q", secret)
		}
	}
	if n := count(t, s.intakeDB, `SELECT count(*) FROM submissions`); n != 1 {
		t.Fatalf("intake holds %d rows, want 1", n)
	}

	if err := s.transfer.exec(ctx, "once"); err != nil {
		t.Fatalf("transfer once: %v\n%s", err, s.transfer.stderr.String())
	}
	var sum transfer.Summary
	if err := json.Unmarshal([]byte(s.transfer.stdout.String()), &sum); err != nil {
		t.Fatalf("transfer once printed %q: %v", s.transfer.stdout.String(), err)
	}
	if sum.Moved != 1 || sum.Quarantined != 0 || sum.Seconds <= 0 {
		t.Fatalf("summary %+v, want 1 moved, seconds > 0", sum)
	}
	if n := count(t, s.intakeDB, `SELECT count(*) FROM submissions`); n != 0 {
		t.Fatalf("intake still holds %d rows after the move", n)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM submissions WHERE receipt = '`+receipt+`'`); n != 1 {
		t.Fatalf("clinical holds %d rows with the receipt, want 1", n)
	}

	if err := s.clinical.exec(ctx, "export", "--format", "ndjson"); err != nil {
		t.Fatalf("export: %v\n%s", err, s.clinical.stderr.String())
	}
	elapsed := time.Since(start)
	export := s.clinical.stdout.String()
	lines := strings.Split(strings.TrimSpace(export), "\n")
	if len(lines) != 1 {
		t.Fatalf("export has %d lines, want 1:\n%s", len(lines), export)
	}
	var qr map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &qr); err != nil {
		t.Fatalf("export line is not JSON: %v", err)
	}
	if qr["resourceType"] != "QuestionnaireResponse" {
		t.Fatalf("resourceType %v", qr["resourceType"])
	}
	for _, want := range append(secretStrings, receipt, `"valueDate":"1984-02-29"`, `"valueInteger":3`,
		`"valueBoolean":true`, `"valueDecimal":171.5`, `"code":"female"`, `"linkId":"patient"`) {
		if !strings.Contains(export, want) {
			t.Errorf("export lacks %s", want)
		}
	}
	if strings.Contains(export, `"consent"`) {
		t.Errorf("export carries the consent item, which the form marks not carried")
	}

	for name, p := range map[string]*program{"intake": s.intake, "transfer": s.transfer, "clinical": s.clinical} {
		for _, secret := range append(secretStrings, receipt) {
			if strings.Contains(p.stderr.String(), secret) {
				t.Errorf("%s log holds plaintext %q", name, secret)
			}
		}
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM audit_log WHERE action = 'export'`); n != 1 {
		t.Errorf("%d export audit entries, want 1", n)
	}
	t.Logf("submission to export: %v (including one transfer pass of %.3fs)", elapsed, sum.Seconds)
}

func count(t testing.TB, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

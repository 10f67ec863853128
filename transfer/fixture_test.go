package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
)

// fixture is one intake and one clinical database with everything needed to
// put real sealed rows into intake and move them with a Mover, logged in as
// each Airlock role the way a deployment is.
type fixture struct {
	t                          testing.TB
	intakeDB, clinicalDB       string        // owner URLs
	intakeOwner, clinicalOwner *pgxpool.Pool // the database owner: inspects and tampers
	store                      *intake.Store // airlock_intake_writer
	key                        *seal.PrivateKey
	rowKey                     seal.RowKey
	sealer                     *intake.Sealer
	log                        lockedBuffer // the mover's JSON log
	mover                      *transfer.Mover
}

// newFixture makes fresh databases, a clinic key and a row key, and a Mover
// over pools logged in as the two transfer roles.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		t:          t,
		intakeDB:   pgtest.NewDB(t, "intake", migrations.Intake()),
		clinicalDB: pgtest.NewDB(t, "clinical", migrations.Clinical()),
	}
	f.intakeOwner = newPool(t, f.intakeDB, nil)
	f.clinicalOwner = newPool(t, f.clinicalDB, nil)
	f.store = intake.NewStore(newPool(t, pgtest.URLAs(t, f.intakeDB, "airlock_intake_writer"), nil))
	var err error
	if f.key, err = seal.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if f.rowKey, err = seal.NewRowKey(); err != nil {
		t.Fatal(err)
	}
	f.sealer = &intake.Sealer{Recipient: f.key.Public, RowKey: f.rowKey, Now: time.Now}
	f.mover = f.newMover(nil, nil)
	return f
}

// newMover builds a Mover over fresh transfer-role pools; the tracers (may be
// nil) see every statement it sends to intake and to clinical.
func (f *fixture) newMover(intakeTracer, clinicalTracer pgx.QueryTracer) *transfer.Mover {
	f.t.Helper()
	return &transfer.Mover{
		Intake:    newPool(f.t, pgtest.URLAs(f.t, f.intakeDB, "airlock_intake_transfer"), intakeTracer),
		Clinical:  newPool(f.t, pgtest.URLAs(f.t, f.clinicalDB, "airlock_clinical_transfer"), clinicalTracer),
		Keys:      transfer.Keyring{f.key.Public.ID: f.key},
		RowKeys:   []seal.RowKey{f.rowKey},
		Forms:     forms.Builtin(),
		BatchSize: 500,
		Retention: 720 * time.Hour,
		Log:       slog.New(slog.NewJSONHandler(&f.log, nil)),
		Now:       time.Now,
	}
}

func newPool(t testing.TB, url string, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 3 // the pass holds one intake connection for its lock
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Answers that pass each built-in form. The distinctive strings must never
// appear in a log; the non-carried items must never reach clinical.
var newPatientAnswers = map[string]any{
	"family-name":     "Quillfeather",
	"given-name":      "Ysolde",
	"birth-date":      "1971-07-04",
	"sex-at-birth":    "other",
	"email":           "ysolde@example.org",
	"allergies":       true,
	"allergy-details": "Wasp stings, swelling",
	"alcohol-units":   2,
	"height":          180.25,
	"consent":         true, // not carried to the clinic
}

var symptomsAnswers = map[string]any{
	"complaint":   "Knee pain after a fall",
	"severity":    "6736007",
	"fever":       false,
	"heard-about": "Friend or family", // not carried to the clinic
}

// answers validates raw answers against a built-in form, as intake does.
func (f *fixture) answers(formID string, raw map[string]any) (*forms.Questionnaire, forms.Answers) {
	f.t.Helper()
	q, ok := forms.Builtin().Get(formID)
	if !ok {
		f.t.Fatalf("no built-in form %q", formID)
	}
	enc := map[string]json.RawMessage{}
	for k, v := range raw {
		b, err := json.Marshal(v)
		if err != nil {
			f.t.Fatal(err)
		}
		enc[k] = b
	}
	a, ferrs := q.Validate(enc)
	if len(ferrs) > 0 {
		f.t.Fatalf("test answers invalid for %s: %v", formID, ferrs)
	}
	return q, a
}

// submitted is one row put into intake, with what the test needs to find it.
type submitted struct {
	*intake.SealedRow
	receipt string
	seq     int64
}

// submit seals answers with sealer (f.sealer when nil) and stores the row
// as the intake server does.
func (f *fixture) submit(formID string, raw map[string]any, sealer *intake.Sealer) *submitted {
	f.t.Helper()
	if sealer == nil {
		sealer = f.sealer
	}
	q, a := f.answers(formID, raw)
	row, receipt, err := sealer.SealSubmission(q, a)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.insert(row, receipt)
}

// insert stores a row through the writer login and reads back its seq: from
// intake, or from clinical's succession when a running worker has already
// moved it (a NOTIFY wake-up can beat the read).
func (f *fixture) insert(row *intake.SealedRow, receipt string) *submitted {
	f.t.Helper()
	ctx := context.Background()
	if err := f.store.InsertSubmission(ctx, row); err != nil {
		f.t.Fatal(err)
	}
	s := &submitted{SealedRow: row, receipt: receipt}
	err := f.intakeOwner.QueryRow(ctx, `SELECT seq FROM submissions WHERE id = $1::uuid`, row.SubmissionID).Scan(&s.seq)
	if errors.Is(err, pgx.ErrNoRows) {
		err = f.clinicalOwner.QueryRow(ctx, `SELECT succession FROM submissions WHERE intake_id = $1::uuid`, row.SubmissionID).Scan(&s.seq)
	}
	if err != nil {
		f.t.Fatalf("the seq of submission just stored: %v", err)
	}
	return s
}

// ownerExec runs SQL on intake as its owner: a database-only attacker.
func (f *fixture) ownerExec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.intakeOwner.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// rewrite stores row's (possibly altered) columns over the stored row with
// the given id, MAC included: what someone holding the row key could do.
func (f *fixture) rewrite(id string, row seal.Row, mac []byte) {
	f.t.Helper()
	f.ownerExec(`UPDATE submissions SET id = $2::uuid, form_id = $3, form_version = $4, key_id = $5, received_at = $6,
  envelope = $7, mac = $8 WHERE id = $1::uuid`,
		id, row.SubmissionID, row.FormID, row.FormVersion, row.KeyID, row.ReceivedAt, row.Envelope, mac)
}

func (f *fixture) pass() transfer.Summary {
	f.t.Helper()
	sum, err := f.mover.Pass(context.Background())
	if err != nil {
		f.t.Fatalf("pass: %v", err)
	}
	return sum
}

func (f *fixture) intakeCount() int {
	f.t.Helper()
	return countRows(f.t, f.intakeOwner, `SELECT count(*) FROM submissions`)
}

func countRows(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// delivered is one stage-2 submission as clinical holds it.
type delivered struct {
	succession int64
	receipt    string
	formID     string
	answers    map[string]json.RawMessage
}

// clinicalRows reads clinical's submissions by intake id.
func (f *fixture) clinicalRows() map[string]delivered {
	f.t.Helper()
	rows, err := f.clinicalOwner.Query(context.Background(),
		`SELECT intake_id::text, succession, receipt, form_id, answers FROM submissions`)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]delivered{}
	for rows.Next() {
		var id string
		var d delivered
		var answers []byte
		if err := rows.Scan(&id, &d.succession, &d.receipt, &d.formID, &answers); err != nil {
			f.t.Fatal(err)
		}
		if err := json.Unmarshal(answers, &d.answers); err != nil {
			f.t.Fatalf("answers of %s: %v", id, err)
		}
		if _, dup := out[id]; dup {
			f.t.Fatalf("clinical holds intake id %s twice", id)
		}
		out[id] = d
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// quarantined reads clinical's quarantine: intake id -> reason.
func (f *fixture) quarantined() map[string]string {
	f.t.Helper()
	rows, err := f.clinicalOwner.Query(context.Background(), `SELECT intake_id::text, reason FROM quarantine`)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var id, reason string
		if err := rows.Scan(&id, &reason); err != nil {
			f.t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			f.t.Fatalf("quarantine holds intake id %s twice", id)
		}
		out[id] = reason
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// checkLogClean fails when the mover's log holds any answer or receipt.
func (f *fixture) checkLogClean(rows ...*submitted) {
	f.t.Helper()
	checkClean(f.t, "the transfer log", f.log.String(), rows...)
}

// checkClean fails when text holds any test answer or any of the rows'
// receipts.
func checkClean(t testing.TB, what, text string, rows ...*submitted) {
	t.Helper()
	for _, s := range rows {
		if s.receipt != "" && strings.Contains(text, s.receipt) {
			t.Errorf("%s holds a receipt", what)
		}
	}
	for _, raw := range []map[string]any{newPatientAnswers, symptomsAnswers} {
		for _, v := range raw {
			if s, ok := v.(string); ok && len(s) > 8 && strings.Contains(text, s) {
				t.Errorf("%s holds the answer %q", what, s)
			}
		}
	}
}

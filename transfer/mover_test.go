package transfer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
)

func TestPassMovesEveryRowOnceWithCarriedItemsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mover.BatchSize = 2 // five rows take three batches

	var rows []*submitted
	for i := range 5 {
		if i%2 == 0 {
			rows = append(rows, f.submit("new-patient", newPatientAnswers, nil))
		} else {
			rows = append(rows, f.submit("symptoms", symptomsAnswers, nil))
		}
	}
	sum := f.pass()
	if sum.Moved != 5 || sum.Quarantined != 0 || sum.Duplicates != 0 || sum.Expired != 0 || sum.UnknownKey != 0 || sum.Skipped {
		t.Fatalf("summary %+v, want exactly 5 moved", sum)
	}
	if n := f.intakeCount(); n != 0 {
		t.Fatalf("intake still holds %d rows", n)
	}
	got := f.clinicalRows()
	if len(got) != 5 {
		t.Fatalf("clinical holds %d submissions, want 5", len(got))
	}
	for _, r := range rows {
		d, ok := got[r.SubmissionID]
		if !ok {
			t.Errorf("submission seq %d not delivered", r.seq)
			continue
		}
		if d.succession != r.seq || d.receipt != r.receipt || d.formID != r.FormID {
			t.Errorf("seq %d delivered as succession %d, form %s (receipt matches: %v)", r.seq, d.succession, d.formID, d.receipt == r.receipt)
		}
		switch r.FormID {
		case "new-patient":
			if _, ok := d.answers["consent"]; ok {
				t.Errorf("seq %d: clinical holds the consent item, which is not carried", r.seq)
			}
			if got := canonJSON(t, d.answers["family-name"]); got != `[{"valueString":"Quillfeather"}]` {
				t.Errorf("seq %d: family-name delivered as %s", r.seq, got)
			}
			if got := canonJSON(t, d.answers["alcohol-units"]); got != `[{"valueInteger":2}]` {
				t.Errorf("seq %d: alcohol-units delivered as %s", r.seq, got)
			}
		case "symptoms":
			if _, ok := d.answers["heard-about"]; ok {
				t.Errorf("seq %d: clinical holds the heard-about item, which is not carried", r.seq)
			}
			if _, ok := d.answers["complaint"]; !ok {
				t.Errorf("seq %d: the carried complaint item is missing", r.seq)
			}
		}
	}
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_passes WHERE moved = 5`); n != 1 {
		t.Errorf("%d pass records with moved = 5, want 1", n)
	}
	f.checkLogClean(rows...)

	// A pass over an empty queue is a clean no-op.
	if sum := f.pass(); sum.Moved != 0 || sum.Quarantined != 0 || sum.Duplicates != 0 {
		t.Errorf("second pass %+v, want nothing done", sum)
	}
}

// sealRaw stores a row whose sealed plaintext is exactly plaintext, MACed
// with the real row key: what an attacker holding the row key (a
// compromised intake host) can store. It returns the stored row.
func (f *fixture) sealRaw(plaintext []byte, id, formID, formVersion string) *submitted {
	f.t.Helper()
	env, err := seal.Seal(f.key.Public, plaintext)
	if err != nil {
		f.t.Fatal(err)
	}
	row := &intake.SealedRow{Row: seal.Row{
		SubmissionID: id, FormID: formID, FormVersion: formVersion, KeyID: f.key.Public.ID.String(),
		ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), Envelope: env,
	}}
	row.MAC = f.rowKey.MAC(row.Row)
	return f.insert(row, "")
}

// payload is a well-formed version 1 payload for a new-patient row with id.
func (f *fixture) payload(id, receipt string) seal.Payload {
	f.t.Helper()
	q, a := f.answers("new-patient", newPatientAnswers)
	answers, err := json.Marshal(a)
	if err != nil {
		f.t.Fatal(err)
	}
	return seal.Payload{
		Version:     1,
		Binding:     seal.Binding{SubmissionID: id, FormID: q.ID, KeyID: f.key.Public.ID.String()},
		FormVersion: q.FormVersion(),
		Receipt:     receipt,
		SubmittedAt: time.Now().UTC().Format(time.RFC3339Nano),
		Answers:     answers,
	}
}

func newID(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// canonJSON re-encodes JSON (as jsonb prints it) in Go's compact form.
func canonJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return string(mustJSON(t, v))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// remac rewrites the stored row s as row, with a MAC recomputed under the
// real row key: someone holding the row key as well as the database.
func (f *fixture) remac(s *submitted, row seal.Row) {
	f.t.Helper()
	f.rewrite(s.SubmissionID, row, f.rowKey.MAC(row))
}

func flipped(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x01
	return out
}

func TestPassQuarantinesBadRowsWithoutBlockingTheRest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		reason string
		// victim stores the bad row, behind before; it returns its intake id.
		victim func(f *fixture, before *submitted) string
	}{
		// A database-only attacker: no row key, so every change breaks the MAC.
		{"envelope edited", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET envelope = $2 WHERE id = $1::uuid`, s.SubmissionID, flipped(s.Envelope, len(s.Envelope)-1))
			return s.SubmissionID
		}},
		{"form_id edited", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET form_id = 'symptoms' WHERE id = $1::uuid`, s.SubmissionID)
			return s.SubmissionID
		}},
		{"form_version edited", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET form_version = '2' WHERE id = $1::uuid`, s.SubmissionID)
			return s.SubmissionID
		}},
		{"received_at edited", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET received_at = received_at + interval '1 hour' WHERE id = $1::uuid`, s.SubmissionID)
			return s.SubmissionID
		}},
		{"key_id edited", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET key_id = '0123456789abcdef' WHERE id = $1::uuid`, s.SubmissionID)
			return s.SubmissionID
		}},
		{"MAC copied from another row", transfer.ReasonMAC, func(f *fixture, before *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET mac = $2 WHERE id = $1::uuid`, s.SubmissionID, before.MAC)
			return s.SubmissionID
		}},
		{"envelope and MAC copied from another row", transfer.ReasonMAC, func(f *fixture, before *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET envelope = $2, mac = $3 WHERE id = $1::uuid`, s.SubmissionID, before.Envelope, before.MAC)
			return s.SubmissionID
		}},
		{"forged row with a zero MAC", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			f.ownerExec(`UPDATE submissions SET mac = $2 WHERE id = $1::uuid`, s.SubmissionID, make([]byte, 32))
			return s.SubmissionID
		}},
		{"row key not in TRANSFER_ROW_KEYS", transfer.ReasonMAC, func(f *fixture, _ *submitted) string {
			other, err := seal.NewRowKey()
			if err != nil {
				t.Fatal(err)
			}
			return f.submit("new-patient", newPatientAnswers, &intake.Sealer{Recipient: f.key.Public, RowKey: other, Now: time.Now}).SubmissionID
		}},

		// Someone with the row key too: the MAC passes, the sealed binding
		// and the envelope checks must still refuse the row.
		{"ciphertext moved from another row, MAC recomputed", transfer.ReasonBinding, func(f *fixture, before *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.Envelope = before.Envelope
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"form_id rewritten, MAC recomputed", transfer.ReasonBinding, func(f *fixture, _ *submitted) string {
			s := f.submit("symptoms", symptomsAnswers, nil)
			row := s.Row
			row.FormID = "new-patient"
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"form_version rewritten, MAC recomputed", transfer.ReasonBinding, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.FormVersion = "2"
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"key_id disagrees with the envelope, MAC recomputed", transfer.ReasonBinding, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.KeyID = "0123456789abcdef"
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"bit-flipped ciphertext, MAC recomputed", transfer.ReasonOpen, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.Envelope = flipped(row.Envelope, len(row.Envelope)/2)
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"truncated envelope, MAC recomputed", transfer.ReasonTruncated, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.Envelope = row.Envelope[:20]
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"empty envelope, MAC recomputed", transfer.ReasonTruncated, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.Envelope = []byte{}
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"unknown envelope version, MAC recomputed", transfer.ReasonEnvelopeVersion, func(f *fixture, _ *submitted) string {
			s := f.submit("new-patient", newPatientAnswers, nil)
			row := s.Row
			row.Envelope = bytes.Clone(row.Envelope)
			row.Envelope[0] = 2
			f.remac(s, row)
			return s.SubmissionID
		}},
		{"sealed plaintext is not a payload", transfer.ReasonPayload, func(f *fixture, _ *submitted) string {
			return f.sealRaw([]byte("not json"), newID(t), "new-patient", "1").SubmissionID
		}},
		{"unknown payload version", transfer.ReasonEnvelopeVersion, func(f *fixture, _ *submitted) string {
			id := newID(t)
			p := f.payload(id, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
			p.Version = 2
			return f.sealRaw(mustJSON(t, p), id, "new-patient", "1").SubmissionID
		}},
		{"sealed answers fail the form", transfer.ReasonInvalid, func(f *fixture, _ *submitted) string {
			q, _ := forms.Builtin().Get("new-patient")
			row, _, err := f.sealer.SealSubmission(q, forms.Answers{}) // every required item missing
			if err != nil {
				t.Fatal(err)
			}
			return f.insert(row, "").SubmissionID
		}},
	}
	// One queue holds every bad row, each behind a good one, and one more good
	// row at the end; batches of three put bad rows at every position in a
	// batch and make the pass go on past batches that hold bad rows.
	f := newFixture(t)
	f.mover.BatchSize = 3
	var good []*submitted
	victims := make([]string, len(cases))
	for i, c := range cases {
		before := f.submit("new-patient", newPatientAnswers, nil)
		good = append(good, before)
		victims[i] = c.victim(f, before)
	}
	good = append(good, f.submit("symptoms", symptomsAnswers, nil))

	sum := f.pass()
	if sum.Moved != len(good) || sum.Quarantined != len(cases) {
		t.Errorf("summary %+v, want %d moved and %d quarantined", sum, len(good), len(cases))
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
	got := f.clinicalRows()
	for _, s := range good {
		if d, ok := got[s.SubmissionID]; !ok || d.receipt != s.receipt {
			t.Errorf("good row seq %d was not delivered intact", s.seq)
		}
	}
	if len(got) != len(good) {
		t.Errorf("clinical holds %d submissions, want %d", len(got), len(good))
	}
	quarantine := f.quarantined()
	if len(quarantine) != len(cases) {
		t.Errorf("quarantine holds %d rows, want %d", len(quarantine), len(cases))
	}
	log := f.log.String()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := got[victims[i]]; ok {
				t.Errorf("the bad row was delivered")
			}
			if reason, ok := quarantine[victims[i]]; !ok || reason != c.reason {
				t.Errorf("quarantined: %v, reason %q; want reason %q", ok, reason, c.reason)
			}
			if !strings.Contains(log, `"reason":"`+c.reason+`"`) {
				t.Errorf("no log line names the quarantine reason %q", c.reason)
			}
		})
	}
	f.checkLogClean(good...)
}

func TestPassAcceptsEveryConfiguredRowKey(t *testing.T) {
	t.Parallel()
	oldKey, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		configured []seal.RowKey
		macWith    seal.RowKey
		delivered  bool
	}{
		{"old key during rotation", []seal.RowKey{newKey, oldKey}, oldKey, true},
		{"new key during rotation", []seal.RowKey{newKey, oldKey}, newKey, true},
		{"old key after it is retired", []seal.RowKey{newKey}, oldKey, false},
		{"no row key matches", []seal.RowKey{oldKey}, newKey, false},
	}
	f := newFixture(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.mover.RowKeys = c.configured
			s := f.submit("new-patient", newPatientAnswers, &intake.Sealer{Recipient: f.key.Public, RowKey: c.macWith, Now: time.Now})
			sum := f.pass()
			_, delivered := f.clinicalRows()[s.SubmissionID]
			if delivered != c.delivered {
				t.Fatalf("delivered = %v, want %v (summary %+v)", delivered, c.delivered, sum)
			}
			if reason, ok := f.quarantined()[s.SubmissionID]; ok == c.delivered || (ok && reason != transfer.ReasonMAC) {
				t.Errorf("quarantined: %v with reason %q; want a row that is not delivered quarantined as mac", ok, reason)
			}
			if n := f.intakeCount(); n != 0 {
				t.Errorf("intake still holds %d rows", n)
			}
		})
	}
}

func TestPassLeavesRowsUnderAnUnknownKeyOrFormPendingAndCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	newKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// A recipient key transfer does not hold: what a swapped key on a
	// compromised intake host (or a rotation done in the wrong order) makes.
	swapped := &intake.Sealer{Recipient: newKey.Public, RowKey: f.rowKey, Now: time.Now}
	known := f.submit("new-patient", newPatientAnswers, nil)
	unknown := f.submit("symptoms", symptomsAnswers, swapped)

	sum := f.pass()
	if sum.Moved != 1 || sum.UnknownKey != 1 || sum.Quarantined != 0 {
		t.Fatalf("summary %+v, want 1 moved and 1 under an unknown key", sum)
	}
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("intake holds %d rows, want the one under the unknown key", n)
	}
	if _, ok := f.clinicalRows()[unknown.SubmissionID]; ok {
		t.Fatal("a row under an unknown key was delivered")
	}
	if q := f.quarantined(); len(q) != 0 {
		t.Fatalf("quarantine holds %v: a row under an unknown key must wait, not be quarantined", q)
	}
	st, err := transfer.ReadStatus(ctx, f.mover.Intake, f.mover.Clinical, []string{f.key.Public.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	if st.UnknownKey == nil || *st.UnknownKey != 1 || st.Pending != 1 || st.PendingByKey[newKey.Public.ID.String()] != 1 {
		t.Fatalf("status %+v (unknown_key %v), want 1 pending under the unknown key", st, st.UnknownKey)
	}
	if st.LastSuccession != known.seq {
		t.Errorf("last_succession %d, want %d", st.LastSuccession, known.seq)
	}
	// Passes before the key arrives keep counting it and change nothing.
	if sum := f.pass(); sum.UnknownKey != 1 || sum.Moved != 0 {
		t.Fatalf("second pass %+v, want the row still under an unknown key", sum)
	}

	// Rotation: the new private key is added to transfer; the row moves.
	f.mover.Keys[newKey.Public.ID] = newKey
	if sum := f.pass(); sum.Moved != 1 || sum.UnknownKey != 0 {
		t.Fatalf("pass with the key added %+v, want 1 moved", sum)
	}
	if d, ok := f.clinicalRows()[unknown.SubmissionID]; !ok || d.succession != unknown.seq {
		t.Fatal("the row was not delivered once its key was added")
	}
	st, err = transfer.ReadStatus(ctx, f.mover.Intake, f.mover.Clinical, []string{f.key.Public.ID.String(), newKey.Public.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	if st.UnknownKey == nil || *st.UnknownKey != 0 || st.Pending != 0 || st.LastSuccession != unknown.seq {
		t.Fatalf("status after delivery %+v, want nothing pending", st)
	}

	// Likewise a form transfer does not know (yet): the row waits, counted.
	newPatient, _ := forms.Builtin().Get("new-patient")
	only, err := forms.NewRegistry(newPatient)
	if err != nil {
		t.Fatal(err)
	}
	f.mover.Forms = only
	form := f.submit("symptoms", symptomsAnswers, nil)
	if sum := f.pass(); sum.UnknownForm != 1 || sum.Moved != 0 || sum.Quarantined != 0 {
		t.Fatalf("pass with an unknown form %+v, want the row waiting", sum)
	}
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("intake holds %d rows, want the row of the unknown form", n)
	}
	f.mover.Forms = forms.Builtin()
	if sum := f.pass(); sum.Moved != 1 || sum.UnknownForm != 0 {
		t.Fatalf("pass with the form known %+v, want 1 moved", sum)
	}
	if _, ok := f.clinicalRows()[form.SubmissionID]; !ok {
		t.Fatal("the row was not delivered once its form was known")
	}
}

func TestPassDeliversAReplayedRowOnlyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.submit("new-patient", newPatientAnswers, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("first pass %+v, want 1 moved", sum)
	}
	// The same row again, byte for byte (MAC included), from a backup or a
	// captured INSERT: it gets a new seq but the same submission id.
	replay := f.insert(s.SealedRow, s.receipt)
	sum := f.pass()
	if sum.Moved != 0 || sum.Duplicates != 1 || sum.Quarantined != 0 {
		t.Fatalf("replay pass %+v, want 1 duplicate and nothing moved", sum)
	}
	got := f.clinicalRows()
	if len(got) != 1 || got[s.SubmissionID].succession != s.seq {
		t.Fatalf("clinical holds %d submissions (succession %d), want the original once (succession %d; replay seq %d)",
			len(got), got[s.SubmissionID].succession, s.seq, replay.seq)
	}
	if n := f.intakeCount(); n != 0 {
		t.Fatalf("the replayed row stayed in intake (%d rows)", n)
	}
}

// A row MACed by someone holding the row key (a compromised intake host) can
// carry the receipt of an earlier submission under a new submission id. Its
// insert then conflicts on clinical's unique receipt, not on intake_id; it
// must be quarantined and must not stop the rows behind it.
func TestPassQuarantinesARowRepeatingADeliveredReceipt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earlier := f.submit("new-patient", newPatientAnswers, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("first pass %+v", sum)
	}
	clash := func(original *submitted) *submitted {
		id := newID(t)
		return f.sealRaw(mustJSON(t, f.payload(id, original.receipt)), id, "new-patient", "1")
	}
	// Batches of two: [clashA B] [clashB C] [D clashD] [E].
	f.mover.BatchSize = 2
	clashes := map[string]*submitted{}
	clashes["original delivered by an earlier pass"] = clash(earlier)
	b := f.submit("symptoms", symptomsAnswers, nil)
	clashes["original in an earlier batch of the pass"] = clash(b)
	c := f.submit("symptoms", symptomsAnswers, nil)
	d := f.submit("symptoms", symptomsAnswers, nil)
	clashes["original in the same batch"] = clash(d)
	e := f.submit("symptoms", symptomsAnswers, nil)

	sum, err := f.mover.Pass(context.Background())
	if err != nil {
		t.Fatalf("the pass failed, so the row blocks every row behind it: %v", err)
	}
	if sum.Moved != 4 || sum.Quarantined != 3 || sum.Duplicates != 0 {
		t.Errorf("summary %+v, want 4 moved, 3 quarantined, no duplicate", sum)
	}
	got := f.clinicalRows()
	for _, s := range []*submitted{earlier, b, c, d, e} {
		if r, ok := got[s.SubmissionID]; !ok || r.receipt != s.receipt {
			t.Errorf("seq %d not delivered intact", s.seq)
		}
	}
	quarantine := f.quarantined()
	for name, s := range clashes {
		if _, ok := got[s.SubmissionID]; ok {
			t.Errorf("%s: the clashing row was delivered", name)
		}
		if reason := quarantine[s.SubmissionID]; reason != transfer.ReasonReceipt {
			t.Errorf("%s: quarantine reason %q, want %q", name, reason, transfer.ReasonReceipt)
		}
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
}

// crashAt makes the first statement starting with prefix fail before it is
// sent, as if the worker died at that instant: pgx refuses a query whose
// context is already done without writing anything to the server.
type crashAt struct {
	prefix string
	fired  atomic.Bool
}

var errCrash = errors.New("simulated crash")

func (c *crashAt) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(d.SQL)), c.prefix) && c.fired.CompareAndSwap(false, true) {
		ctx, cancel := context.WithCancelCause(ctx)
		cancel(errCrash)
		return ctx
	}
	return ctx
}

func (c *crashAt) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Each crash point stops a pass half-way through a batch; a second pass (a
// fresh worker) must then leave every submission in clinical exactly once,
// the bad row quarantined exactly once, and intake empty.
//
// The crash is injected with a query tracer on the mover's own pools rather
// than by re-inserting rows afterwards, so the rows keep their seq and the
// second pass meets exactly the state a dead worker leaves: after the clinical
// COMMIT but before the intake DELETE the rows are in both databases.
func TestPassRecoversFromACrashAtAnyStep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		intake   string // statement prefix to fail on intake
		clinical string // or on clinical
		// delivered is whether the first batch reached clinical before the
		// crash; leftInIntake how many of the six rows intake still holds.
		delivered    bool
		leftInIntake int
	}{
		{"reading intake", "select seq", "", false, 6},
		{"inserting into clinical", "", "insert into submissions", false, 6},
		{"quarantining in clinical", "", "insert into quarantine", false, 6},
		{"committing clinical", "", "commit", false, 6},
		{"after the clinical commit, before the intake delete", "delete from submissions where seq", "", true, 6},
		{"recording the pass", "", "insert into transfer_passes", true, 0},
	}
	f := newFixture(t)
	var all []*submitted
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var it, ct pgx.QueryTracer
			if c.intake != "" {
				it = &crashAt{prefix: c.intake}
			}
			if c.clinical != "" {
				ct = &crashAt{prefix: c.clinical}
			}
			crashing := f.newMover(it, ct)
			crashing.BatchSize = 3
			var rows []*submitted
			for range 2 {
				rows = append(rows, f.submit("new-patient", newPatientAnswers, nil))
			}
			bad := f.submit("symptoms", symptomsAnswers, nil)
			f.ownerExec(`UPDATE submissions SET form_version = '9' WHERE id = $1::uuid`, bad.SubmissionID)
			for range 3 {
				rows = append(rows, f.submit("symptoms", symptomsAnswers, nil))
			}
			deliveredBefore := len(f.clinicalRows())

			if _, err := crashing.Pass(context.Background()); err == nil {
				t.Fatal("the pass did not fail at the crash point")
			}
			if got := len(f.clinicalRows()) > deliveredBefore; got != c.delivered {
				t.Fatalf("after the crash clinical holds new rows: %v, want %v", got, c.delivered)
			}
			if n := f.intakeCount(); n != c.leftInIntake {
				t.Fatalf("after the crash intake holds %d rows, want %d", n, c.leftInIntake)
			}

			// The pass lock was released despite the failure: another worker runs.
			if sum := f.pass(); sum.Skipped {
				t.Fatal("the crashed pass kept the pass lock")
			}
			all = append(all, rows...)
			got := f.clinicalRows()
			if len(got) != len(all) {
				t.Errorf("clinical holds %d submissions, want %d", len(got), len(all))
			}
			for _, s := range rows {
				if d, ok := got[s.SubmissionID]; !ok || d.succession != s.seq || d.receipt != s.receipt {
					t.Errorf("seq %d not delivered exactly once", s.seq)
				}
			}
			if reason := f.quarantined()[bad.SubmissionID]; reason != transfer.ReasonMAC {
				t.Errorf("bad row quarantined with reason %q, want mac", reason)
			}
			if n := f.intakeCount(); n != 0 {
				t.Errorf("intake still holds %d rows", n)
			}
		})
	}
	// f.quarantined fails on a row quarantined twice.
	if q := f.quarantined(); len(q) != len(cases) {
		t.Errorf("quarantine holds %d rows, want %d", len(q), len(cases))
	}
}

func TestPassExpiresRowsPastRetentionWithoutMovingThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.mover.Retention = 24 * time.Hour
	at := func(age time.Duration) *intake.Sealer {
		return &intake.Sealer{Recipient: f.key.Public, RowKey: f.rowKey, Now: func() time.Time { return time.Now().Add(-age) }}
	}
	stale := f.submit("new-patient", newPatientAnswers, at(25*time.Hour))
	// Expiry does not need the key: a stale row under an unknown key goes too.
	otherKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	staleUnknown := f.submit("symptoms", symptomsAnswers, &intake.Sealer{Recipient: otherKey.Public, RowKey: f.rowKey,
		Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	fresh := f.submit("new-patient", newPatientAnswers, at(23*time.Hour))

	sum := f.pass()
	if sum.Expired != 2 || sum.Moved != 1 || sum.UnknownKey != 0 {
		t.Fatalf("summary %+v, want 2 expired and 1 moved", sum)
	}
	got := f.clinicalRows()
	for _, s := range []*submitted{stale, staleUnknown} {
		if _, ok := got[s.SubmissionID]; ok {
			t.Errorf("an expired row (seq %d) was moved", s.seq)
		}
	}
	if _, ok := got[fresh.SubmissionID]; !ok {
		t.Errorf("a row inside retention was not moved")
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
	if q := f.quarantined(); len(q) != 0 {
		t.Errorf("expired rows were quarantined: %v", q)
	}
	// The count is kept, the content is not: nothing of the expired rows is in clinical.
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM quarantine WHERE intake_id = $1::uuid`, stale.SubmissionID); n != 0 {
		t.Errorf("the expired row was kept in clinical")
	}
	st, err := transfer.ReadStatus(ctx, f.mover.Intake, f.mover.Clinical, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExpiredTotal != 2 {
		t.Errorf("status expired_total %d, want 2", st.ExpiredTotal)
	}
	if st.UnknownKey != nil {
		t.Errorf("status unknown_key %d without a keyring, want null", *st.UnknownKey)
	}
}

// passLockKey is the advisory lock every transfer instance takes on the
// intake database. It is spelt out here on purpose: two worker versions
// running side by side during an upgrade must agree on it.
const passLockKey int64 = 0x4169726c6f636b01

func TestPassIsSkippedWhileAnotherPassRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	s := f.submit("new-patient", newPatientAnswers, nil)

	other, err := pgx.Connect(ctx, f.intakeDB)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, passLockKey); err != nil {
		t.Fatal(err)
	}
	sum := f.pass()
	if !sum.Skipped || sum.Moved != 0 {
		t.Fatalf("summary %+v while another instance holds the lock, want skipped", sum)
	}
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("a skipped pass changed intake: %d rows", n)
	}
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_passes`); n != 0 {
		t.Errorf("a skipped pass was recorded")
	}

	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, passLockKey); err != nil {
		t.Fatal(err)
	}
	if sum := f.pass(); sum.Skipped || sum.Moved != 1 {
		t.Fatalf("summary %+v after the lock was released, want 1 moved", sum)
	}
	if _, ok := f.clinicalRows()[s.SubmissionID]; !ok {
		t.Fatal("not delivered")
	}
}

// Several workers at once (cron ticks overlapping, several instances):
// every submission still lands exactly once.
func TestConcurrentPassesDeliverEachRowOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var rows []*submitted
	for range 20 {
		rows = append(rows, f.submit("symptoms", symptomsAnswers, nil))
	}
	movers := []*transfer.Mover{f.mover, f.newMover(nil, nil), f.newMover(nil, nil)}
	var moved, skipped atomic.Int64
	var wg sync.WaitGroup
	for i, m := range movers {
		m.BatchSize = 3
		wg.Go(func() {
			for range 3 {
				sum, err := m.Pass(ctx)
				if err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
				moved.Add(int64(sum.Moved))
				if sum.Skipped {
					skipped.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if sum := f.pass(); sum.Moved > 0 {
		moved.Add(int64(sum.Moved))
	}
	if moved.Load() != int64(len(rows)) {
		t.Errorf("workers moved %d in total, want %d", moved.Load(), len(rows))
	}
	if got := f.clinicalRows(); len(got) != len(rows) {
		t.Errorf("clinical holds %d submissions, want %d", len(got), len(rows))
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
	t.Logf("%d of %d passes were skipped", skipped.Load(), 3*len(movers))
}

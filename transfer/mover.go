package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/seal"
)

// passLockKey is the advisory lock (on the intake database) that lets only one
// pass run at a time across every transfer instance.
const passLockKey int64 = 0x4169726c6f636b01 // "Airlock" + 1

// Quarantine reasons, stored with the row in the clinical quarantine table.
const (
	ReasonMAC             = "mac"              // the MAC fails under every row key: forged or altered
	ReasonEnvelopeVersion = "envelope-version" // unknown envelope or payload version
	ReasonTruncated       = "envelope-truncated"
	ReasonOpen            = "open-failed" // the ciphertext does not open: bit-flipped or corrupted
	ReasonBinding         = "binding"     // the sealed binding names another row
	ReasonPayload         = "payload"     // the opened plaintext is not a payload
	ReasonInvalid         = "invalid-answers"
	// ReasonReceipt is a row whose sealed receipt is already in clinical under
	// another submission id: only someone holding the row key can make one.
	ReasonReceipt = "receipt-conflict"
)

// Mover moves sealed submissions from intake into clinical.
type Mover struct {
	Intake    *pgxpool.Pool // login granted airlock_intake_transfer
	Clinical  *pgxpool.Pool // login granted airlock_clinical_transfer
	Keys      Keyring
	RowKeys   []seal.RowKey
	Forms     *forms.Registry
	BatchSize int
	Retention time.Duration
	Log       *slog.Logger
	Now       func() time.Time
}

// Summary is the outcome of one pass, printed by `transfer once`. It holds
// counts only, never content.
type Summary struct {
	Moved       int     `json:"moved"`
	Quarantined int     `json:"quarantined"`
	Duplicates  int     `json:"duplicates"`
	Expired     int     `json:"expired"`
	UnknownKey  int     `json:"unknown_key"`
	UnknownForm int     `json:"unknown_form"`
	Seconds     float64 `json:"seconds"`
	// Skipped is true when another instance held the pass lock.
	Skipped bool `json:"skipped,omitempty"`
}

// pendingRow is one row as read from intake.
type pendingRow struct {
	Seq int64
	seal.Row
	MAC []byte
}

// outcome is what became of one row in a batch.
type outcome struct {
	deliver     *delivery
	quarantine  string // reason; "" when not quarantined
	unknownKey  bool
	unknownForm bool
}

type delivery struct {
	payload *seal.Payload
	answers []byte // carried answers, JSON
}

// Pass runs one complete pass: expire what waited too long, then move every
// pending row in batches. Only one pass runs at a time across all instances;
// when another holds the lock the pass is a clean no-op (Skipped).
func (m *Mover) Pass(ctx context.Context) (Summary, error) {
	start := time.Now()
	var sum Summary
	conn, err := m.Intake.Acquire(ctx)
	if err != nil {
		return sum, fmt.Errorf("intake database: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, passLockKey).Scan(&locked); err != nil {
		return sum, fmt.Errorf("take pass lock: %w", err)
	}
	if !locked {
		sum.Skipped = true
		return sum, nil
	}
	defer func() {
		// A session lock: if the unlock fails the connection is broken and
		// closing it releases the lock anyway.
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, passLockKey); err != nil {
			conn.Conn().Close(unlockCtx)
		}
	}()
	startedAt := m.Now()

	// Expire first: a row past retention is expired, never moved.
	expired, err := m.expireStale(ctx)
	if err != nil {
		return sum, err
	}
	sum.Expired = expired

	var cursor int64
	for {
		rows, err := m.readBatch(ctx, cursor)
		if err != nil {
			return sum, err
		}
		if len(rows) == 0 {
			break
		}
		cursor = rows[len(rows)-1].Seq
		if err := m.moveBatch(ctx, rows, &sum); err != nil {
			return sum, err
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if err := m.recordPass(ctx, startedAt, sum); err != nil {
		return sum, err
	}
	return sum, nil
}

// expireStale deletes rows older than the retention period. Only the count
// is kept (in the operations log written by recordPass).
func (m *Mover) expireStale(ctx context.Context) (int, error) {
	tag, err := m.Intake.Exec(ctx, `DELETE FROM submissions WHERE received_at < $1`, m.Now().Add(-m.Retention))
	if err != nil {
		return 0, fmt.Errorf("expire stale submissions: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		m.Log.Info("expired submissions past retention", "count", n, "retention", m.Retention.String())
	}
	return int(tag.RowsAffected()), nil
}

// readBatch reads the next rows present after cursor. The cursor only lives
// for one pass: a row that commits late with a lower seq is read by the next
// pass, so nothing is skipped for good.
func (m *Mover) readBatch(ctx context.Context, after int64) ([]*pendingRow, error) {
	rows, err := m.Intake.Query(ctx, `SELECT seq, id::text, form_id, form_version, key_id, received_at, envelope, mac
FROM submissions WHERE seq > $1 ORDER BY seq LIMIT $2`, after, m.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("read pending submissions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*pendingRow, error) {
		var p pendingRow
		err := r.Scan(&p.Seq, &p.SubmissionID, &p.FormID, &p.FormVersion, &p.KeyID, &p.ReceivedAt, &p.Envelope, &p.MAC)
		return &p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read pending submissions: %w", err)
	}
	return out, nil
}

// moveBatch opens the rows in parallel, writes deliveries and quarantines to
// clinical in one transaction, and only after that commits deletes exactly
// those rows from intake. A crash between the two leaves rows that the next
// pass delivers again as no-ops (unique intake_id) and then deletes.
func (m *Mover) moveBatch(ctx context.Context, rows []*pendingRow, sum *Summary) error {
	outcomes := make([]outcome, len(rows))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				outcomes[i] = m.openRow(rows[i])
			}
		})
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()

	var done []int64 // seqs to delete from intake
	var deliver []int
	var quarantine []int
	for i, o := range outcomes {
		switch {
		case o.deliver != nil:
			deliver = append(deliver, i)
		case o.quarantine != "":
			quarantine = append(quarantine, i)
		case o.unknownKey:
			sum.UnknownKey++
		case o.unknownForm:
			sum.UnknownForm++
		}
	}
	if len(deliver)+len(quarantine) == 0 {
		return nil
	}
	var inserted int
	var clashes []int // delivered rows whose receipt another submission holds
	err := pg.InTx(ctx, m.Clinical, func(tx pgx.Tx) error {
		var err error
		if inserted, clashes, err = insertDeliveries(ctx, tx, rows, outcomes, deliver); err != nil {
			return err
		}
		for _, i := range clashes {
			outcomes[i] = outcome{quarantine: ReasonReceipt}
		}
		return insertQuarantine(ctx, tx, rows, outcomes, append(slices.Clone(quarantine), clashes...))
	})
	if err != nil {
		return fmt.Errorf("write batch to clinical: %w", err)
	}
	for _, i := range deliver { // clashes included: they are in quarantine now
		done = append(done, rows[i].Seq)
	}
	for _, i := range quarantine {
		done = append(done, rows[i].Seq)
	}
	for _, i := range append(quarantine, clashes...) {
		m.Log.Warn("submission quarantined", "seq", rows[i].Seq, "key_id", rows[i].KeyID, "reason", outcomes[i].quarantine)
	}
	sum.Moved += inserted
	sum.Duplicates += len(deliver) - len(clashes) - inserted
	sum.Quarantined += len(quarantine) + len(clashes)

	if _, err := m.Intake.Exec(ctx, `DELETE FROM submissions WHERE seq = ANY($1)`, done); err != nil {
		return fmt.Errorf("delete delivered rows from intake: %w", err)
	}
	return nil
}

// openRow checks and opens one row. It touches no database, so it runs in
// parallel; the order of checks matters: the MAC first (nothing unauthenticated
// is opened), then the envelope, then the binding inside it.
func (m *Mover) openRow(r *pendingRow) outcome {
	if !seal.VerifyRow(m.RowKeys, r.Row, r.MAC) {
		return outcome{quarantine: ReasonMAC}
	}
	env, err := seal.ParseEnvelope(r.Envelope)
	switch {
	case errors.Is(err, seal.ErrEnvelopeVersion):
		return outcome{quarantine: ReasonEnvelopeVersion}
	case err != nil:
		return outcome{quarantine: ReasonTruncated}
	}
	if env.KeyID.String() != r.KeyID {
		return outcome{quarantine: ReasonBinding}
	}
	key, ok := m.Keys[env.KeyID]
	if !ok {
		return outcome{unknownKey: true}
	}
	plain, err := key.Open(env)
	if err != nil {
		return outcome{quarantine: ReasonOpen}
	}
	defer clear(plain)
	p, err := seal.DecodePayload(plain, seal.Binding{SubmissionID: r.SubmissionID, FormID: r.FormID, KeyID: r.KeyID})
	switch {
	case errors.Is(err, seal.ErrBinding):
		return outcome{quarantine: ReasonBinding}
	case errors.Is(err, seal.ErrEnvelopeVersion):
		return outcome{quarantine: ReasonEnvelopeVersion}
	case err != nil:
		return outcome{quarantine: ReasonPayload}
	}
	if p.FormVersion != r.FormVersion {
		return outcome{quarantine: ReasonBinding}
	}
	q, ok := m.Forms.Get(r.FormID)
	if !ok {
		return outcome{unknownForm: true}
	}
	answers, err := revalidate(q, p.Answers)
	if err != nil {
		return outcome{quarantine: ReasonInvalid}
	}
	carried, err := json.Marshal(q.Carried(answers))
	if err != nil {
		return outcome{quarantine: ReasonInvalid}
	}
	p.Answers = nil
	return outcome{deliver: &delivery{payload: p, answers: carried}}
}

// revalidate checks sealed answers against the form again: transfer trusts
// nothing intake wrote, even authenticated.
func revalidate(q *forms.Questionnaire, sealed json.RawMessage) (forms.Answers, error) {
	var a forms.Answers
	if err := json.Unmarshal(sealed, &a); err != nil {
		return nil, err
	}
	raw, err := forms.AnswersFromResponseItems(q.ResponseItems(a))
	if err != nil {
		return nil, err
	}
	valid, ferrs := q.Validate(raw)
	if len(ferrs) > 0 {
		return nil, ferrs
	}
	return valid, nil
}

// insertDeliveries inserts the opened rows idempotently and returns how many
// were new, and which (as indexes into rows) could not be inserted because
// another submission already holds their receipt. Such a row can only come
// from someone holding the row key; it must be quarantined, not fail the
// batch, or it would block every row behind it on every pass.
func insertDeliveries(ctx context.Context, tx pgx.Tx, rows []*pendingRow, outcomes []outcome, idx []int) (int, []int, error) {
	if len(idx) == 0 {
		return 0, nil, nil
	}
	n := len(idx)
	ids, receipts, formIDs, versions, keyIDs, answers := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs := make([]int64, n)
	submitted, received := make([]time.Time, n), make([]time.Time, n)
	for j, i := range idx {
		r, d := rows[i], outcomes[i].deliver
		t, err := time.Parse(time.RFC3339Nano, d.payload.SubmittedAt)
		if err != nil {
			t = r.ReceivedAt
		}
		ids[j], seqs[j], receipts[j] = r.SubmissionID, r.Seq, d.payload.Receipt
		formIDs[j], versions[j], keyIDs[j] = r.FormID, r.FormVersion, r.KeyID
		submitted[j], received[j], answers[j] = t, r.ReceivedAt, string(d.answers)
	}
	// No conflict target: a repeated intake_id (a replay, or a retry after a
	// crash) and a repeated receipt are both skipped here and told apart below.
	res, err := tx.Query(ctx, `INSERT INTO submissions
  (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::jsonb[])
ON CONFLICT DO NOTHING
RETURNING intake_id::text`, ids, seqs, receipts, formIDs, versions, keyIDs, submitted, received, answers)
	if err != nil {
		return 0, nil, fmt.Errorf("insert submissions: %w", err)
	}
	insertedIDs, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return 0, nil, fmt.Errorf("insert submissions: %w", err)
	}
	if len(insertedIDs) == n {
		return n, nil, nil
	}
	res, err = tx.Query(ctx, `SELECT intake_id::text FROM submissions WHERE intake_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return 0, nil, fmt.Errorf("find delivered submissions: %w", err)
	}
	present, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return 0, nil, fmt.Errorf("find delivered submissions: %w", err)
	}
	delivered := make(map[string]bool, len(present))
	for _, id := range present {
		delivered[id] = true
	}
	var clashes []int
	for j, i := range idx {
		if !delivered[ids[j]] {
			clashes = append(clashes, i)
		}
	}
	return len(insertedIDs), clashes, nil
}

// rowDigest identifies a quarantined row exactly, so re-quarantining it after
// a crash is a no-op.
func rowDigest(r *pendingRow) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Seq))
	h.Write(n[:])
	h.Write(r.MAC)
	h.Write(seal.RowKey{}.MAC(r.Row)) // a keyless digest of every column
	s := h.Sum(nil)
	return s
}

func insertQuarantine(ctx context.Context, tx pgx.Tx, rows []*pendingRow, outcomes []outcome, idx []int) error {
	for _, i := range idx {
		r := rows[i]
		_, err := tx.Exec(ctx, `INSERT INTO quarantine
  (digest, reason, intake_seq, intake_id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10)
ON CONFLICT (digest) DO NOTHING`,
			rowDigest(r), outcomes[i].quarantine, r.Seq, r.SubmissionID, r.FormID, r.FormVersion, r.KeyID, r.ReceivedAt, r.Envelope, r.MAC)
		if err != nil {
			return fmt.Errorf("quarantine row %d: %w", r.Seq, err)
		}
	}
	return nil
}

// recordPass appends the pass's counts to the operations log in clinical.
func (m *Mover) recordPass(ctx context.Context, startedAt time.Time, s Summary) error {
	_, err := m.Clinical.Exec(ctx, `INSERT INTO transfer_passes
  (started_at, finished_at, moved, quarantined, duplicates, expired, unknown_key)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, startedAt, m.Now(), s.Moved, s.Quarantined, s.Duplicates, s.Expired, s.UnknownKey)
	if err != nil {
		return fmt.Errorf("record pass: %w", err)
	}
	return nil
}

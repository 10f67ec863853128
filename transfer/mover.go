package transfer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/shared/textsearch"
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
	// ReasonOversize is a row whose envelope is over seal.MaxEnvelope, the
	// intake schema's bound (stored before the bound existed, or by the
	// database owner). It is quarantined by its size and SHA-256 without
	// its envelope, which is never read.
	ReasonOversize = "oversize"
)

// Mover moves sealed submissions from intake into clinical.
type Mover struct {
	Intake    *pgxpool.Pool // login granted airlock_intake_transfer
	Clinical  *pgxpool.Pool // login granted airlock_clinical_transfer
	Keys      Keyring
	RowKeys   []seal.RowKey
	Forms     *forms.Registry
	BatchSize int
	// BatchBytes bounds the envelope bytes of one batch (measured with
	// octet_length before anything is read), so memory follows it and not
	// what is pending; a single row larger than it moves alone. Zero means
	// DefaultBatchBytes.
	BatchBytes int64
	// Retention is how long a row may wait in intake; older rows are
	// expired (deleted, counted) and never moved.
	Retention time.Duration
	// QuarantineRetention is how long a quarantined row is kept in clinical;
	// zero keeps quarantined rows until someone deletes them.
	QuarantineRetention time.Duration
	Log                 *slog.Logger
	Now                 func() time.Time
	// Progress, when set, is told after each batch how many rows the pass
	// has dealt with (moved, quarantined, redelivered) of those pending
	// when it started moving.
	Progress func(done, pending int)

	heartbeatAt atomic.Int64 // unix nanoseconds of the last heartbeat written
	prunedAt    atomic.Int64 // unix nanoseconds of the last prune of transfer_passes
}

// heartbeatEvery is how often passes that did nothing write clinical's
// transfer_heartbeat (they are not recorded in transfer_passes).
const heartbeatEvery = time.Minute

// Idle reports whether the pass changed nothing: nothing moved, quarantined,
// redelivered, expired or marked superseded, and nothing panicked. Rows
// waiting under an unknown key or form do not count: they stay as they were.
func (s Summary) Idle() bool {
	return s.Moved == 0 && s.Quarantined == 0 && s.Duplicates == 0 && s.Expired == 0 && s.Superseded == 0 &&
		s.QuarantineExpired == 0 && s.Failed == 0
}

// writeTimeout bounds the part of a batch that runs on after its context is
// cancelled: the clinical transaction and the intake delete. A shutdown waits
// for it rather than leave a batch half done (which would be safe, but
// redelivers the batch as duplicates on the next pass).
const writeTimeout = 2 * time.Minute

// Pass outcomes, as recorded in the clinical transfer_passes table.
const (
	outcomeOK          = "ok"
	outcomeInterrupted = "interrupted"
	outcomeFailed      = "failed"
)

// Summary is the outcome of one pass, printed by `transfer once`. It holds
// counts only, never content.
type Summary struct {
	Moved       int `json:"moved"`
	Quarantined int `json:"quarantined"`
	Duplicates  int `json:"duplicates"`
	Expired     int `json:"expired"`
	UnknownKey  int `json:"unknown_key"`
	UnknownForm int `json:"unknown_form"`
	// Superseded is always 0: transfer no longer supersedes anything (a
	// clinician's acceptance of a correction does, in clinical). It stays for
	// the shape of this summary, the pass log and the metrics.
	Superseded int `json:"superseded"`
	// CorrectionsLinked counts corrections this pass linked to the
	// submission they correct (code and time verified; see corrections.go).
	CorrectionsLinked int `json:"corrections_linked"`
	// QuarantineExpired counts quarantined rows deleted after their own
	// retention.
	QuarantineExpired int `json:"quarantine_expired"`
	// Failed counts rows whose checks panicked (a bug, logged by seq): they
	// stay pending, neither delivered nor quarantined, and never block the
	// rows behind them.
	Failed int `json:"failed"`
	// ResultsMoved counts one-time results carried from clinical to intake;
	// ResultsExpired those expired (deleted from intake, or never carried).
	ResultsMoved   int     `json:"results_moved"`
	ResultsExpired int     `json:"results_expired"`
	Seconds        float64 `json:"seconds"`
	// Skipped is true when another instance held the pass lock.
	Skipped bool `json:"skipped,omitempty"`
	// Interrupted is true when the pass stopped early on shutdown, after the
	// batch in flight.
	Interrupted bool `json:"interrupted,omitempty"`
}

// DefaultBatchBytes is TRANSFER_BATCH_BYTES's default.
const DefaultBatchBytes = 16 << 20

// pendingRow is one row as read from intake.
type pendingRow struct {
	Seq int64
	seal.Row
	MAC []byte
	// oversize rows (envelope over seal.MaxEnvelope) are never read: Envelope
	// is nil and size and sha256 are what the intake database computed.
	oversize bool
	size     int64
	sha256   []byte
}

// outcome is what became of one row in a batch.
type outcome struct {
	deliver     *delivery
	quarantine  string // reason; "" when not quarantined
	unknownKey  bool
	unknownForm bool
	failed      bool // opening or checking it panicked
}

type delivery struct {
	payload *seal.Payload
	answers []byte // carried answers, JSON
	// words are the carried answers' search words (shared/textsearch),
	// joined by spaces: clinical stores them as the tsvector it searches.
	words string
	// corrects is the correction the submitter claimed (sealed); nil when
	// there is none.
	corrects *seal.Correction
}

// Pass runs one complete pass: expire what waited too long (in intake, and
// quarantined rows in clinical), then move every pending row in batches.
// Only one pass runs at a time across all instances; when another holds the
// lock the pass is a clean no-op (Skipped).
//
// When ctx is cancelled the pass finishes the batch in flight (its clinical
// commit and intake delete are not cut short), records itself and returns
// the counts with an error wrapping ctx's. A step that fails does not undo
// the steps before it; every pass that ran is recorded with its outcome.
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
		return sum, fmt.Errorf("intake database: take pass lock: %w", err)
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
	err = m.pass(ctx, &sum)
	sum.Seconds = time.Since(start).Seconds()
	outcome := outcomeOK
	switch {
	case err != nil && ctx.Err() != nil:
		outcome, sum.Interrupted = outcomeInterrupted, true
	case err != nil:
		outcome = outcomeFailed
	}
	// Record the pass whatever happened: what it did before it stopped is
	// real (an expiry cannot be undone) and ops must be able to count it.
	// A pass that completed and changed nothing is not recorded (anyone who
	// can NOTIFY could fill the log); it only keeps the heartbeat fresh.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if outcome == outcomeOK && sum.Idle() {
		if rerr := m.heartbeat(recCtx); rerr != nil {
			err = rerr
		}
		return sum, err
	}
	if rerr := m.recordPass(recCtx, startedAt, sum, outcome); rerr != nil {
		err = errors.Join(err, rerr)
	} else {
		m.heartbeatAt.Store(m.Now().UnixNano())
	}
	return sum, err
}

// pass runs the steps of one pass under the pass lock.
func (m *Mover) pass(ctx context.Context, sum *Summary) error {
	// Expire first: a row past retention is expired, never moved. The
	// batches below also skip rows older than the same cutoff, so a failed
	// expiry cannot let one through.
	cutoff := m.Now().Add(-m.Retention)
	// Expiry's count lives only in clinical's operations log: do not delete
	// anything from intake while clinical cannot take the record.
	if err := m.Clinical.Ping(ctx); err != nil {
		return fmt.Errorf("clinical database: %w", err)
	}
	var errs []error
	expired, err := m.expireStale(ctx, cutoff)
	sum.Expired = expired
	if err != nil {
		errs = append(errs, err)
	}
	if m.QuarantineRetention > 0 {
		n, err := m.expireQuarantine(ctx, m.Now().Add(-m.QuarantineRetention))
		sum.QuarantineExpired = n
		if err != nil {
			errs = append(errs, err)
		}
		if err := m.prunePasses(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Reading and opening run one batch ahead of writing: the X25519 opens
	// (CPU) overlap the previous batch's clinical insert (I/O, and the
	// database's CPU).
	pending := 0
	if m.Progress != nil {
		if err := m.Intake.QueryRow(ctx, `SELECT count(*) FROM submissions WHERE received_at >= $1`, cutoff).Scan(&pending); err != nil {
			return errors.Join(append(errs, fmt.Errorf("intake database: count pending submissions: %w", err))...)
		}
		m.Progress(0, pending)
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	batches := make(chan openedBatch, 1)
	var readErr error
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(batches)
		var cursor int64
		for readCtx.Err() == nil {
			rows, last, err := m.readBatch(readCtx, cursor, cutoff)
			if err != nil {
				readErr = err
				return
			}
			if last == 0 {
				return
			}
			cursor = last
			select {
			case batches <- openedBatch{rows: rows, outcomes: m.openRows(rows)}:
			case <-readCtx.Done():
				return
			}
		}
	})
	// A batch's rows are deleted from intake once its clinical transaction
	// has committed, by a goroutine of their own, so that delete overlaps
	// the next batch's clinical insert instead of waiting in line with it.
	deletes := make(chan []int64, 1)
	var deleteErr error
	var deleteFailed atomic.Bool
	var deleter sync.WaitGroup
	deleter.Go(func() {
		for seqs := range deletes {
			if deleteErr != nil {
				continue // delivered and still in intake: the next pass deletes them
			}
			if deleteErr = m.deleteDelivered(ctx, seqs); deleteErr != nil {
				deleteFailed.Store(true)
			}
		}
	})
	var writeErr error
	for b := range batches {
		if ctx.Err() != nil || deleteFailed.Load() {
			break // stopping: the batch in flight is done, leave the rest
		}
		var done []int64
		if done, writeErr = m.moveBatch(ctx, b.rows, b.outcomes, sum); writeErr != nil {
			break
		}
		if len(done) > 0 {
			deletes <- done
		}
		if m.Progress != nil {
			m.Progress(sum.Moved+sum.Quarantined+sum.Duplicates, pending)
		}
	}
	close(deletes)
	stopReading()
	for range batches {
		// Drop what was read ahead; the reader sees it is stopped and ends.
	}
	reader.Wait()
	deleter.Wait()
	switch {
	case writeErr != nil:
		errs = append(errs, errors.Join(writeErr, deleteErr))
	case deleteErr != nil:
		errs = append(errs, deleteErr)
	case ctx.Err() != nil:
		errs = append(errs, fmt.Errorf("pass stopped early: %w", context.Cause(ctx)))
	case readErr != nil:
		errs = append(errs, readErr)
	}
	if ctx.Err() == nil {
		if err := m.passResults(ctx, sum); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openedBatch is a batch read from intake and opened, waiting to be written.
type openedBatch struct {
	rows     []*pendingRow
	outcomes []outcome
}

// expireChunk bounds one expiry DELETE, so a large backlog (after a long
// outage) is deleted in statements that stay well inside the statement
// timeout instead of one that never finishes.
const expireChunk = 10_000

// expireStale deletes rows that waited in intake since before cutoff. Only
// the count is kept (in the operations log written by recordPass).
func (m *Mover) expireStale(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := deleteInChunks(ctx, m.Intake, `WITH stale AS (SELECT seq FROM submissions WHERE received_at < $1 LIMIT $2)
DELETE FROM submissions WHERE seq IN (SELECT seq FROM stale)`, cutoff)
	if n > 0 {
		m.Log.Info("expired submissions past retention", "count", n, "retention", m.Retention.String())
	}
	if err != nil {
		return n, fmt.Errorf("intake database: expire stale submissions: %w", err)
	}
	return n, nil
}

// expireQuarantine deletes quarantined rows kept since before cutoff.
func (m *Mover) expireQuarantine(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := deleteInChunks(ctx, m.Clinical, `WITH old AS (SELECT id FROM quarantine WHERE quarantined_at < $1 LIMIT $2)
DELETE FROM quarantine WHERE id IN (SELECT id FROM old)`, cutoff)
	if n > 0 {
		m.Log.Info("deleted quarantined rows past their retention", "count", n, "retention", m.QuarantineRetention.String())
	}
	if err != nil {
		return n, fmt.Errorf("clinical database: expire quarantined rows: %w", err)
	}
	return n, nil
}

// deleteInChunks runs sql (a DELETE taking a cutoff and a LIMIT) until it
// deletes fewer than expireChunk rows, and returns the total.
func deleteInChunks(ctx context.Context, db *pgxpool.Pool, sql string, cutoff time.Time) (int, error) {
	total := 0
	for {
		tag, err := db.Exec(ctx, sql, cutoff, expireChunk)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < expireChunk {
			return total, nil
		}
	}
}

// readBatch reads the next batch of rows present after cursor and returns
// them with the last seq it covered (0 when nothing is left). A batch is
// bounded by BatchSize rows and by BatchBytes of envelopes, measured with
// octet_length (which reads no envelope) before anything is read; a row
// larger than BatchBytes is a batch of its own. A row over seal.MaxEnvelope
// is never read: only its size and digest are (see ReasonOversize).
//
// The cursor only lives for one pass: a row that commits late with a lower
// seq is read by the next pass, so nothing is skipped for good.
func (m *Mover) readBatch(ctx context.Context, after int64, cutoff time.Time) ([]*pendingRow, int64, error) {
	sizes, err := m.Intake.Query(ctx, `SELECT seq, octet_length(envelope)
FROM submissions WHERE seq > $1 AND received_at >= $3 ORDER BY seq LIMIT $2`, after, m.BatchSize, cutoff)
	if err != nil {
		return nil, 0, fmt.Errorf("intake database: read pending submissions: %w", err)
	}
	var seq, size, last, total int64
	var pick, oversize []int64
	budget := m.BatchBytes
	if budget <= 0 {
		budget = DefaultBatchBytes
	}
	full := false
	_, err = pgx.ForEachRow(sizes, []any{&seq, &size}, func() error {
		switch {
		case full:
			// over the budget: the rest waits for the next batch
		case size > seal.MaxEnvelope:
			oversize, last = append(oversize, seq), seq
		case len(pick) > 0 && total+size > budget:
			full = true
		default:
			pick, total, last = append(pick, seq), total+size, seq
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("intake database: read pending submissions: %w", err)
	}
	if last == 0 {
		return nil, 0, nil
	}
	var out []*pendingRow
	if len(pick) > 0 {
		rows, err := m.Intake.Query(ctx, `SELECT seq, id::text, form_id, form_version, key_id, received_at, envelope, mac
FROM submissions WHERE seq = ANY($1) AND received_at >= $2 ORDER BY seq`, pick, cutoff)
		if err != nil {
			return nil, 0, fmt.Errorf("intake database: read pending submissions: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*pendingRow, error) {
			var p pendingRow
			err := r.Scan(&p.Seq, &p.SubmissionID, &p.FormID, &p.FormVersion, &p.KeyID, &p.ReceivedAt, &p.Envelope, &p.MAC)
			p.size = int64(len(p.Envelope))
			return &p, err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("intake database: read pending submissions: %w", err)
		}
	}
	if len(oversize) > 0 {
		// The digest is computed by the database: the envelope never
		// crosses the wire.
		rows, err := m.Intake.Query(ctx, `SELECT seq, id::text, form_id, form_version, key_id, received_at,
  octet_length(envelope), sha256(envelope), mac
FROM submissions WHERE seq = ANY($1) ORDER BY seq`, oversize)
		if err != nil {
			return nil, 0, fmt.Errorf("intake database: measure oversize submissions: %w", err)
		}
		big, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*pendingRow, error) {
			p := pendingRow{oversize: true}
			err := r.Scan(&p.Seq, &p.SubmissionID, &p.FormID, &p.FormVersion, &p.KeyID, &p.ReceivedAt, &p.size, &p.sha256, &p.MAC)
			return &p, err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("intake database: measure oversize submissions: %w", err)
		}
		out = append(out, big...)
		slices.SortFunc(out, func(a, b *pendingRow) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return out, last, nil
}

// moveBatch writes an opened batch's deliveries and quarantines to clinical
// in one transaction and returns, once that has committed, the seqs of
// exactly those rows, for deleteDelivered to delete from intake. A crash
// between the two leaves rows that the next pass delivers again as no-ops
// (unique intake_id) and then deletes.
//
// The writes run on a context that ctx's cancellation does not reach (with
// writeTimeout instead): a shutdown lets the batch in flight finish.
func (m *Mover) moveBatch(ctx context.Context, rows []*pendingRow, outcomes []outcome, sum *Summary) ([]int64, error) {
	var deliver, quarantine []int
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
		case o.failed:
			sum.Failed++
			m.Log.Error("checking a row panicked; it stays pending", "seq", rows[i].Seq, "key_id", rows[i].KeyID)
		}
	}
	if len(deliver)+len(quarantine) == 0 {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	var inserted, linked int
	var clashes []int // delivered rows whose receipt another submission holds
	err := pg.InTx(wctx, m.Clinical, func(tx pgx.Tx) error {
		var err error
		var added []insertedRow
		if added, clashes, err = insertDeliveries(wctx, tx, rows, outcomes, deliver); err != nil {
			return err
		}
		inserted = len(added)
		if linked, err = linkCorrections(wctx, tx, added); err != nil {
			return err
		}
		for _, i := range clashes {
			outcomes[i] = outcome{quarantine: ReasonReceipt}
		}
		return insertQuarantine(wctx, tx, rows, outcomes, append(slices.Clone(quarantine), clashes...))
	})
	if err != nil {
		return nil, fmt.Errorf("clinical database: write batch: %w", err)
	}
	// The seqs to delete from intake: every delivery (clashes included: they
	// are in quarantine now) and every quarantined row.
	done := make([]int64, 0, len(deliver)+len(quarantine))
	for _, i := range deliver {
		done = append(done, rows[i].Seq)
	}
	for _, i := range quarantine {
		done = append(done, rows[i].Seq)
	}
	for _, i := range append(quarantine, clashes...) {
		m.Log.Warn("submission quarantined", "seq", rows[i].Seq, "key_id", rows[i].KeyID, "reason", outcomes[i].quarantine)
	}
	sum.Moved += inserted
	sum.CorrectionsLinked += linked
	sum.Duplicates += len(deliver) - len(clashes) - inserted
	sum.Quarantined += len(quarantine) + len(clashes)
	return done, nil
}

// deleteDelivered deletes from intake the rows of a batch whose clinical
// transaction committed. Like the clinical write, it runs on a context that
// ctx's cancellation does not reach, so a shutdown lets it finish.
func (m *Mover) deleteDelivered(ctx context.Context, seqs []int64) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if _, err := m.Intake.Exec(wctx, `DELETE FROM submissions WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("intake database: delete delivered rows: %w", err)
	}
	return nil
}

// openRows opens a batch on every core: the X25519 open is most of a pass's
// CPU time.
func (m *Mover) openRows(rows []*pendingRow) []outcome {
	outcomes := make([]outcome, len(rows))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(rows)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rows) {
					return
				}
				outcomes[i] = m.openRowSafely(rows[i])
			}
		})
	}
	wg.Wait()
	return outcomes
}

// openRowSafely is openRow that survives a panic (a bug met by one strange
// row): the row is left pending and counted, and the pass goes on. The panic
// value is not logged: it might quote the row.
func (m *Mover) openRowSafely(r *pendingRow) (o outcome) {
	if r.oversize {
		return outcome{quarantine: ReasonOversize}
	}
	defer func() {
		if recover() != nil {
			o = outcome{failed: true}
		}
	}()
	return m.openRow(r)
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
	// What clinical stores verbatim must be what intake makes: a receipt of
	// another shape (or with a NUL, which Postgres text refuses) would fail
	// the whole batch's insert and block every row behind it.
	if !seal.ValidReceipt(p.Receipt) || !validCorrectionFields(p) {
		return outcome{quarantine: ReasonPayload}
	}
	q, ok := m.Forms.Get(r.FormID)
	if !ok {
		return outcome{unknownForm: true}
	}
	answers, err := revalidate(q, p.Answers)
	if err != nil {
		return outcome{quarantine: ReasonInvalid}
	}
	// Calculated items (scores) are computed here, from the opened answers:
	// the patient never supplies them.
	// today() in a score is the day the patient sent the form (as stored
	// below: the received time when the payload's is unreadable).
	sent, err := time.Parse(time.RFC3339Nano, p.SubmittedAt)
	if err != nil {
		sent = r.ReceivedAt
	}
	answers, err = q.CalculateOn(answers, sent)
	if answers == nil {
		return outcome{quarantine: ReasonInvalid}
	}
	if err != nil && m.Log != nil {
		// The item stays unanswered; the message names the item and the
		// expression's problem, never an answer.
		m.Log.Warn("calculated item left unanswered", "form", q.ID, "error", err.Error())
	}
	kept := q.Carried(answers)
	carried, err := forms.MarshalAnswers(kept)
	if err != nil {
		return outcome{quarantine: ReasonInvalid}
	}
	if bytes.Contains(carried, []byte(`\u0000`)) {
		return outcome{quarantine: ReasonPayload} // jsonb refuses NUL
	}
	p.Answers = nil
	return outcome{deliver: &delivery{payload: p, answers: carried, corrects: p.Corrects,
		words: strings.Join(textsearch.AnswerWords(kept), " ")}}
}

// revalidate checks sealed answers against the form again: transfer trusts
// nothing intake wrote, even authenticated. ValidateSealed applies every
// rule Validate does, on the answers as sealed, without turning them into a
// QuestionnaireResponse and back.
func revalidate(q *forms.Questionnaire, sealed json.RawMessage) (forms.Answers, error) {
	a, err := forms.DecodeSealedAnswers(sealed)
	if err != nil {
		return nil, err
	}
	valid, ferrs := q.ValidateSealed(a)
	if len(ferrs) > 0 {
		return nil, ferrs
	}
	return valid, nil
}

// insertedRow is a delivery that is new in clinical, with what linking
// corrections needs.
type insertedRow struct {
	id        int64 // clinical submissions.id
	intakeID  string
	receipt   string
	formID    string
	submitted time.Time
	codeHash  string           // hash of its own correction code; "" in older rows
	corrects  *seal.Correction // what it claims to correct; nil for most
}

// insertDeliveries inserts the opened rows idempotently and returns the new
// ones, and which (as indexes into rows) could not be inserted because
// another submission already holds their receipt. Such a row can only come
// from someone holding the row key; it must be quarantined, not fail the
// batch, or it would block every row behind it on every pass.
func insertDeliveries(ctx context.Context, tx pgx.Tx, rows []*pendingRow, outcomes []outcome, idx []int) ([]insertedRow, []int, error) {
	if len(idx) == 0 {
		return nil, nil, nil
	}
	n := len(idx)
	ids, receipts, formIDs, versions, keyIDs, answers, words := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	corrects := make([]*string, n)
	seqs := make([]int64, n)
	submitted, received := make([]time.Time, n), make([]time.Time, n)
	byID := make(map[string]int, n) // intake id -> j
	for j, i := range idx {
		r, d := rows[i], outcomes[i].deliver
		t, err := time.Parse(time.RFC3339Nano, d.payload.SubmittedAt)
		if err != nil {
			t = r.ReceivedAt
		}
		ids[j], seqs[j], receipts[j] = r.SubmissionID, r.Seq, d.payload.Receipt
		formIDs[j], versions[j], keyIDs[j] = r.FormID, r.FormVersion, r.KeyID
		submitted[j], received[j], answers[j], words[j] = t, r.ReceivedAt, string(d.answers), d.words
		if d.corrects != nil {
			corrects[j] = &d.corrects.Receipt
		}
		byID[r.SubmissionID] = j
	}
	// No conflict target: a repeated intake_id (a replay, or a retry after a
	// crash) and a repeated receipt are both skipped here and told apart below.
	// An id in `delivered` was delivered before, even if the submission has
	// since been erased or removed by retention: never deliver it again.
	// The search words arrive made (see shared/textsearch): the database
	// only turns them into a tsvector, which is cheap, where running its
	// text parser over the answers was most of an insert's cost.
	res, err := tx.Query(ctx, `INSERT INTO submissions
  (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers, corrects_receipt, search)
SELECT u.intake_id, u.succession, u.receipt, u.form_id, u.form_version, u.key_id, u.submitted_at, u.received_at,
       u.answers, u.corrects_receipt, array_to_tsvector(string_to_array(u.words, ' '))
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[])
  AS u(intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers, corrects_receipt, words)
WHERE NOT EXISTS (SELECT 1 FROM delivered d WHERE d.intake_id = u.intake_id)
ON CONFLICT DO NOTHING
RETURNING id, intake_id::text`, ids, seqs, receipts, formIDs, versions, keyIDs, submitted, received, answers, corrects, words)
	if err != nil {
		return nil, nil, fmt.Errorf("insert submissions: %w", err)
	}
	var added []insertedRow
	var id int64
	var intakeID string
	_, err = pgx.ForEachRow(res, []any{&id, &intakeID}, func() error {
		j := byID[intakeID]
		d := outcomes[idx[j]].deliver
		added = append(added, insertedRow{id: id, intakeID: intakeID, receipt: receipts[j], formID: formIDs[j],
			submitted: submitted[j], codeHash: d.payload.CorrectionCodeHash, corrects: d.corrects})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("insert submissions: %w", err)
	}
	if len(added) > 0 {
		newIDs := make([]string, len(added))
		for k, a := range added {
			newIDs[k] = a.intakeID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO delivered (intake_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING`, newIDs); err != nil {
			return nil, nil, fmt.Errorf("record delivered ids: %w", err)
		}
	}
	if len(added) == n {
		return added, nil, nil
	}
	res, err = tx.Query(ctx, `SELECT intake_id::text FROM delivered WHERE intake_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("find delivered submissions: %w", err)
	}
	present, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("find delivered submissions: %w", err)
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
	return added, clashes, nil
}

// rowDigest identifies a quarantined row exactly, so re-quarantining it after
// a crash is a no-op.
func rowDigest(r *pendingRow) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Seq))
	h.Write(n[:])
	h.Write(r.MAC)
	if r.oversize {
		// No envelope was read: the envelope's own digest and size stand in.
		h.Write([]byte("oversize"))
		binary.BigEndian.PutUint64(n[:], uint64(r.size))
		h.Write(n[:])
		h.Write(r.sha256)
		h.Write(seal.RowKey{}.MAC(r.Row)) // every other column
		return h.Sum(nil)
	}
	h.Write(seal.RowKey{}.MAC(r.Row)) // a keyless digest of every column
	s := h.Sum(nil)
	return s
}

// insertQuarantine copies the rows at idx, as found, into clinical's
// quarantine with their reasons, and each envelope's size and SHA-256. An
// oversize row is recorded without its envelope (left empty).
func insertQuarantine(ctx context.Context, tx pgx.Tx, rows []*pendingRow, outcomes []outcome, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	n := len(idx)
	digests, envelopes, macs, shas := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	sizes := make([]int64, n)
	reasons, ids, formIDs, versions, keyIDs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs, received := make([]int64, n), make([]time.Time, n)
	for j, i := range idx {
		r := rows[i]
		digests[j], reasons[j], seqs[j], ids[j] = rowDigest(r), outcomes[i].quarantine, r.Seq, r.SubmissionID
		formIDs[j], versions[j], keyIDs[j], received[j] = r.FormID, r.FormVersion, r.KeyID, r.ReceivedAt
		envelopes[j], macs[j], sizes[j], shas[j] = r.Envelope, r.MAC, r.size, r.sha256
		if r.oversize {
			envelopes[j] = []byte{}
		} else {
			sum := sha256.Sum256(r.Envelope)
			shas[j] = sum[:]
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO quarantine
  (digest, reason, intake_seq, intake_id, form_id, form_version, key_id, received_at, envelope, mac,
   envelope_size, envelope_sha256)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[], $9::bytea[], $10::bytea[], $11::bigint[], $12::bytea[])
ON CONFLICT (digest) DO NOTHING`, digests, reasons, seqs, ids, formIDs, versions, keyIDs, received, envelopes, macs,
		sizes, shas)
	if err != nil {
		return fmt.Errorf("quarantine %d rows: %w", n, err)
	}
	return nil
}

// pruneEvery is how often a worker prunes the log of ordinary passes.
const pruneEvery = time.Hour

// prunePasses deletes, at most once per pruneEvery, the transfer_passes
// rows of ordinary passes (completed, rows moved, nothing quarantined or
// expired) older than the quarantine retention, through the one function
// clinical lets transfer delete with (migration 000092: never younger than
// 30 days; failures, quarantines and expiries stay).
func (m *Mover) prunePasses(ctx context.Context) error {
	now := m.Now()
	if now.Sub(time.Unix(0, m.prunedAt.Load())) < pruneEvery {
		return nil
	}
	var n int64
	if err := m.Clinical.QueryRow(ctx, `SELECT prune_transfer_passes(make_interval(secs => $1))`, m.QuarantineRetention.Seconds()).Scan(&n); err != nil {
		return fmt.Errorf("clinical database: prune transfer_passes: %w", err)
	}
	m.prunedAt.Store(now.UnixNano())
	if n > 0 {
		m.Log.Info("pruned the log of ordinary passes", "count", n, "older_than", m.QuarantineRetention.String())
	}
	return nil
}

// heartbeat notes in clinical that an idle pass completed, at most once per
// heartbeatEvery.
func (m *Mover) heartbeat(ctx context.Context) error {
	now := m.Now()
	if now.Sub(time.Unix(0, m.heartbeatAt.Load())) < heartbeatEvery {
		return nil
	}
	_, err := m.Clinical.Exec(ctx, `INSERT INTO transfer_heartbeat (last_pass_at) VALUES ($1)
ON CONFLICT (only_row) DO UPDATE SET last_pass_at = greatest(transfer_heartbeat.last_pass_at, excluded.last_pass_at)`, now)
	if err != nil {
		return fmt.Errorf("clinical database: record heartbeat: %w", err)
	}
	m.heartbeatAt.Store(now.UnixNano())
	return nil
}

// recordPass appends the pass's counts and outcome to the operations log in
// clinical.
func (m *Mover) recordPass(ctx context.Context, startedAt time.Time, s Summary, outcome string) error {
	_, err := m.Clinical.Exec(ctx, `INSERT INTO transfer_passes
  (started_at, finished_at, moved, quarantined, duplicates, expired, unknown_key, unknown_form, superseded,
   quarantine_expired, outcome)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, startedAt, m.Now(), s.Moved, s.Quarantined, s.Duplicates,
		s.Expired, s.UnknownKey, s.UnknownForm, s.Superseded, s.QuarantineExpired, outcome)
	if err != nil {
		return fmt.Errorf("clinical database: record pass: %w", err)
	}
	return nil
}

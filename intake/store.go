package intake

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store writes sealed rows. Its login may only INSERT: there is deliberately no
// method to read a submission back.
type Store struct {
	pool *pgxpool.Pool

	// Group commit: concurrent submissions share one multi-row INSERT (and
	// so one commit, one WAL flush and one NOTIFY). A request still gets its
	// answer only after its own row is committed.
	mu            sync.Mutex
	queue         []*pendingRow
	running       int
	maxBatch      int // rows per batch
	maxBatchBytes int // bytes per batch; a larger row goes alone
	workers       int
}

// Group commit limits. A row's size is set by the submitter (attachments),
// so a batch is bounded by bytes as well as rows: 128 rows near the
// envelope limit would be gigabytes in one transaction, held in memory
// until it commits, and every request in it would wait for all of it.
const (
	defaultMaxBatch      = 128     // rows per batch
	defaultMaxBatchBytes = 1 << 20 // bytes per batch: ~500 ordinary 1.5 KB submissions, so rows bind first
	defaultWorkers       = 2       // batch transactions in flight at once
)

type pendingRow struct {
	row  *SealedRow
	done chan error
}

// NewStore wraps a pool logged in as a member of airlock_intake_writer.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, maxBatch: defaultMaxBatch, maxBatchBytes: defaultMaxBatchBytes, workers: defaultWorkers}
}

const insertOne = `INSERT INTO submissions (id, form_id, form_version, key_id, received_at, envelope, mac, replay_key)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)`

// Outcomes of storing a row with a replay key (replay.go), told apart by
// the constraint the database names, which needs INSERT privilege alone.
var (
	// ErrAlreadyStored: a row with this id is stored (or was, and has been
	// moved): the request is a repeat, and nothing new was stored.
	ErrAlreadyStored = errors.New("submission already stored")
	// ErrReplayKeyUsed: the row's replay key belongs to another submission:
	// the same form token or Idempotency-Key with other answers.
	ErrReplayKeyUsed = errors.New("form token or idempotency key already used for another submission")
)

// InsertSubmission stores one sealed row on its own. The insert trigger
// sends an empty NOTIFY that wakes transfer.
func (s *Store) InsertSubmission(ctx context.Context, r *SealedRow) error {
	_, err := s.pool.Exec(ctx, insertOne,
		r.SubmissionID, r.FormID, r.FormVersion, r.KeyID, r.ReceivedAt, r.Envelope, r.MAC, r.ReplayKey)
	if err != nil {
		return replayError(r, fmt.Errorf("insert submission: %w", err))
	}
	return nil
}

// replayError maps the unique violations a row with a replay key can meet
// to ErrAlreadyStored and ErrReplayKeyUsed (migration 000090 guarantees a
// repeat meets submissions_id_key, checked first, and only another body
// meets submissions_replay_key, checked at the end of the statement).
// A row stored again after transfer moved it meets a trigger that raises
// the same two violations, from the tombstone transfer's DELETE left.
func replayError(r *SealedRow, err error) error {
	var pgErr *pgconn.PgError
	if r.ReplayKey == nil || !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return err
	}
	switch pgErr.ConstraintName {
	case "submissions_id_key":
		return ErrAlreadyStored
	case "submissions_replay_key":
		return ErrReplayKeyUsed
	}
	return err
}

// StoreSubmission stores one sealed row, batched with whatever other rows
// are waiting, and returns once that row is committed (or failed). If ctx
// ends first the row may still be stored; the caller cannot tell, just as
// when a connection drops after a commit.
func (s *Store) StoreSubmission(ctx context.Context, r *SealedRow) error {
	p := &pendingRow{row: r, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, p)
	if s.running < s.workers {
		s.running++
		go s.drain()
	}
	s.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("insert submission: %w", ctx.Err())
	}
}

// drain inserts queued rows in batches until the queue is empty, then
// exits: no goroutine outlives the work.
func (s *Store) drain() {
	for {
		s.mu.Lock()
		n := batchLen(s.queue, s.maxBatch, s.maxBatchBytes)
		if n == 0 {
			s.running--
			s.mu.Unlock()
			return
		}
		batch := make([]*pendingRow, n)
		copy(batch, s.queue)
		s.queue = append(s.queue[:0], s.queue[n:]...)
		s.mu.Unlock()
		s.insertBatch(batch)
	}
}

// batchLen is how many rows from the front of queue go into the next
// INSERT: at most maxRows, and no more than maxBytes of them unless the
// first row alone is larger (it then goes on its own).
func batchLen(queue []*pendingRow, maxRows, maxBytes int) int {
	n, size := 0, 0
	for _, p := range queue {
		if n == maxRows {
			break
		}
		size += p.row.size()
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	return n
}

// size is what a row adds to an INSERT message, near enough: its envelope
// and MAC, and its metadata.
func (r *SealedRow) size() int {
	return len(r.Envelope) + len(r.MAC) + len(r.SubmissionID) + len(r.FormID) + len(r.FormVersion) + len(r.KeyID) + 8
}

func (s *Store) insertBatch(batch []*pendingRow) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].done <- s.InsertSubmission(ctx, batch[0].row)
		return
	}
	// COPY (binary) streams the rows in chunks of 64 KB, where one
	// multi-row INSERT had pgx build each column as an array in a buffer
	// regrown row by row (about 5 bytes allocated per envelope byte); it
	// needs INSERT privilege only, and fires the same triggers.
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"submissions"}, submissionColumns, &batchRows{batch: batch})
	if err == nil {
		for _, p := range batch {
			p.done <- nil
		}
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		for _, p := range batch {
			p.done <- fmt.Errorf("insert submissions: %w", err)
		}
		return
	}
	// One bad row must not fail the others: insert each on its own, so
	// every request gets its own outcome.
	for _, p := range batch {
		p.done <- s.InsertSubmission(ctx, p.row)
	}
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// submissionColumns are the columns a batch fills, in batchRows' order.
var submissionColumns = []string{"id", "form_id", "form_version", "key_id", "received_at", "envelope", "mac", "replay_key"}

// batchRows feeds a batch to CopyFrom. The id goes as a binary uuid (pgx
// has no binary encoding of a string as uuid).
type batchRows struct {
	batch []*pendingRow
	next  int
	row   [8]any
	err   error
}

func (b *batchRows) Next() bool { b.next++; return b.err == nil && b.next <= len(b.batch) }

func (b *batchRows) Values() ([]any, error) {
	r := b.batch[b.next-1].row
	var id pgtype.UUID
	if b.err = id.Scan(r.SubmissionID); b.err != nil {
		return nil, b.err // the rows are then stored one by one, where the database words the error
	}
	var replay any // NULL, not an empty bytea
	if r.ReplayKey != nil {
		replay = r.ReplayKey
	}
	b.row = [8]any{id, r.FormID, r.FormVersion, r.KeyID, r.ReceivedAt, r.Envelope, r.MAC, replay}
	return b.row[:], nil
}

func (b *batchRows) Err() error { return b.err }

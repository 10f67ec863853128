package intake

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// testRow is a stored-shape row with an envelope of n random bytes.
func testRow(t testing.TB, n int) *SealedRow {
	id, err := newUUID()
	if err != nil {
		t.Fatal(err)
	}
	env := make([]byte, n)
	rand.Read(env)
	mac := make([]byte, 32)
	rand.Read(mac)
	r := &SealedRow{MAC: mac}
	r.SubmissionID, r.FormID, r.FormVersion, r.KeyID = id, "new-patient", "1", "0123456789abcdef"
	r.ReceivedAt, r.Envelope = time.Now().UTC().Truncate(time.Microsecond), env
	return r
}

func TestBatchLen(t *testing.T) {
	t.Parallel()
	queue := func(sizes ...int) []*pendingRow {
		var q []*pendingRow
		for _, n := range sizes {
			q = append(q, &pendingRow{row: testRow(t, n)})
		}
		return q
	}
	overhead := testRow(t, 0).size()
	tests := []struct {
		name              string
		queue             []*pendingRow
		maxRows, maxBytes int
		want              int
	}{
		{"empty", nil, 128, 1 << 20, 0},
		{"rows bind", queue(10, 10, 10, 10), 3, 1 << 20, 3},
		{"bytes bind", queue(400, 400, 400, 400), 128, 3 * (400 + overhead), 3},
		{"exactly the budget", queue(400, 400), 128, 2 * (400 + overhead), 2},
		{"one byte over", queue(400, 400), 128, 2*(400+overhead) - 1, 1},
		{"a row over the budget goes alone", queue(5000, 10, 10), 128, 1000, 1},
		{"and the small ones after it go together", queue(10, 10, 5000), 128, 1000, 2},
	}
	for _, tt := range tests {
		if got := batchLen(tt.queue, tt.maxRows, tt.maxBytes); got != tt.want {
			t.Errorf("%s: batchLen = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestGroupCommitBoundedByBytes: concurrent submissions of large rows are
// committed in batches of at most the byte budget (rows sharing a
// transaction share its xmin), every row is stored, and rows still share
// commits.
func TestGroupCommitBoundedByBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	pool, err := pg.Connect(ctx, pgtest.URLAs(t, owner, "airlock_intake_writer"), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := NewStore(pool)
	const rows, rowSize = 96, 16 << 10
	store.maxBatchBytes = 4*rowSize + 1000 // four rows a batch, whatever maxBatch allows

	var wg sync.WaitGroup
	errs := make(chan error, rows)
	sent := make([]*SealedRow, rows)
	for i := range rows {
		sent[i] = testRow(t, rowSize)
		sent[i].ReplayKey = make([]byte, 32)
		rand.Read(sent[i].ReplayKey)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- store.StoreSubmission(ctx, sent[i])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	ownerPool, err := pg.Connect(ctx, owner, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ownerPool.Close()
	var stored, biggest, largestBatch int
	err = ownerPool.QueryRow(ctx, `SELECT coalesce(sum(n), 0), coalesce(max(bytes), 0), coalesce(max(n), 0) FROM (
  SELECT count(*) AS n, sum(octet_length(envelope)) AS bytes FROM submissions GROUP BY xmin::text) b`).Scan(&stored, &biggest, &largestBatch)
	if err != nil {
		t.Fatal(err)
	}
	if stored != rows {
		t.Fatalf("%d rows stored, want %d", stored, rows)
	}
	if biggest > store.maxBatchBytes {
		t.Fatalf("one INSERT carried %d bytes of envelopes, over the %d-byte budget", biggest, store.maxBatchBytes)
	}
	if largestBatch < 2 {
		// 96 concurrent submissions with two INSERTs in flight: if no two
		// ever shared one, group commit is not happening at all.
		t.Fatalf("no two rows were committed together")
	}
	// Every column of every row is stored as sent (the batch encodes
	// columns as arrays, in an order of its own).
	for _, r := range sent {
		var formID, version, keyID string
		var at time.Time
		var env, mac, replay []byte
		err := ownerPool.QueryRow(ctx, `SELECT form_id, form_version, key_id, received_at, envelope, mac, replay_key
FROM submissions WHERE id = $1::uuid`, r.SubmissionID).Scan(&formID, &version, &keyID, &at, &env, &mac, &replay)
		if err != nil {
			t.Fatalf("row %s: %v", r.SubmissionID, err)
		}
		if formID != r.FormID || version != r.FormVersion || keyID != r.KeyID || !at.Equal(r.ReceivedAt) ||
			!bytes.Equal(env, r.Envelope) || !bytes.Equal(mac, r.MAC) || !bytes.Equal(replay, r.ReplayKey) {
			t.Fatalf("row %s is not stored as sent", r.SubmissionID)
		}
	}
	t.Logf("%d rows, largest batch %d rows, %d bytes", stored, largestBatch, biggest)
}

// TestGroupCommitOneBadRowFailsAlone: a batch with a row the database
// refuses stores the others, and only the bad row's request gets an error.
func TestGroupCommitOneBadRowFailsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	pool, err := pg.Connect(ctx, pgtest.URLAs(t, owner, "airlock_intake_writer"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := NewStore(pool)
	bad := testRow(t, 100)
	bad.FormID = "" // refused by the form_id CHECK
	batch := []*pendingRow{{row: testRow(t, 100)}, {row: bad}, {row: testRow(t, 100)}}
	for _, p := range batch {
		p.done = make(chan error, 1)
	}
	store.insertBatch(batch)
	for i, p := range batch {
		if err := <-p.done; (err != nil) != (i == 1) {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	ownerPool, err := pg.Connect(ctx, owner, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ownerPool.Close()
	var n int
	if err := ownerPool.QueryRow(ctx, `SELECT count(*) FROM submissions`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows stored (%v), want 2", n, err)
	}
}

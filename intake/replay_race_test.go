package intake_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// TestRepeatRacingTheMove: a repeat of a request, or the same
// Idempotency-Key with other answers, that arrives while transfer's DELETE
// of the first row is in flight (the insert waits on that row's index
// entry). Once the DELETE commits the repeat must still be recognised from
// the tombstone it wrote: nothing stored, and other answers refused with
// 422 (an adversarial review found both stored while the check ran before
// the wait).
func TestRepeatRacingTheMove(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
	}{{"same answers", nil, http.StatusCreated}, {"other answers", map[string]any{"given-name": "Robin"}, http.StatusUnprocessableEntity}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := newTestIntake(t)
			const key = "3e5a7c9b-1d2f-4a6c-8e0b-2c4e6a8d0f1b"
			_, first := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
			ctx := context.Background()
			worker, err := pgx.Connect(ctx, pgtest.URLAs(t, ti.ownerURL, "airlock_intake_transfer"))
			if err != nil {
				t.Fatal(err)
			}
			defer worker.Close(ctx)
			owner, err := pgx.Connect(ctx, ti.ownerURL)
			if err != nil {
				t.Fatal(err)
			}
			defer owner.Close(ctx)
			tx, err := worker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var deleter int
			if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&deleter); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM submissions`); err != nil {
				t.Fatal(err)
			}
			type result struct {
				status int
				out    map[string]string
			}
			done := make(chan result, 1)
			go func() {
				resp, out := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(tc.body), key)
				done <- result{resp.status, out}
			}()
			// Commit only once the repeat's INSERT waits for the DELETE.
			for deadline := time.Now().Add(30 * time.Second); ; {
				var waiting bool
				if err := owner.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
WHERE $1 = ANY (pg_blocking_pids(pid)) AND query LIKE 'INSERT INTO submissions%')`, deleter).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the repeat's INSERT never waited for the DELETE")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if n := ti.rows(t); n != 0 {
				t.Errorf("the repeat was stored again after transfer moved the first: %d rows (status %d)", n, r.status)
			}
			if r.status != tc.status {
				t.Errorf("status %d, want %d", r.status, tc.status)
			}
			if tc.body == nil && r.out["receipt"] != first["receipt"] {
				t.Errorf("the repeat got receipt %q, want the first %q", r.out["receipt"], first["receipt"])
			}
		})
	}
}

// TestStaleTombstoneIsReplaced: a replay key whose tombstone is older than
// seven days may be used again; when that second row is moved, its own
// tombstone must be kept (the stale one was kept by the conflict and then
// purged, which left none).
func TestStaleTombstoneIsReplaced(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	ctx := context.Background()
	owner, err := pgx.Connect(ctx, ti.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	move := func() {
		t.Helper()
		if _, err := owner.Exec(ctx, `DELETE FROM submissions`); err != nil {
			t.Fatal(err)
		}
	}
	const key = "7c1d9e3f-5a2b-4c8d-9e0f-1a2b3c4d5e6f"
	ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	move()
	if _, err := owner.Exec(ctx, `UPDATE submission_replays SET gone_at = now() - interval '8 days'`); err != nil {
		t.Fatal(err)
	}
	resp, _ := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(map[string]any{"given-name": "Robin"}), key)
	if resp.status != http.StatusCreated {
		t.Fatalf("the key after its tombstone expired: %d %s", resp.status, resp.body)
	}
	move()
	var fresh int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM submission_replays WHERE gone_at > now() - interval '1 hour'`).Scan(&fresh); err != nil {
		t.Fatal(err)
	}
	if fresh != 1 {
		t.Fatalf("%d fresh tombstones after the second row moved, want 1", fresh)
	}
	resp, _ = ti.postJSON(t, submitNewPatient, jsonType, answersJSON(map[string]any{"given-name": "Sam"}), key)
	if resp.status != http.StatusUnprocessableEntity || ti.rows(t) != 0 {
		t.Fatalf("the key with other answers after the second move: %d, %d rows; want 422 and none", resp.status, ti.rows(t))
	}
}

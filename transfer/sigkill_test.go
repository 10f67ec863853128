package transfer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
)

// buildTransfer compiles the transfer binary into a temporary directory.
func buildTransfer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "transfer")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/airlockhq/airlock/transfer/cmd/transfer").CombinedOutput()
	if err != nil {
		t.Fatalf("go build transfer: %v\n%s", err, out)
	}
	return bin
}

// The real binary, two instances side by side, killed with SIGKILL over and
// over (and restarted) while submissions keep arriving: in the end every
// submission is in clinical exactly once and intake is empty.
func TestSIGKILLedWorkersLoseAndDuplicateNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the transfer binary")
	}
	t.Parallel()
	bin := buildTransfer(t)
	f := newFixture(t)
	env := with(f.cliEnv(), map[string]string{
		"TRANSFER_SCHEDULE":   "@every 1s",
		"TRANSFER_BATCH_SIZE": "7", // many batches: many places to die between
	})
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	// Seal first, so the writer below inserts at a steady pace.
	const total = 300
	q, a := f.answers("symptoms", symptomsAnswers)
	rows := make([]*intake.SealedRow, total)
	receipts := make([]string, total)
	for i := range rows {
		var err error
		if rows[i], receipts[i], err = f.sealer.SealSubmission(q, a); err != nil {
			t.Fatal(err)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var kills, starts atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				cmd := exec.Command(bin, "run")
				cmd.Env = environ
				if err := cmd.Start(); err != nil {
					t.Errorf("start transfer run: %v", err)
					return
				}
				starts.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(300+rand.IntN(400)) * time.Millisecond):
				}
				cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				var exit *exec.ExitError
				if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
					kills.Add(1)
				} else {
					t.Errorf("transfer run ended with %v before it was killed", err)
				}
			}
		})
	}
	for _, r := range rows {
		if err := f.store.InsertSubmission(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(time.Second) // a last round of kills after the final insert
	stop()
	wg.Wait()
	movedByKilled := len(f.clinicalRows())

	// Whatever state the last kill left, one more pass finishes the job.
	sum := f.pass()
	got := f.clinicalRows() // fails on an intake id delivered twice
	// Rows a killed worker had committed to clinical but not yet deleted from
	// intake show up as duplicates in later passes.
	duplicates := countRows(t, f.clinicalOwner, `SELECT coalesce(sum(duplicates), 0) FROM transfer_passes`)
	t.Logf("%d starts, %d SIGKILLs; %d of %d moved by the killed workers (%d redelivered as duplicates after a kill), final pass %+v",
		starts.Load(), kills.Load(), movedByKilled, total, duplicates, sum)
	if movedByKilled == 0 || kills.Load() < 10 {
		t.Fatalf("the workers moved %d rows and were killed %d times: the test proved nothing", movedByKilled, kills.Load())
	}
	if len(got) != total {
		t.Errorf("clinical holds %d submissions, want %d", len(got), total)
	}
	for i, r := range rows {
		if d, ok := got[r.SubmissionID]; !ok || d.receipt != receipts[i] {
			t.Errorf("submission %d lost", i)
		}
	}
	var receiptsSeen = map[string]bool{}
	for _, d := range got {
		if receiptsSeen[d.receipt] {
			t.Errorf("a receipt delivered twice")
		}
		receiptsSeen[d.receipt] = true
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake still holds %d rows", n)
	}
	if q := f.quarantined(); len(q) != 0 {
		t.Errorf("quarantine holds %d rows", len(q))
	}
}

// SIGTERM: the binary finishes, exits 0 and leaves no row half moved.
func TestSIGTERMStopsTheBinaryCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the transfer binary")
	}
	t.Parallel()
	bin := buildTransfer(t)
	f := newFixture(t)
	for range 40 {
		f.submit("symptoms", symptomsAnswers, nil)
	}
	cmd := exec.Command(bin, "run")
	for k, v := range with(f.cliEnv(), map[string]string{"TRANSFER_BATCH_SIZE": "1", "TRANSFER_SCHEDULE": "@every 1h"}) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stop it as soon as its start-up pass has moved something.
	waitFor(t, 20*time.Second, func() bool { return len(f.clinicalRows()) > 0 }, "the start-up pass to begin moving")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("transfer run exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("transfer run did not stop within 20s of SIGTERM\n%s", stderr.String())
	}
	moved, left := len(f.clinicalRows()), f.intakeCount()
	if moved+left != 40 {
		t.Errorf("after SIGTERM clinical holds %d and intake %d: a batch was left half done", moved, left)
	}
	t.Logf("SIGTERM after %d of 40 rows (one per batch) were moved", moved)
}

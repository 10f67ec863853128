package transfer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
)

// buildTransfer compiles the transfer binary into a temporary directory.
func buildTransfer(t testing.TB) string {
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
//
// Kill points follow the workers' progress, not the clock, so the test proves
// the same on a loaded machine as on a quiet one: each instance is killed a
// fixed number of times, each time only once it has started (it listens on
// intake) and clinical has gained rows since, at a random moment up to
// 150 ms later (mid-batch, between batches, between passes).
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
	q, a := f.answers("symptoms", symptomsAnswers)

	const killsPerWorker = 8
	// progress is clinical's row count, polled; errors end the test.
	progress := func() (int, error) {
		var n int
		err := f.clinicalOwner.QueryRow(context.Background(), `SELECT count(*) FROM submissions`).Scan(&n)
		return n, err
	}
	// until polls cond for at most a minute per step: a bound on a stuck
	// worker, never what decides when to kill.
	until := func(cond func() bool) bool {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return true
			}
		}
		return false
	}
	var kills, killsAfterProgress atomic.Int64
	var workers sync.WaitGroup
	for range 2 {
		workers.Go(func() {
			for range killsPerWorker {
				var stderr lockedBuffer
				cmd := exec.Command(bin, "run")
				cmd.Env, cmd.Stderr = environ, &stderr
				if err := cmd.Start(); err != nil {
					t.Errorf("start transfer run: %v", err)
					return
				}
				started := until(func() bool { return strings.Contains(stderr.String(), "listening for new submissions") })
				before, err := progress()
				moved := started && err == nil && until(func() bool {
					n, err := progress()
					return err != nil || n > before
				})
				time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
				err = cmd.Wait()
				var exit *exec.ExitError
				if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
					kills.Add(1)
					if moved {
						killsAfterProgress.Add(1)
					}
				} else {
					t.Errorf("transfer run ended with %v before it was killed\n%s", err, stderr.String())
				}
				if !started {
					t.Errorf("transfer run did not start listening within a minute\n%s", stderr.String())
					return
				}
			}
		})
	}
	// Submissions keep arriving until the last kill.
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	var rows []*intake.SealedRow
	var receipts []string
writing:
	for {
		select {
		case <-done:
			break writing
		case <-time.After(25 * time.Millisecond):
		}
		r, receipt, err := f.sealer.SealSubmission(q, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.InsertSubmission(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		rows, receipts = append(rows, r), append(receipts, receipt)
	}
	movedByKilled := len(f.clinicalRows())
	total := len(rows)

	// Whatever state the last kill left, one more pass finishes the job.
	sum := f.pass()
	got := f.clinicalRows() // fails on an intake id delivered twice
	// Rows a killed worker had committed to clinical but not yet deleted from
	// intake show up as duplicates in later passes.
	duplicates := countRows(t, f.clinicalOwner, `SELECT coalesce(sum(duplicates), 0) FROM transfer_passes`)
	t.Logf("%d SIGKILLs, %d of them after the worker had started and clinical had gained rows; %d of %d moved by the killed workers (%d redelivered as duplicates after a kill), final pass %+v",
		kills.Load(), killsAfterProgress.Load(), movedByKilled, total, duplicates, sum)
	if movedByKilled == 0 || killsAfterProgress.Load() < 10 {
		t.Fatalf("the workers moved %d rows and were killed %d times after progress: the test proved nothing", movedByKilled, killsAfterProgress.Load())
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

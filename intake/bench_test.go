package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

// Shape of the throughput benchmark (issue 4, item 9): a fixed number of
// requests per side, so `-benchtime 1x` gives a stable figure.
const (
	benchClients  = 32
	benchRequests = 5000
	benchWarmup   = 300
	benchRounds   = 10
)

// benchBody is a realistic new-patient submission of about 1.5 KB.
func benchBody(tb testing.TB) []byte {
	a := map[string]any{
		"family-name": "Lindqvist-Okonkwo", "given-name": "Marguerite Adaeze", "birth-date": "1978-11-04",
		"sex-at-birth": "female", "email": "m.lindqvist-okonkwo@example.org", "phone": "+44 20 7946 0321",
		"address":          "Flat 4, 27 Wellington Crescent\nNorthbridge\nNB4 7QX\nUnited Kingdom",
		"insurance-number": "NHS 943 476 5919", "insurer": "National Health Service",
		"medications": "Levothyroxine 75 micrograms once daily in the morning; Sertraline 50 mg once daily; " +
			"Salbutamol inhaler 100 micrograms as needed, about twice a week; Vitamin D 1000 IU daily in winter; " +
			"Ibuprofen 200 mg occasionally for back pain, no more than twice a month.",
		"allergies": true,
		"allergy-details": "Penicillin: widespread itchy rash and swollen lips within an hour (2009, treated in A&E). " +
			"Elastoplast adhesive: red blistering skin where the plaster was. Cats: sneezing and watery eyes. " +
			"Possibly shellfish: stomach cramps after prawns twice, never tested. Hay fever every June.",
		"smoker": "former", "alcohol-units": 6, "height": 168.5, "consent": true,
	}
	b, err := json.Marshal(a)
	if err != nil {
		tb.Fatal(err)
	}
	for len(b) < 1500 {
		a["address"] = a["address"].(string) + " "
		b, _ = json.Marshal(a)
	}
	return b
}

// runConcurrently runs n calls of fn over workers goroutines and returns
// the wall time and each call's latency.
func runConcurrently(tb testing.TB, workers, n int, fn func() error) (time.Duration, []time.Duration) {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr.Load(); err != nil {
		tb.Fatal(err)
	}
	return elapsed, lat
}

func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkIntakeThroughput measures, in one run against the same Postgres:
// (a) sealed submissions per second through the real `intake serve` binary's
// HTTP JSON API, 32 concurrent clients, a 1.5 KB body; (b) the database's own
// ceiling: single-row INSERTs of the same bytes (an envelope of the sealed
// size, a MAC, the same metadata) into a plain table (same columns, no
// trigger, no index) over 32 connections. It reports the ratio (a)/(b),
// intake's p50/p99 latency and intake's CPU time per stored submission
// (the intake process's user+system time over the rows it stored).
func BenchmarkIntakeThroughput(b *testing.B) {
	ctx := context.Background()
	owner := pgtest.NewDB(b, "intake", migrations.Intake())
	writer := pgtest.URLAs(b, owner, "airlock_intake_writer")
	key, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	rowKey, _ := seal.NewRowKey()
	body := benchBody(b)

	// Side (a): the real binary, with the settings of a deployment (its own
	// pool of INTAKE_DB_MAX_CONNS, no rate limit).
	srv := startIntakeBinary(b, map[string]string{
		"INTAKE_DATABASE_URL": writer, "INTAKE_ADDR": "127.0.0.1:0", "INTAKE_PLAIN_HTTP": "1",
		"INTAKE_RECIPIENTS": key.Public.String(), "INTAKE_ROW_KEY": rowKey.String(), "INTAKE_RATE_LIMIT": "0",
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: benchClients, MaxIdleConnsPerHost: benchClients}}
	url := srv.url + "/api/v1/forms/new-patient/submissions"
	submit := func() error { return postSubmission(client, url, body) }

	// Side (b): the plain table.
	ownerPool, err := pg.Connect(ctx, owner, benchClients)
	if err != nil {
		b.Fatal(err)
	}
	defer ownerPool.Close()
	if _, err := ownerPool.Exec(ctx, `CREATE TABLE plain_submissions (id uuid, form_id text, form_version text,
  key_id text, received_at timestamptz, envelope bytea, mac bytea)`); err != nil {
		b.Fatal(err)
	}
	envelopeSize := sealedSize(b, key, rowKey, body)
	insert := func() error { return rawInsert(ctx, ownerPool, envelopeSize) }

	b.ResetTimer()
	for range b.N {
		runConcurrently(b, benchClients, benchWarmup, insert)
		runConcurrently(b, benchClients, benchWarmup, submit)

		// Alternate the two sides in rounds, so both meet the same disk
		// and the same load: commit latency on a shared machine drifts by
		// a factor of several within a minute.
		var rawTime, intakeTime, intakeCPU time.Duration
		var rawLat, intakeLat []time.Duration
		for range benchRounds {
			d, l := runConcurrently(b, benchClients, benchRequests/benchRounds, insert)
			rawTime, rawLat = rawTime+d, append(rawLat, l...)
			cpu0 := srv.cpu()
			d, l = runConcurrently(b, benchClients, benchRequests/benchRounds, submit)
			intakeCPU += srv.cpu() - cpu0
			intakeTime, intakeLat = intakeTime+d, append(intakeLat, l...)
		}
		rawRate := float64(benchRequests) / rawTime.Seconds()
		intakeRate := float64(benchRequests) / intakeTime.Seconds()
		cpuPer := float64(intakeCPU.Microseconds()) / benchRequests
		b.ReportMetric(intakeRate, "intake_req/s")
		b.ReportMetric(rawRate, "plain_insert/s")
		b.ReportMetric(intakeRate/rawRate, "x_plain_insert")
		b.ReportMetric(float64(percentile(intakeLat, 0.99).Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(percentile(intakeLat, 0.50).Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(percentile(rawLat, 0.99).Microseconds())/1000, "plain_p99_ms")
		b.ReportMetric(cpuPer, "cpu_us/submission")
		b.Logf("body %d bytes, envelope %d bytes; intake %.0f/s, plain INSERT %.0f/s, ratio %.2f, intake p99 %v, %.0f µs intake CPU per submission",
			len(body), envelopeSize, intakeRate, rawRate, intakeRate/rawRate, percentile(intakeLat, 0.99), cpuPer)
	}
	b.StopTimer()
	// The per-op figure would only restate the custom metrics.
	b.ReportMetric(0, "ns/op")
}

// postSubmission posts one JSON submission and wants its 201.
func postSubmission(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// intakeProcess is the real `intake serve` binary running for a benchmark.
type intakeProcess struct {
	url string
	pid int
}

// startIntakeBinary builds and starts `intake serve` with env and waits for
// it to listen; it is stopped when the benchmark ends.
func startIntakeBinary(tb testing.TB, env map[string]string) *intakeProcess {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "intake")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/airlockhq/airlock/intake/cmd/intake").CombinedOutput(); err != nil {
		tb.Fatalf("go build intake: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "intake listening" {
				addr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		return &intakeProcess{url: "http://" + a, pid: cmd.Process.Pid}
	case <-time.After(time.Minute):
		tb.Fatal("intake serve did not listen within a minute")
		return nil
	}
}

// cpu is the process's user plus system CPU time so far, from /proc: the
// sum of its threads' run time in nanoseconds (schedstat), since the
// clock ticks of /proc/PID/stat (10 ms) are coarse beside one round's
// ~0.2 s; the ticks where schedstat is missing.
func (p *intakeProcess) cpu() time.Duration {
	if tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.pid)); len(tasks) > 0 {
		var ns int64
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			if err != nil {
				continue // a thread that just exited
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				ns += v
			}
		}
		return time.Duration(ns)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// sealedSize seals the benchmark body once the way intake does, for the
// size of the raw rows.
func sealedSize(tb testing.TB, key *seal.PrivateKey, rowKey seal.RowKey, body []byte) int {
	q, _ := forms.Builtin().Get("new-patient")
	var raw map[string]json.RawMessage
	json.Unmarshal(body, &raw)
	answers, ferrs := q.Validate(raw)
	if len(ferrs) > 0 {
		tb.Fatalf("benchmark body is invalid: %v", ferrs)
	}
	row, _, err := intake.NewSealer(key.Public, rowKey).SealSubmission(q, answers)
	if err != nil {
		tb.Fatal(err)
	}
	return len(row.Envelope)
}

// rawInsert stores one row of random bytes, shaped like intake's, into the
// plain table with a statement like intake's.
func rawInsert(ctx context.Context, pool *pgxpool.Pool, size int) error {
	env := make([]byte, size)
	rand.Read(env)
	mac := make([]byte, 32)
	rand.Read(mac)
	var id [16]byte
	rand.Read(id[:])
	_, err := pool.Exec(ctx, `INSERT INTO plain_submissions (id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7)`,
		fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]), "new-patient", "1", "0123456789abcdef", time.Now(), env, mac)
	return err
}

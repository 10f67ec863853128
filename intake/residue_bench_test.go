package intake_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

// residueSubmissions is how many submissions BenchmarkIntakeMemoryResidue
// sends before it looks.
const residueSubmissions = 5000

// BenchmarkIntakeMemoryResidue measures what a root attacker who reads a
// live intake process's memory finds of submissions already sealed and
// stored: the real `intake serve` binary takes residueSubmissions 1.5 KB
// submissions (32 clients), each with a marker of its own in a free-text
// answer, and then its writable memory is searched (/proc/PID/mem) for the
// markers. Go cannot wipe strings, and freed memory keeps its bytes until it
// is reused, so some remain; intake clears the buffers it owns (the request
// body, the raw answers, the sealed plaintext). It runs once with intake's
// collector settings (Go's defaults) and once with GOGC=400 and a 1 GiB soft
// limit, which save CPU but keep more freed memory unreused between
// collections (docs/intake.md, Memory and the garbage collector).
func BenchmarkIntakeMemoryResidue(b *testing.B) {
	for _, gc := range []struct{ name, gogc, limit string }{{"defaults", "", ""}, {"GOGC=400", "400", "1GiB"}} {
		b.Run(gc.name, func(b *testing.B) {
			owner := pgtest.NewDB(b, "intake", migrations.Intake())
			key, err := seal.GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			rowKey, _ := seal.NewRowKey()
			env := map[string]string{
				"INTAKE_DATABASE_URL": pgtest.URLAs(b, owner, "airlock_intake_writer"), "INTAKE_ADDR": "127.0.0.1:0",
				"INTAKE_PLAIN_HTTP": "1", "INTAKE_RECIPIENTS": key.Public.String(), "INTAKE_ROW_KEY": rowKey.String(),
				"INTAKE_RATE_LIMIT": "0",
			}
			if gc.gogc != "" {
				env["GOGC"], env["GOMEMLIMIT"] = gc.gogc, gc.limit
			}
			srv := startIntakeBinary(b, env)
			var answers map[string]any
			if err := json.Unmarshal(benchBody(b), &answers); err != nil {
				b.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: benchClients, MaxIdleConnsPerHost: benchClients}}
			url := srv.url + "/api/v1/forms/new-patient/submissions"
			var seq atomic.Int64
			for range b.N {
				runConcurrently(b, benchClients, residueSubmissions, func() error {
					a := make(map[string]any, len(answers))
					for k, v := range answers {
						a[k] = v
					}
					a["medications"] = fmt.Sprintf("RESIDUE-%06d %s", seq.Add(1), answers["medications"])
					body, err := json.Marshal(a)
					if err != nil {
						return err
					}
					return postSubmission(client, url, body)
				})
			}
			client.CloseIdleConnections()
			found := residueMarkers(b, srv.pid)
			sent := b.N * residueSubmissions
			b.ReportMetric(float64(found), "markers_found")
			b.ReportMetric(100*float64(found)/float64(sent), "pct_of_sent")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %d of %d submissions' markers readable in intake's memory afterwards", gc.name, found, sent)
		})
	}
}

// residueMarkers counts the distinct RESIDUE-nnnnnn markers in the
// process's writable memory.
func residueMarkers(tb testing.TB, pid int) int {
	tb.Helper()
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		tb.Fatalf("reading intake's memory needs ptrace rights over it (root, or yama ptrace_scope 0/1 for a child): %v", err)
	}
	defer mem.Close()
	marker := []byte("RESIDUE-")
	seen := map[string]bool{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		buf = buf[:n]
		for {
			i := bytes.Index(buf, marker)
			if i < 0 || i+len(marker)+6 > len(buf) {
				break
			}
			seen[string(buf[i+len(marker):i+len(marker)+6])] = true
			buf = buf[i+len(marker):]
		}
	}
	return len(seen)
}

// Command benchtable reads `go test -bench` output on stdin, passes it
// through, and ends with one table of the figures `make bench` is judged by:
// each ratio against the database's own ceiling measured in the same run,
// and the latency, CPU and memory figures, with their targets.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// figure is one reported metric of one benchmark, with its target.
type figure struct {
	bench, unit, label string
	target             float64
	atLeast            bool // the target is a floor, else a ceiling
}

var figures = []figure{
	{"BenchmarkIntakeThroughput", "intake_req/s", "intake: sealed submissions/s, 32 clients", 0, false},
	{"BenchmarkIntakeThroughput", "plain_insert/s", "baseline: single-row INSERT/s into a plain table, 32 clients", 0, false},
	{"BenchmarkIntakeThroughput", "x_plain_insert", "intake / plain INSERT", 0.6, true},
	{"BenchmarkIntakeThroughput", "p99_ms", "intake p99 latency (ms)", 25, false},
	{"BenchmarkIntakeThroughput", "cpu_us/submission", "intake CPU per 1.5 KB submission (µs)", 200, false},
	{"BenchmarkIntakeMemoryResidue/defaults", "pct_of_sent", "intake: past submissions readable in its memory after 5,000 (%)", 0, false},
	{"BenchmarkIntakeMemoryResidue/GOGC=400", "pct_of_sent", "  the same with GOGC=400 (not the default)", 0, false},
	{"BenchmarkTransferPass", "transfer_rows/s", "transfer: rows/s, one pass over 10,000 x 1.5 KB", 0, false},
	{"BenchmarkTransferPass", "plain_copy_rows/s", "baseline: COPY rows/s into a plain table", 0, false},
	{"BenchmarkTransferPass", "x_plain_copy", "transfer / plain COPY", 0.4, true},
	{"BenchmarkTransferPass", "transfer_cpu_us/row", "transfer CPU per row, Go + Postgres (µs)", 0, false},
	{"BenchmarkTransferPass", "transfer_go_cpu_us/row", "  of which transfer's own (open, check, encode)", 0, false},
	{"BenchmarkTransferPass", "transfer_pg_cpu_us/row", "  of which Postgres (intake read and delete, clinical insert)", 0, false},
	{"BenchmarkTransferPass", "plain_copy_cpu_us/row", "baseline: plain COPY CPU per row, Go + Postgres (µs)", 0, false},
	{"BenchmarkTransferPass", "x_plain_copy_cpu", "plain COPY CPU / transfer CPU per row (load-proof)", 0, false},
	{"BenchmarkTimeToClinic", "offered_req/s", "time to clinic: intake load (submissions/s)", 0, false},
	{"BenchmarkTimeToClinic", "p99_s", "time to clinic p99 (s)", 0.5, false},
	{"BenchmarkTransferLargeBacklog", "max_rss_MiB", "transfer once, 120 x 5 MiB pending: max RSS (MiB)", 512, false},
	{"BenchmarkListSearch/export_rows=100000", "max_rss_MiB", "clinical export NDJSON of 100k: max RSS (MiB)", 0, false},
	{"BenchmarkListSearch/export_rows=1000000", "max_rss_MiB", "clinical export NDJSON of 1M: max RSS (MiB)", 0, false},
	{"BenchmarkListSearch/export_rows=3000000", "max_rss_MiB", "clinical export NDJSON of 3M: max RSS (MiB)", 0, false},
	{"BenchmarkListSearch/rows=100000", "p95_search_ms", "list/search at 100k: search p95 (ms)", 20, false},
	{"BenchmarkListSearch/rows=100000", "max_ms", "list/search at 100k: slowest request (ms)", 250, false},
	{"BenchmarkListSearch/rows=1000000", "p95_search_ms", "list/search at 1M: search p95 (ms)", 20, false},
	{"BenchmarkListSearch/rows=1000000", "max_ms", "list/search at 1M: slowest request (ms)", 250, false},
	{"BenchmarkListSearch/rows=3000000", "p95_search_ms", "list/search at 3M: search p95 (ms)", 20, false},
	{"BenchmarkListSearch/rows=3000000", "max_ms", "list/search at 3M: slowest request (ms)", 250, false},
}

var suffix = regexp.MustCompile(`-\d+$`)

func main() {
	got := map[string]map[string]float64{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := suffix.ReplaceAllString(f[0], "")
		if got[name] == nil {
			got[name] = map[string]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				got[name][f[i+1]] = v
			}
		}
	}
	fmt.Println()
	fmt.Println("make bench: one run, every baseline measured in the same run (a plain table: no trigger, no extra index, same bytes)")
	fmt.Printf("%-62s %12s %10s  %s\n", "figure", "value", "target", "")
	for _, fg := range figures {
		v, ok := got[fg.bench][fg.unit]
		if !ok {
			fmt.Printf("%-62s %12s\n", fg.label, "not run")
			continue
		}
		target, verdict := "", ""
		if fg.target != 0 {
			met := v <= fg.target
			op := "<="
			if fg.atLeast {
				met, op = v >= fg.target, ">="
			}
			target = op + " " + strconv.FormatFloat(fg.target, 'f', -1, 64)
			verdict = "met"
			if !met {
				verdict = "NOT MET"
			}
		}
		fmt.Printf("%-62s %12s %10s  %s\n", fg.label, format(v), target, verdict)
	}
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

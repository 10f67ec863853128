package intake

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetGCDefaults: serve raises GOGC (with a soft memory limit) only
// where the operator set neither; an operator's GOGC leaves the runtime as
// Go set it, and an operator's GOMEMLIMIT is kept. Not parallel: it changes
// the process's collector settings (and puts them back).
func TestSetGCDefaults(t *testing.T) {
	percent0 := debug.SetGCPercent(100)
	limit0 := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent0); debug.SetMemoryLimit(limit0) })

	for _, tc := range []struct {
		name        string
		env         map[string]string
		applied     bool
		wantPercent int
		wantLimit   int64
	}{
		{"nothing set", nil, true, DefaultGCPercent, DefaultMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "300MiB"}, true, DefaultGCPercent, math.MaxInt64},
		{"GOGC set", map[string]string{"GOGC": "100"}, false, 100, math.MaxInt64},
		{"GOGC off", map[string]string{"GOGC": "off"}, false, 100, math.MaxInt64},
	} {
		// The runtime read GOGC and GOMEMLIMIT at start; stand in for an
		// operator's values with Go's defaults.
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		percent, limit, applied := setGCDefaults(func(k string) string { return tc.env[k] })
		gotPercent := debug.SetGCPercent(100)
		gotLimit := debug.SetMemoryLimit(-1)
		if applied != tc.applied || gotPercent != tc.wantPercent || gotLimit != tc.wantLimit {
			t.Errorf("%s: applied %v, GOGC %d, limit %d; want %v, %d, %d",
				tc.name, applied, gotPercent, gotLimit, tc.applied, tc.wantPercent, tc.wantLimit)
		}
		if applied && (percent != gotPercent || limit != gotLimit) {
			t.Errorf("%s: reported %d and %d, runtime has %d and %d", tc.name, percent, limit, gotPercent, gotLimit)
		}
	}
}

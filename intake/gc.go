package intake

import "runtime/debug"

// Collector defaults of `intake serve` (docs/intake.md, "Memory and the
// garbage collector"). intake's live heap is small (forms, catalogues,
// templates: about 10 MB) and each submission allocates tens of kilobytes
// of short-lived garbage, so at Go's default GOGC=100 the collector runs
// several times a second under load and takes about a tenth of intake's
// CPU. GOGC=400 lets the heap grow to five times the live heap between
// collections instead of twice; the soft memory limit makes the collector
// work harder before the heap passes it, so a burst of large attachments
// costs CPU, not unbounded memory.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 1 << 30 // 1 GiB
)

// setGCDefaults applies intake's collector defaults where the operator has
// not chosen: GOGC=400 when GOGC is unset, and, with it, a soft memory limit
// of DefaultMemoryLimit when GOMEMLIMIT is unset too. A GOGC of the
// operator's (any value, "off" included) leaves the runtime as Go set it.
// It reports the settings it applied, for the start-up log.
func setGCDefaults(getenv func(string) string) (percent int, limit int64, applied bool) {
	if getenv("GOGC") != "" {
		return 0, 0, false
	}
	debug.SetGCPercent(DefaultGCPercent)
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	return DefaultGCPercent, debug.SetMemoryLimit(-1), true
}

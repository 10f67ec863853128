package transfer

import (
	"context"
	"testing"
	"time"
)

func TestPassMaxAge(t *testing.T) {
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"@every 1m":   5 * time.Minute, // the floor
		"@every 1h":   3 * time.Hour,
		"*/5 * * * *": 15 * time.Minute,
		"@daily":      72 * time.Hour,
	} {
		if got := passMaxAge(spec, now); got != want {
			t.Errorf("%s: %v, want %v", spec, got, want)
		}
	}
}

// TestRecentPass: "last pass recent" fails once no good pass has finished
// for longer than the limit.
func TestRecentPass(t *testing.T) {
	w := &Worker{Schedule: "@every 1m", lastGood: time.Now().Add(-4 * time.Minute)}
	if err := w.recentPass(context.Background()); err != nil {
		t.Errorf("a pass 4 minutes ago on a 1m schedule: %v", err)
	}
	w.lastGood = time.Now().Add(-6 * time.Minute)
	if err := w.recentPass(context.Background()); err == nil {
		t.Error("a pass 6 minutes ago on a 1m schedule counts as recent")
	}
}

package ops

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/airlockhq/airlock", Version: "v1.2.3"}}
	if got, want := versionOf("intake", info), "intake v1.2.3 commit unknown go1.26.8"; got != want {
		t.Errorf("without VCS: %q, want %q", got, want)
	}
	info.Settings = []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T01:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	info.Main.Version = ""
	want := "intake (devel) commit 0123456789abcdef0123456789abcdef01234567+modified (2026-11-30T01:00:00Z) go1.26.8"
	if got := versionOf("intake", info); got != want {
		t.Errorf("with VCS: %q, want %q", got, want)
	}
}

// Package ops is the operations surface the three Airlock binaries share, so
// they behave as siblings: `--version`, the `check` subcommand's report and
// its database checks, the /livez and /readyz endpoints and the `healthcheck`
// subcommand a distroless container uses in place of curl.
package ops

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is the one line `--version` prints: the program, its module
// version and the VCS commit `go build` embedded (with "+modified" when the
// working tree had uncommitted changes), and the Go version.
func Version(program string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return program + " (no build information)"
	}
	return versionOf(program, info)
}

func versionOf(program string, info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var commit, when string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", program, version)
	if commit != "" {
		fmt.Fprintf(&b, " commit %s", commit)
		if modified {
			b.WriteString("+modified")
		}
		if when != "" {
			fmt.Fprintf(&b, " (%s)", when)
		}
	} else {
		b.WriteString(" commit unknown")
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}

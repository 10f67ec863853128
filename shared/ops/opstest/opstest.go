// Package opstest builds and runs the real Airlock binaries in tests, so the
// operations surface (--version, check, healthcheck) is tested as ops use it.
package opstest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Build compiles the command package (such as
// "github.com/airlockhq/airlock/intake/cmd/intake") into the test's temporary
// directory, with the VCS information `go build` embeds, and returns its
// path. The build cache makes every build after the first a link.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Result is what a run of a binary printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs bin with exactly env (plus PATH and HOME) and args, and waits
// for it (at most two minutes).
func Run(tb testing.TB, bin string, env map[string]string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = Environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		tb.Fatalf("run %s %v: %v", bin, args, err)
	}
	return res
}

// Environ is env as a process environment, with PATH and HOME kept.
func Environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// VersionPattern is what `bin --version` must print, from the build
// information `go version -m` reads out of bin: the module version and, when
// the build embedded one, the commit.
func VersionPattern(tb testing.TB, bin, program string) *regexp.Regexp {
	tb.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		tb.Fatalf("go version -m: %v", err)
	}
	info := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			info["mod"] = f[2]
		case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			info["commit"] = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	commit := "unknown"
	if c := info["commit"]; c != "" {
		commit = regexp.QuoteMeta(c) + `(\+modified)? \(\S+\)`
	}
	return regexp.MustCompile(`^` + regexp.QuoteMeta(program+" "+info["mod"]) + ` commit ` + commit + ` go1\.\S+\n$`)
}

// Sub is one subtest of Commands: a name and a test of the built binary.
type Sub struct {
	Name string
	Run  func(t *testing.T, bin string)
}

// Commands builds the command package pkg once and runs against the binary,
// as parallel subtests, Version (`bin --version` prints program, the module
// version and the commit, see VersionPattern) and then each of subs.
func Commands(t *testing.T, pkg, program string, subs ...Sub) {
	t.Helper()
	bin := Build(t, pkg)
	version := Sub{Name: "Version", Run: func(t *testing.T, bin string) {
		res := Run(t, bin, nil, "--version")
		if want := VersionPattern(t, bin, program); res.Code != 0 || !want.MatchString(res.Stdout) {
			t.Errorf("--version: exit %d, stdout %q, stderr %q, want %s", res.Code, res.Stdout, res.Stderr, want)
		}
	}}
	for _, s := range append([]Sub{version}, subs...) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			s.Run(t, bin)
		})
	}
}

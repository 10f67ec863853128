package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/cli"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"help", cli.ErrHelp, 0},
		{"wrapped help", fmt.Errorf("intake: %w", cli.ErrHelp), 0},
		{"usage", cli.Usagef("X: must be %d", 1), 2},
		{"wrapped usage", fmt.Errorf("load: %w", cli.Usagef("X: bad")), 2},
		{"runtime failure", errors.New("connect: refused"), 1},
	} {
		if got := cli.ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := cli.Usagef("X: must be %d or %s", 1, "more").Error(); got != "X: must be 1 or more" {
		t.Errorf("Usagef message %q", got)
	}
}

func TestLoggerWritesJSONToStderr(t *testing.T) {
	t.Parallel()
	var stderr, stdout bytes.Buffer
	env := cli.Env{Stdout: &stdout, Stderr: &stderr}
	env.Logger().Info("started", "n", 3)
	env.Logger().Debug("hidden")
	var line map[string]any
	if err := json.Unmarshal(stderr.Bytes(), &line); err != nil {
		t.Fatalf("log is not one JSON line: %q", stderr.String())
	}
	if line["msg"] != "started" || line["level"] != "INFO" || line["n"] != float64(3) {
		t.Errorf("log line %v", line)
	}
	if stdout.Len() != 0 {
		t.Errorf("logger wrote to stdout: %q", stdout.String())
	}
}

// helperEnv makes the test binary act as a program built on cli.Main.
const helperEnv = "AIRLOCK_CLI_TEST_HELPER"

// TestMain lets TestMainExits run this test binary as such a program.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		cli.Main(func(ctx context.Context, env cli.Env) error {
			switch mode {
			case "ok":
				fmt.Fprintln(env.Stdout, "done")
				return nil
			case "help":
				fmt.Fprintln(env.Stdout, "Usage: prog")
				return cli.ErrHelp
			case "usage":
				return cli.Usagef("PROG_SETTING: must be a number")
			default:
				return errors.New("database unreachable")
			}
		})
	}
	os.Exit(m.Run())
}

func TestMainExits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode       string
		wantCode   int
		wantStdout string
		checkErr   func(t *testing.T, stderr string)
	}{
		{mode: "ok", wantCode: 0, wantStdout: "done\n", checkErr: wantEmpty},
		{mode: "help", wantCode: 0, wantStdout: "Usage: prog\n", checkErr: wantEmpty},
		{mode: "usage", wantCode: 2, checkErr: func(t *testing.T, stderr string) {
			if stderr != "PROG_SETTING: must be a number\n" {
				t.Errorf("stderr %q, want the message as one bare line", stderr)
			}
		}},
		{mode: "fail", wantCode: 1, checkErr: func(t *testing.T, stderr string) {
			var line map[string]any
			if strings.Count(stderr, "\n") != 1 || json.Unmarshal([]byte(stderr), &line) != nil {
				t.Fatalf("stderr %q, want one JSON log line", stderr)
			}
			if line["level"] != "ERROR" || line["error"] != "database unreachable" {
				t.Errorf("log line %v", line)
			}
		}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			tc.checkErr(t, stderr.String())
		})
	}
}

func wantEmpty(t *testing.T, stderr string) {
	t.Helper()
	if stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
}

// TestParseFlags: a bad flag or a stray argument is one usage line (exit
// 2) naming the subcommand, and good flags parse.
func TestParseFlags(t *testing.T) {
	t.Parallel()
	newFS := func() (*flag.FlagSet, *string) {
		fs := flag.NewFlagSet("airlock thing", flag.ContinueOnError)
		return fs, fs.String("format", "", "")
	}
	fs, format := newFS()
	if err := cli.ParseFlags(fs, []string{"--format", "csv"}); err != nil || *format != "csv" {
		t.Fatalf("good flags: %v, format %q", err, *format)
	}
	for _, args := range [][]string{{"--nope"}, {"--format", "csv", "extra"}} {
		fs, _ := newFS()
		err := cli.ParseFlags(fs, args)
		if cli.ExitCode(err) != 2 || !strings.HasPrefix(err.Error(), "airlock thing: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v (exit %d), want one usage line naming the subcommand", args, err, cli.ExitCode(err))
		}
	}
}

// Package cli gives the three Airlock binaries one way to start, log and exit, so
// the contract's exit codes (0 success, 1 runtime failure, 2 bad usage or
// configuration) hold everywhere.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// UsageError is bad usage or configuration: the process exits 2 and prints the
// message, which names the bad flag or variable, as one line on stderr.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ErrHelp is returned by a command that printed its usage on request; it exits 0.
var ErrHelp = errors.New("help requested")

// Env is everything a command needs from its process, injectable so tests can
// run the real program in-process.
type Env struct {
	Args   []string // arguments after the program name
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Logger returns the JSON logger every Airlock program writes to stderr.
func (e Env) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// ExitCode maps an error returned by a command to the contract's exit code.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// Main runs a program with the real process environment and exits with its code.
// A usage error is printed as one bare line; other errors as one JSON log line.
func Main(run func(ctx context.Context, env Env) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := Env{Args: os.Args[1:], Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := run(ctx, env)
	stop()
	code := ExitCode(err)
	switch code {
	case 2:
		fmt.Fprintln(os.Stderr, err.Error())
	case 1:
		env.Logger().Error("failed", "error", err.Error())
	}
	os.Exit(code)
}

// ParseFlags parses a subcommand's flags (fs is named after the
// subcommand, such as "clinical export"). A bad flag or a stray argument is
// a UsageError (exit 2) of one line naming the subcommand; flag's own
// usage text is never printed.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return Usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

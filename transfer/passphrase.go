package transfer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/term"

	"github.com/airlockhq/airlock/shared/cli"
)

// readPassphrase reads a passphrase from exactly one of: NAME, NAME_FILE (the
// file's contents, one trailing newline trimmed: where systemd credentials,
// Docker or Kubernetes secrets and tmpfs hand secrets over), NAME_COMMAND (the
// stdout of a shell command, so a KMS, Vault or TPM client can guard it), or,
// with none set and stdin a terminal, a prompt without echo on stderr, asked
// twice when confirm is set (a new passphrase). Setting more than one, or none
// without a terminal, is a usage error naming the variable.
func readPassphrase(ctx context.Context, env cli.Env, name, prompt string, confirm bool) ([]byte, error) {
	direct, file, command := env.Getenv(name), env.Getenv(name+"_FILE"), env.Getenv(name+"_COMMAND")
	set := 0
	for _, v := range []string{direct, file, command} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, cli.Usagef("%s: set only one of %s, %s_FILE and %s_COMMAND", name, name, name, name)
	}
	switch {
	case direct != "":
		return []byte(direct), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, cli.Usagef("%s_FILE: cannot read the file it names", name)
		}
		if b = trimNewline(b); len(b) == 0 {
			return nil, cli.Usagef("%s_FILE: the file it names is empty", name)
		}
		return b, nil
	case command != "":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stderr = env.Stderr
		// A child that keeps stdout open must not hold the unlock past the timeout.
		cmd.WaitDelay = 2 * time.Second
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s_COMMAND failed: %w", name, err)
		}
		if out = trimNewline(out); len(out) == 0 {
			return nil, fmt.Errorf("%s_COMMAND printed no passphrase", name)
		}
		return out, nil
	}
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, cli.Usagef("%s: not set (or set %s_FILE or %s_COMMAND)", name, name, name)
	}
	fmt.Fprintf(env.Stderr, "%s (%s): ", prompt, name)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if confirm {
		fmt.Fprintf(env.Stderr, "%s again: ", prompt)
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		defer clear(again)
		if !bytes.Equal(p, again) {
			clear(p)
			return nil, cli.Usagef("%s: the two passphrases differ", name)
		}
	}
	return p, nil
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

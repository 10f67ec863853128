package clinical

import (
	"io"
	"strings"

	"github.com/airlockhq/airlock/shared/cli"
)

func cliEnv(env map[string]string, out, errOut io.Writer, args ...string) cli.Env {
	return cli.Env{Args: args, Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut}
}

func exitCode(err error) int { return cli.ExitCode(err) }

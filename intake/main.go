// Package intake is Stage 1 of Airlock: the public HTTPS server that serves
// intake forms, validates answers against their Questionnaire, seals each
// submission to the clinic's public key and stores only ciphertext, through a
// database login that can INSERT and nothing else.
package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/ops"
)

const usage = `intake: Airlock's public intake server.

Usage:
  intake migrate   apply the intake database migrations (run as the database owner)
  intake serve     serve intake forms (HTML), the JSON API, /livez and /readyz (/healthz: alias)
  intake check     check the settings, the database login, its schema version and its grants;
                   one line per check, exit 0 when all good, 1 on a problem, 2 on a bad setting
  intake healthcheck [URL]
                   GET URL (default: /readyz on INTAKE_METRICS_ADDR) with a 5s timeout; exit 0 on
                   200, else 1 (a container healthcheck without curl)
  intake forms check DIR
                   load every form in DIR (and DIR/valuesets) and list every problem,
                   one line each (file, item path, problem); exit 0 when all load, 1 if not
  intake --version print the version and commit
  intake --help    show this help

Settings (environment; each secret X may be given as X_FILE instead):
  INTAKE_DATABASE_URL   Postgres URL (required); for serve, a login granted airlock_intake_writer
                        and airlock_intake_results (one-time result links, docs/results.md)
  INTAKE_ADDR           listen address (default :8443)
  INTAKE_TLS_CERT, INTAKE_TLS_KEY   PEM certificate and key files (TLS 1.2 or later)
  INTAKE_ACME_DOMAINS   comma-separated DNS names: obtain and renew the certificate by ACME (TLS-ALPN-01
                        on INTAKE_ADDR itself, which must be reachable on port 443) instead of the files
  INTAKE_ACME_CACHE     directory kept across restarts for the ACME account key and certificates
                        (required with INTAKE_ACME_DOMAINS)
  INTAKE_ACME_DIRECTORY ACME directory URL (default Let's Encrypt production,
                        https://acme-v02.api.letsencrypt.org/directory)
  INTAKE_ACME_EMAIL     contact address given to the ACME server (optional)
  INTAKE_ACME_CA_FILE   PEM roots to trust for the ACME server's HTTPS (a private CA or a test server)
  INTAKE_PLAIN_HTTP=1   serve plain HTTP (only behind a TLS-terminating proxy, or in tests)
  INTAKE_RECIPIENTS     comma-separated public key strings; the first seals new submissions (required)
  INTAKE_ROW_KEY        row key from ` + "`transfer keys row-key`" + ` (required; also keys the CSRF tokens)
  INTAKE_FORMS_DIR      directory of FHIR Questionnaire JSON files (default: built-in example forms);
                        ValueSets for answerValueSet go in its valuesets/ subdirectory
  INTAKE_FORMS_BASE_URL base URL naming forms that have no url: BASE/<form id> (default: such
                        forms are refused); set the same value for transfer and clinical
  INTAKE_RATE_LIMIT     submissions per minute per client address, burst 20 (default 60;
                        0 = off, the global ceiling included)
  INTAKE_RATE_LIMIT_GLOBAL  submissions per minute for this process, all clients together
                        (default 6000; 0 = no ceiling)
  INTAKE_TRUSTED_PROXIES  comma-separated IPs or CIDRs of proxies whose X-Forwarded-For is believed
                        (default none: the client address is the TCP peer)
  INTAKE_MAX_BODY       largest request body, files included (default 10MiB, at most 16MiB)
  INTAKE_MAX_ATTACHMENT largest single attached file (default 5MiB)
  INTAKE_ATTACHMENT_TYPES  allowed attachment types, detected from content
                        (default application/pdf,image/png,image/jpeg,text/plain)
  INTAKE_METRICS_ADDR   address of a separate listener for Prometheus /metrics, /livez and /readyz
                        (default: off; keep it off the public network)
  INTAKE_DB_MAX_CONNS   database connections (default 32)
  GOGC, GOMEMLIMIT      Go's collector settings, Go's defaults when unset; a larger GOGC saves CPU
                        but keeps more past answers in freed memory (docs/intake.md, Memory and the
                        garbage collector)
`

// Main is the intake binary.
func Main() { cli.Main(Run) }

// Run runs one intake command; tests call it in-process.
func Run(ctx context.Context, env cli.Env) error {
	if len(env.Args) == 0 {
		return cli.Usagef("intake: missing command (migrate or serve); see intake --help")
	}
	switch env.Args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		return cli.ErrHelp
	case "--version", "version":
		fmt.Fprintln(env.Stdout, ops.Version("intake"))
		return nil
	case "migrate":
		return migrations.Apply(env, "INTAKE_DATABASE_URL", "intake", migrations.Intake())
	case "forms":
		return formsCommand(env)
	case "check":
		return runCheck(ctx, env)
	case "healthcheck":
		return ops.Healthcheck(ctx, env, "intake", "INTAKE_METRICS_ADDR")
	case "serve":
		if len(env.Args) > 1 {
			return cli.Usagef("intake serve: unexpected argument %q", env.Args[1])
		}
		cfg, err := LoadConfig(env.Getenv)
		if err != nil {
			return err
		}
		return Serve(ctx, cfg, env.Logger())
	default:
		return cli.Usagef("intake: unknown command %q; see intake --help", env.Args[0])
	}
}

// formsCommand runs `intake forms check DIR`.
func formsCommand(env cli.Env) error {
	if len(env.Args) != 3 || env.Args[1] != "check" {
		return cli.Usagef("intake forms: usage: intake forms check DIR")
	}
	dir := env.Args[2]
	base := strings.TrimRight(env.Getenv("INTAKE_FORMS_BASE_URL"), "/")
	problems := forms.CheckDir(dir, forms.LoadOptions{BaseURL: base})
	for _, p := range problems {
		fmt.Fprintln(env.Stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(env.Stdout, "%d problem%s in %s\n", len(problems), map[bool]string{true: "", false: "s"}[len(problems) == 1], dir)
		return errFormsInvalid
	}
	fmt.Fprintf(env.Stdout, "all forms in %s load\n", dir)
	return nil
}

// errFormsInvalid makes `intake forms check` exit 1 after listing problems.
var errFormsInvalid = errors.New("forms check: some forms do not load")

// Package clinical is Stage 2 of Airlock: the internal staff application over
// the clinical database, where delivered submissions are plaintext so staff
// can search, sort and filter, and every read is accountable in a keyed,
// hash-chained audit log.
package clinical

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/ops"
	"github.com/airlockhq/airlock/shared/pg"
)

const usage = `clinical: Airlock's internal staff application.

Usage:
  clinical migrate                  apply the clinical database migrations (run as the database owner)
  clinical secret-key               print a new CLINICAL_SECRET_KEY
  clinical serve                    serve the staff web app (see docs/clinical.md), /livez and /readyz
                                    (/healthz: alias)
  clinical check                    check the settings of serve, the database login, its schema version
                                    and its grants; one line per check, exit 0 when all good, 1 on a
                                    problem, 2 on a bad setting
  clinical healthcheck [URL]        GET URL (default: /readyz on CLINICAL_METRICS_ADDR) with a 5s
                                    timeout; exit 0 on 200, else 1 (a container healthcheck without curl)
  clinical staff add --email E --role admin|clinician|viewer
                                    create a staff account with no password; prints the enrolment code(s)
                                    its owner enters at /enrol to choose a password and set up TOTP (the
                                    first admin is active and gets both codes; others await approval by
                                    an admin, who is shown the second code)
  clinical retention run            delete submissions done for longer than CLINICAL_RETENTION (audited)
  clinical export --format ndjson|csv [--form ID] [--since RFC3339] [--include-superseded]
                                    write current stage-2 submissions to stdout (audited);
                                    --include-superseded adds the corrected ones, marked (FHIR
                                    status "amended", CSV column superseded_by)
  clinical audit verify [--head ID:MACHEX]...
                                    exit 0 when the audit chain is intact and holds every given head
                                    (the "head" of serve's "audit chain head" log lines), 1 naming
                                    the first broken entry or missing head
  clinical audit export --format ndjson [--since RFC3339]
                                    write the audit entries (recorded at or after --since) to stdout,
                                    one JSON object a line, oldest first, for a log system: id, seq,
                                    at, actor, action, target, detail and mac as stored (ids and
                                    actions, no patient data); audited, its own entry the last line
  clinical results publish --receipt R --file F [--title T] [--expires DURATION] [--require-birth-date]
                                    publish a result (PDF, PNG, JPEG or text, at most 5 MiB) for the
                                    submission with receipt R; prints the one-time link, shown only now
                                    (default expiry 336h; --require-birth-date also asks the patient for
                                    the submission's date of birth); audited. See docs/results.md
  clinical --version                print the version and commit
  clinical --help                   show this help

Settings (environment; each secret X may be given as X_FILE instead):
  CLINICAL_DATABASE_URL   clinical database; for the app, a login granted airlock_clinical_app (required)
  CLINICAL_SECRET_KEY     from ` + "`clinical secret-key`" + `; keys the audit chain (required but for migrate, secret-key)
  CLINICAL_FORMS_DIR      Questionnaire directory, as intake's (default: the built-in forms)
  CLINICAL_FORMS_BASE_URL  base URL naming forms without a url, as intake's INTAKE_FORMS_BASE_URL
  CLINICAL_ADDR           serve: listen address (default 127.0.0.1:8444)
  CLINICAL_TLS_CERT, CLINICAL_TLS_KEY   serve: PEM certificate and key files
  CLINICAL_PLAIN_HTTP=1   serve: plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)
  CLINICAL_SESSION_IDLE   serve: idle session timeout (default 15m)
  CLINICAL_SESSION_MAX    serve: absolute session timeout (default 12h)
  CLINICAL_TRUSTED_PROXIES  serve: comma-separated IPs or CIDRs of proxies whose X-Forwarded-For
                          login throttling believes (default none: the TCP peer)
  CLINICAL_RETENTION      delete submissions done for longer than this, such as 8760h (default off);
                          serve applies it hourly, ` + "`clinical retention run`" + ` once
  CLINICAL_AUDIT_HEAD_INTERVAL  serve: how often the audit chain head is logged (default 10m)
  CLINICAL_NOTIFY_SMTP    serve: smtp://host:port or smtps://host:port turns on a content-free email
                          digest of new and quarantined rows (default off; see docs/clinical.md)
  CLINICAL_NOTIFY_TO, CLINICAL_NOTIFY_FROM   serve: recipients (comma-separated) and sender
  CLINICAL_NOTIFY_SMTP_USERNAME, CLINICAL_NOTIFY_SMTP_PASSWORD   serve: optional SMTP credentials
  CLINICAL_NOTIFY_SMTP_CA_FILE  serve: PEM roots for the SMTP server's certificate
  CLINICAL_NOTIFY_INTERVAL  serve: how often a digest may go out (default 5m)
  CLINICAL_INTAKE_URL     intake's public base URL, such as https://forms.example.org: one-time result
                          links point there (required by results publish, and by serve to publish)
  CLINICAL_METRICS_ADDR   serve: address of a separate listener for Prometheus /metrics, /livez and
                          /readyz (default: off; keep it off the staff network)
`

// Main is the clinical binary.
func Main() { cli.Main(Run) }

// Config is what the clinical commands read from the environment.
type Config struct {
	DatabaseURL string    `json:"-"`
	SecretKey   SecretKey `json:"-"`
	Forms       *forms.Registry
}

// LoadConfig reads the settings every command but migrate and secret-key needs.
func LoadConfig(getenv func(string) string) (*Config, error) {
	r := config.NewReader(getenv)
	c := &Config{DatabaseURL: r.DatabaseURL("CLINICAL_DATABASE_URL")}
	if s := r.Secret("CLINICAL_SECRET_KEY", true); s != "" {
		k, err := ParseSecretKey(s)
		if err != nil {
			r.Fail("CLINICAL_SECRET_KEY", "%v", err)
		}
		c.SecretKey = k
	}
	c.Forms = r.Forms("CLINICAL_FORMS_DIR")
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs one clinical command; tests call it in-process.
func Run(ctx context.Context, env cli.Env) error {
	if len(env.Args) == 0 {
		return cli.Usagef("clinical: missing command; see clinical --help")
	}
	switch env.Args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		return cli.ErrHelp
	case "--version", "version":
		fmt.Fprintln(env.Stdout, ops.Version("clinical"))
		return nil
	case "migrate":
		return migrations.Apply(env, "CLINICAL_DATABASE_URL", "clinical", migrations.Clinical())
	case "check":
		return runCheck(ctx, env)
	case "healthcheck":
		return ops.Healthcheck(ctx, env, "clinical", "CLINICAL_METRICS_ADDR")
	case "secret-key":
		k, err := NewSecretKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.String())
		return nil
	case "export":
		return runExport(ctx, env)
	case "serve":
		return runServe(ctx, env)
	case "staff":
		return runStaff(ctx, env)
	case "retention":
		return runRetention(ctx, env)
	case "results":
		return runResults(ctx, env)
	case "audit":
		switch {
		case len(env.Args) >= 2 && env.Args[1] == "verify":
			return runAuditVerify(ctx, env)
		case len(env.Args) >= 2 && env.Args[1] == "export":
			return runAuditExport(ctx, env)
		}
		return cli.Usagef("clinical audit: want `clinical audit verify [--head ID:MACHEX]...` or `clinical audit export --format ndjson [--since RFC3339]`")
	default:
		return cli.Usagef("clinical: unknown command %q; see clinical --help", env.Args[0])
	}
}

// openCommand is what a subcommand that works on the database starts with:
// the settings (exit 2 naming a bad one) and a pool on a current schema.
// The caller closes the pool.
func openCommand(ctx context.Context, env cli.Env) (*Config, *pgxpool.Pool, error) {
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return nil, nil, err
	}
	pool, err := connect(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, pool, nil
}

func connect(ctx context.Context, cfg *Config) (*pgxpool.Pool, error) {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		return nil, err
	}
	if err := pg.CheckSchema(ctx, pool, migrations.Clinical()); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// cliActor names the operator of a command in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

func runExport(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("clinical export", flag.ContinueOnError)
	format := fs.String("format", "", "ndjson or csv")
	form := fs.String("form", "", "only this form id")
	since := fs.String("since", "", "only submissions received at or after this RFC 3339 time")
	superseded := fs.Bool("include-superseded", false, "also the submissions a correction superseded, marked")
	if err := cli.ParseFlags(fs, env.Args[1:]); err != nil {
		return err
	}
	if *format != "ndjson" && *format != "csv" {
		return cli.Usagef("--format: must be ndjson or csv")
	}
	f := ExportFilter{FormID: *form, IncludeSuperseded: *superseded}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return cli.Usagef("--since: must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
		}
		f.Since = t
	}
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	if f.FormID != "" {
		if _, ok := cfg.Forms.Get(f.FormID); !ok {
			return cli.Usagef("--form: unknown form id")
		}
	}
	pool, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	x := &Exporter{Pool: pool, Audit: newCommandAudit(pool, cfg.SecretKey, env.Logger()), Forms: cfg.Forms}
	progress := env.Progress("clinical export")
	x.Progress = func(n, total int64) { progress.Update("%d of %d rows written", n, total) }
	// Rows stream from the database to stdout through one 64 KiB buffer:
	// memory stays the same whatever the export holds.
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	n, err := x.Export(ctx, out, *format, cliActor(), f)
	if errors.Is(err, ErrCSVTooWide) {
		return cli.Usagef("--format: %s", ErrCSVTooWide.Msg)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write export: %w", ferr)
	}
	progress.Done("%d rows written", n)
	if err != nil {
		return err
	}
	env.Logger().Info("export written", "format", *format, "count", n)
	return nil
}

// runAuditExport is `clinical audit export --format ndjson [--since RFC3339]`.
func runAuditExport(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("clinical audit export", flag.ContinueOnError)
	format := fs.String("format", "", "ndjson")
	since := fs.String("since", "", "only entries recorded at or after this RFC 3339 time")
	if err := cli.ParseFlags(fs, env.Args[2:]); err != nil {
		return err
	}
	if *format != "ndjson" {
		return cli.Usagef("--format: must be ndjson")
	}
	var from time.Time
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return cli.Usagef("--since: must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
		}
		from = t
	}
	cfg, pool, err := openCommand(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Entries stream from the database to stdout through one 64 KiB
	// buffer, so memory stays the same however long the log is.
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	n, err := newCommandAudit(pool, cfg.SecretKey, env.Logger()).ExportAudit(ctx, out, cliActor(), from)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write audit export: %w", ferr)
	}
	if err != nil {
		return err
	}
	env.Logger().Info("audit export written", "count", n)
	return nil
}

func runAuditVerify(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("clinical audit verify", flag.ContinueOnError)
	var heads []string
	fs.Func("head", "ID:MACHEX, a head `serve` logged (repeatable)", func(v string) error {
		heads = append(heads, v)
		return nil
	})
	if err := cli.ParseFlags(fs, env.Args[2:]); err != nil {
		return err
	}
	anchors := make([]Anchor, 0, len(heads))
	for _, h := range heads {
		an, err := ParseAnchor(h)
		if err != nil {
			return cli.Usagef("--head: %v", err)
		}
		anchors = append(anchors, an)
	}
	cfg, pool, err := openCommand(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	head, err := NewAudit(pool, cfg.SecretKey).Verify(ctx, anchors...)
	var brk *ChainBreak
	if errors.As(err, &brk) {
		fmt.Fprintln(env.Stdout, brk.Error())
		return brk
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "audit chain intact: %d entries", head.Entries)
	if head.ID != 0 {
		fmt.Fprintf(env.Stdout, ", head %s", head)
	}
	if len(anchors) > 0 {
		fmt.Fprintf(env.Stdout, ", holding the %d given heads", len(anchors))
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

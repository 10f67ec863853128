// Package transfer is the worker between Airlock's two stages: it holds the
// clinic's private keys, opens pending submissions from intake, keeps only the
// items carried to the clinic, writes them into the clinical database and only
// then deletes them from intake. It also expires what waited too long.
package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/ops"
	"github.com/airlockhq/airlock/shared/pg"
)

const usage = `transfer: Airlock's worker between intake and clinical.

Usage:
  transfer run                   the long-running worker: a pass on TRANSFER_SCHEDULE and soon after
                                 each new submission (LISTEN on intake), until SIGINT/SIGTERM
  transfer once                  move everything pending now, then exit (prints a JSON summary)
  transfer status                print the queue state as one JSON line (no passphrase needed)
  transfer check                 check the settings, unlock the keys, reach both databases with the
                                 configured logins and check their schema versions and grants; one
                                 line per check, exit 0 when all good, 1 on a problem, 2 on a bad setting
  transfer healthcheck [URL]     GET URL (default: /readyz on TRANSFER_METRICS_ADDR) with a 5s timeout;
                                 exit 0 on 200, else 1 (a container healthcheck without curl)
  transfer keys new --out FILE   make a clinic key pair under TRANSFER_PASSPHRASE; prints its public
                                 key string (refuses an existing FILE)
  transfer keys show FILE        print FILE's public key string (no passphrase needed)
  transfer keys list             print the key id and file of each TRANSFER_KEYS entry (no passphrase)
  transfer keys passwd FILE      change FILE's passphrase from TRANSFER_PASSPHRASE to
                                 TRANSFER_NEW_PASSPHRASE; the key, and the data sealed to it, stay
  transfer keys retire FILE      destroy FILE (overwrite, remove) once no row pending in intake is
                                 under its key id (needs INTAKE_DATABASE_URL)
  transfer keys row-key          print a new random row key
  transfer --version             print the version and commit
  transfer --help                show this help

Settings (environment; each secret X may be given as X_FILE instead):
  INTAKE_DATABASE_URL     intake database, a login granted airlock_intake_transfer
  CLINICAL_DATABASE_URL   clinical database, a login granted airlock_clinical_transfer
  TRANSFER_KEYS           comma-separated private key files
  TRANSFER_PASSPHRASE     passphrase of the key files (or _FILE, or _COMMAND: a command printing it;
                          with none set and a terminal attached, it is asked for)
  TRANSFER_NEW_PASSPHRASE keys passwd: the new passphrase (or _FILE, _COMMAND, or asked for twice)
  TRANSFER_ROW_KEYS       comma-separated row keys; any of them may have authenticated a row
  TRANSFER_RETENTION      how long an unmoved row may wait in intake (Go duration, default 720h);
                          older rows are expired: deleted, counted, never moved
  TRANSFER_QUARANTINE_RETENTION
                          how long a quarantined row is kept in clinical (Go duration, default 2160h)
  TRANSFER_BATCH_SIZE     rows per batch (default 500)
  TRANSFER_BATCH_BYTES    envelope bytes per batch (default 16MiB, 64KiB to 256MiB): memory follows
                          it, not the backlog; a larger row moves alone
  TRANSFER_FORMS_DIR      Questionnaire directory, as intake's (default: the built-in forms)
  TRANSFER_FORMS_BASE_URL  base URL naming forms without a url, as intake's INTAKE_FORMS_BASE_URL
  TRANSFER_SCHEDULE       run: cron spec of the scheduled passes (default @every 1m; also 5-field
                          cron such as */5 * * * *, or @hourly)
  TRANSFER_METRICS_ADDR   run: serve Prometheus /metrics, /livez and /readyz (/healthz: alias) on this
                          host:port (default: off; keep it off the public network). /readyz: both
                          databases answer, keys unlocked, a pass without error within three
                          scheduled intervals (at least 5m)
`

// Main is the transfer binary.
func Main() { cli.Main(Run) }

// Run runs one transfer command; tests call it in-process.
func Run(ctx context.Context, env cli.Env) error {
	if len(env.Args) == 0 {
		return cli.Usagef("transfer: missing command; see transfer --help")
	}
	switch env.Args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		return cli.ErrHelp
	case "once":
		return runOnce(ctx, env)
	case "run":
		return runWorker(ctx, env)
	case "--version", "version":
		fmt.Fprintln(env.Stdout, ops.Version("transfer"))
		return nil
	case "status":
		return runStatus(ctx, env)
	case "check":
		return runCheck(ctx, env)
	case "healthcheck":
		return ops.Healthcheck(ctx, env, "transfer", "TRANSFER_METRICS_ADDR")
	case "keys":
		return runKeys(ctx, env)
	default:
		return cli.Usagef("transfer: unknown command %q; see transfer --help", env.Args[0])
	}
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func runOnce(ctx context.Context, env cli.Env) error {
	_, m, closeFn, err := startMover(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	progress := env.Progress("transfer once")
	m.Progress = func(done, pending int) { progress.Update("%d of %d pending rows moved", done, pending) }
	sum, err := m.Pass(ctx)
	progress.Done("%d moved, %d quarantined", sum.Moved, sum.Quarantined)
	if err != nil {
		return err
	}
	logPass(m.Log, "once", sum, nil)
	return printJSON(env.Stdout, sum)
}

// startMover reads the settings, unlocks the keyring and connects to both
// databases: what `once` and `run` share. The keys are unlocked before any
// connection, so a wrong passphrase changes nothing.
func startMover(ctx context.Context, env cli.Env) (*Config, *Mover, func(), error) {
	cfg, err := LoadConfig(env.Getenv, true)
	if err != nil {
		return nil, nil, nil, err
	}
	ring, err := unlockKeyring(ctx, env, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	m, closeFn, err := newMover(ctx, cfg, ring, env)
	return cfg, m, closeFn, err
}

func newMover(ctx context.Context, cfg *Config, ring Keyring, env cli.Env) (*Mover, func(), error) {
	intake, err := pg.Connect(ctx, cfg.IntakeURL, 4)
	if err != nil {
		return nil, nil, fmt.Errorf("intake database: %w", err)
	}
	clinical, err := pg.Connect(ctx, cfg.ClinicalURL, 4)
	if err != nil {
		intake.Close()
		return nil, nil, fmt.Errorf("clinical database: %w", err)
	}
	closeFn := func() { intake.Close(); clinical.Close() }
	if err := pg.CheckSchema(ctx, intake, migrations.Intake()); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("intake database: %w", err)
	}
	if err := pg.CheckSchema(ctx, clinical, migrations.Clinical()); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("clinical database: %w", err)
	}
	return &Mover{
		Intake: intake, Clinical: clinical, Keys: ring, RowKeys: cfg.RowKeys, Forms: cfg.Forms,
		BatchSize: cfg.BatchSize, BatchBytes: cfg.BatchBytes, Retention: cfg.Retention, QuarantineRetention: cfg.QuarantineRetention,
		Log: env.Logger(), Now: time.Now,
	}, closeFn, nil
}

func runStatus(ctx context.Context, env cli.Env) error {
	cfg, err := LoadConfig(env.Getenv, false)
	if err != nil {
		return err
	}
	var ids []string
	if len(cfg.KeyFiles) > 0 {
		if ids, err = cfg.keyIDs(); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	intake, err := pg.Connect(ctx, cfg.IntakeURL, 2)
	if err != nil {
		return fmt.Errorf("intake database: %w", err)
	}
	defer intake.Close()
	clinical, err := pg.Connect(ctx, cfg.ClinicalURL, 2)
	if err != nil {
		return fmt.Errorf("clinical database: %w", err)
	}
	defer clinical.Close()
	s, err := ReadStatus(ctx, intake, clinical, ids)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, s)
}

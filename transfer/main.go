// Package transfer is the worker between Airlock's two stages: it holds the
// clinic's private keys, opens pending submissions from intake, keeps only the
// items carried to the clinic, writes them into the clinical database and only
// then deletes them from intake. It also expires what waited too long.
package transfer

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

const usage = `transfer: Airlock's worker between intake and clinical.

Usage:
  transfer run                   the long-running worker: a pass on TRANSFER_SCHEDULE and soon after
                                 each new submission (LISTEN on intake), until SIGINT/SIGTERM
  transfer once                  move everything pending now, then exit (prints a JSON summary)
  transfer status                print the queue state as one JSON line (no passphrase needed)
  transfer keys new --out FILE   make a clinic key pair; prints its public key string
  transfer keys show FILE        print FILE's public key string (no passphrase needed)
  transfer keys list             print the key ids of TRANSFER_KEYS
  transfer keys row-key          print a new random row key
  transfer --help                show this help

Settings (environment; each secret X may be given as X_FILE instead):
  INTAKE_DATABASE_URL     intake database, a login granted airlock_intake_transfer
  CLINICAL_DATABASE_URL   clinical database, a login granted airlock_clinical_transfer
  TRANSFER_KEYS           comma-separated private key files
  TRANSFER_PASSPHRASE     passphrase of the key files (or _FILE, or _COMMAND: a command printing it;
                          with none set and a terminal attached, it is asked for)
  TRANSFER_ROW_KEYS       comma-separated row keys; any of them may have authenticated a row
  TRANSFER_RETENTION      how long an unmoved row may wait in intake (Go duration, default 720h);
                          older rows are expired: deleted, counted, never moved
  TRANSFER_QUARANTINE_RETENTION
                          how long a quarantined row is kept in clinical (Go duration, default 2160h)
  TRANSFER_BATCH_SIZE     rows per batch (default 500)
  TRANSFER_FORMS_DIR      Questionnaire directory, as intake's (default: the built-in forms)
  TRANSFER_SCHEDULE       run: cron spec of the scheduled passes (default @every 1m; also 5-field
                          cron such as */5 * * * *, or @hourly)
  TRANSFER_METRICS_ADDR   run: serve Prometheus /metrics and /healthz on this host:port (default: off;
                          keep it off the public network)
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
	case "status":
		return runStatus(ctx, env)
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
	cfg, err := LoadConfig(env.Getenv, true)
	if err != nil {
		return err
	}
	// Unlock first: a wrong passphrase must change nothing.
	ring, err := unlockKeyring(ctx, env, cfg)
	if err != nil {
		return err
	}
	m, closeFn, err := newMover(ctx, cfg, ring, env)
	if err != nil {
		return err
	}
	defer closeFn()
	sum, err := m.Pass(ctx)
	if err != nil {
		return err
	}
	m.Log.Info("pass finished", "moved", sum.Moved, "quarantined", sum.Quarantined, "duplicates", sum.Duplicates,
		"expired", sum.Expired, "unknown_key", sum.UnknownKey, "seconds", sum.Seconds, "skipped", sum.Skipped)
	return printJSON(env.Stdout, sum)
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
		BatchSize: cfg.BatchSize, Retention: cfg.Retention, QuarantineRetention: cfg.QuarantineRetention,
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

func runKeys(ctx context.Context, env cli.Env) error {
	if len(env.Args) < 2 {
		return cli.Usagef("transfer keys: missing subcommand (new, show, list, row-key)")
	}
	sub, args := env.Args[1], env.Args[2:]
	switch sub {
	case "new":
		fs := flag.NewFlagSet("transfer keys new", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		out := fs.String("out", "", "key file to write")
		if err := fs.Parse(args); err != nil {
			return cli.Usagef("transfer keys new: %v", err)
		}
		if *out == "" || fs.NArg() > 0 {
			return cli.Usagef("--out: required (transfer keys new --out FILE)")
		}
		pass, err := readPassphrase(ctx, env, "TRANSFER_PASSPHRASE", true)
		if err != nil {
			return err
		}
		defer clear(pass)
		if err := keyfile.CheckPassphrase(pass); err != nil {
			return cli.Usagef("TRANSFER_PASSPHRASE: %v", err)
		}
		k, err := seal.GenerateKey()
		if err != nil {
			return err
		}
		f, err := keyfile.Wrap(k, pass, keyfile.DefaultParams)
		if err != nil {
			return err
		}
		if err := keyfile.WriteNew(*out, f, false); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.Public.String())
		return nil
	case "show":
		if len(args) != 1 {
			return cli.Usagef("transfer keys show: want exactly one FILE")
		}
		f, err := keyfile.Read(args[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, f.Public().String())
		return nil
	case "list":
		cfg := &Config{KeyFiles: config.SplitList(env.Getenv("TRANSFER_KEYS"))}
		if len(cfg.KeyFiles) == 0 {
			return cli.Usagef("TRANSFER_KEYS: required but not set")
		}
		// Check every file before printing anything: a listing followed by
		// exit 2 would mislead a script reading it.
		ids, err := cfg.keyIDs()
		if err != nil {
			return cli.Usagef("%v", err)
		}
		for i, path := range cfg.KeyFiles {
			fmt.Fprintf(env.Stdout, "%s\t%s\n", ids[i], path)
		}
		return nil
	case "row-key":
		k, err := seal.NewRowKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.String())
		return nil
	default:
		return cli.Usagef("transfer keys: unknown subcommand %q (new, show, list, row-key)", sub)
	}
}

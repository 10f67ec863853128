package transfer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

// keysSubcommands is named in every usage error of `transfer keys`.
const keysSubcommands = "new, show, list, passwd, retire, row-key"

// runKeys runs `transfer keys SUBCOMMAND`: the life of clinic key files
// (docs/keys.md) and of row keys.
func runKeys(ctx context.Context, env cli.Env) error {
	if len(env.Args) < 2 {
		return cli.Usagef("transfer keys: missing subcommand (%s)", keysSubcommands)
	}
	sub, args := env.Args[1], env.Args[2:]
	switch sub {
	case "new":
		return keysNew(ctx, env, args)
	case "show":
		return keysShow(env, args)
	case "list":
		return keysList(env, args)
	case "passwd":
		return keysPasswd(ctx, env, args)
	case "retire":
		return keysRetire(ctx, env, args)
	case "row-key":
		return keysRowKey(env, args)
	default:
		return cli.Usagef("transfer keys: unknown subcommand %q (%s)", sub, keysSubcommands)
	}
}

// keysNew writes a new key pair to --out under TRANSFER_PASSPHRASE and prints
// its public key string.
func keysNew(ctx context.Context, env cli.Env, args []string) error {
	flags := flag.NewFlagSet("transfer keys new", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	out := flags.String("out", "", "key file to write")
	if err := flags.Parse(args); err != nil {
		return cli.Usagef("transfer keys new: %v", err)
	}
	if *out == "" || flags.NArg() > 0 {
		return cli.Usagef("--out: required (transfer keys new --out FILE)")
	}
	// Refuse what WriteNew would refuse before asking for a passphrase and
	// paying for a key derivation. WriteNew still refuses atomically if the
	// file appears meanwhile.
	if _, err := os.Lstat(*out); err == nil {
		return cli.Usagef("--out: %s already exists; refusing to overwrite a key file", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return cli.Usagef("--out: %v", err)
	}
	if dir, err := os.Stat(filepath.Dir(*out)); err != nil || !dir.IsDir() {
		return cli.Usagef("--out: directory %s does not exist", filepath.Dir(*out))
	}
	pass, err := readPassphrase(ctx, env, "TRANSFER_PASSPHRASE", "Passphrase for the new key file", true)
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
	defer k.Wipe()
	f, err := keyfile.Wrap(k, pass, keyfile.DefaultParams)
	if err != nil {
		return err
	}
	if err := keyfile.WriteNew(*out, f, false); err != nil {
		return err
	}
	env.Logger().Info("key file written", "file", *out, "key_id", f.KeyID)
	_, err = fmt.Fprintln(env.Stdout, k.Public.String())
	return err
}

// keysShow prints a key file's public key string; no passphrase needed.
func keysShow(env cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("transfer keys show: want exactly one FILE")
	}
	f, err := readKeyFile(env.Logger(), args[0])
	if err != nil {
		return cli.Usagef("%v", err)
	}
	_, err = fmt.Fprintln(env.Stdout, f.Public().String())
	return err
}

// keysList prints the key id and file of each TRANSFER_KEYS entry, one per
// line; no passphrase needed.
func keysList(env cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("transfer keys list: takes no arguments (it lists TRANSFER_KEYS)")
	}
	paths := config.SplitList(env.Getenv("TRANSFER_KEYS"))
	if len(paths) == 0 {
		return cli.Usagef("TRANSFER_KEYS: required but not set")
	}
	// Check every file before printing anything: a listing followed by
	// exit 2 would mislead a script reading it.
	files, err := readKeyFiles(env.Logger(), paths)
	if err != nil {
		return err
	}
	for i, f := range files {
		if _, err := fmt.Fprintf(env.Stdout, "%s\t%s\n", f.KeyID, paths[i]); err != nil {
			return err
		}
	}
	return nil
}

// keysPasswd re-wraps FILE under a new passphrase (and the current
// DefaultParams). The private key, and so every row sealed to it, is
// untouched; the file is replaced atomically.
func keysPasswd(ctx context.Context, env cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("transfer keys passwd: want exactly one FILE")
	}
	path := args[0]
	log := env.Logger()
	f, err := readKeyFile(log, path)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if info, err := os.Lstat(path); err != nil || !info.Mode().IsRegular() {
		return cli.Usagef("%s is not a regular file (a symbolic link? name the file it points to)", path)
	}
	pass, err := readPassphrase(ctx, env, "TRANSFER_PASSPHRASE", "Current passphrase of "+path, false)
	if err != nil {
		return err
	}
	defer clear(pass)
	newPass, err := readPassphrase(ctx, env, "TRANSFER_NEW_PASSPHRASE", "New passphrase", true)
	if err != nil {
		return err
	}
	defer clear(newPass)
	if err := keyfile.CheckPassphrase(newPass); err != nil {
		return cli.Usagef("TRANSFER_NEW_PASSPHRASE: %v", err)
	}
	nf, err := keyfile.Rewrap(f, pass, newPass, keyfile.DefaultParams)
	if err != nil {
		return fmt.Errorf("unlock %s: %w", path, err)
	}
	if err := keyfile.Replace(path, nf); err != nil {
		return err
	}
	log.Info("key file passphrase changed", "file", path, "key_id", nf.KeyID)
	return nil
}

// keysRetire destroys FILE once no pending row in intake needs it: the end of
// a key's life (docs/keys.md). It refuses while the worker's keyring
// (TRANSFER_KEYS, when set) still lists the key, since the worker would then
// fail at its next start.
func keysRetire(ctx context.Context, env cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("transfer keys retire: want exactly one FILE")
	}
	path := args[0]
	log := env.Logger()
	if info, err := os.Lstat(path); err != nil {
		return cli.Usagef("%v", err)
	} else if !info.Mode().IsRegular() {
		return cli.Usagef("%s is not a regular file (a symbolic link? name the file it points to)", path)
	}
	f, err := readKeyFile(log, path)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	for _, listed := range config.SplitList(env.Getenv("TRANSFER_KEYS")) {
		if other, err := keyfile.Read(listed); err == nil && other.KeyID == f.KeyID {
			return cli.Usagef("TRANSFER_KEYS: still lists %s (key id %s); take it out of the worker's keyring first", listed, f.KeyID)
		}
	}
	r := config.NewReader(env.Getenv)
	url := r.DatabaseURL("INTAKE_DATABASE_URL")
	if err := r.Err(); err != nil {
		return err
	}
	intake, err := pg.Connect(ctx, url, 1)
	if err != nil {
		return fmt.Errorf("intake database: %w", err)
	}
	defer intake.Close()
	var pending int64
	if err := intake.QueryRow(ctx, `SELECT count(*) FROM submissions WHERE key_id = $1`, f.KeyID).Scan(&pending); err != nil {
		return fmt.Errorf("count pending submissions under key id %s: %w", f.KeyID, err)
	}
	if pending > 0 {
		return fmt.Errorf("retire %s: %d pending submissions in intake are sealed to key id %s and need it to move; "+
			"nothing destroyed (wait until transfer status shows none under it in pending_by_key)", path, pending, f.KeyID)
	}
	if err := keyfile.Destroy(path, f.KeyID); err != nil {
		return fmt.Errorf("retire %s: %w", path, err)
	}
	log.Info("key retired: file overwritten and removed; destroy every other copy and backup of it too",
		"file", path, "key_id", f.KeyID)
	return nil
}

// keysRowKey prints a new random row key.
func keysRowKey(env cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("transfer keys row-key: takes no arguments")
	}
	k, err := seal.NewRowKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, k.String())
	return err
}

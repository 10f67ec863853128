package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

// Keyring holds the unlocked private keys, by key id. Rows name their key id,
// so rotation is just holding old and new keys at once.
type Keyring map[seal.KeyID]*seal.PrivateKey

// unlockKeyring reads every TRANSFER_KEYS file and unlocks it with the one
// passphrase. A bad file or a key id listed twice is exit 2 naming
// TRANSFER_KEYS; a wrong passphrase names the file and changes nothing.
func unlockKeyring(ctx context.Context, env cli.Env, cfg *Config) (Keyring, error) {
	if len(cfg.KeyFiles) == 0 {
		return nil, cli.Usagef("TRANSFER_KEYS: required but not set (comma-separated key files from `transfer keys new`)")
	}
	log := env.Logger()
	files, err := readKeyFiles(log, cfg.KeyFiles)
	if err != nil {
		return nil, err
	}
	pass, err := readPassphrase(ctx, env, "TRANSFER_PASSPHRASE", "Passphrase of TRANSFER_KEYS", false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	start := time.Now()
	ring := Keyring{}
	for i, f := range files {
		k, err := f.Unlock(pass)
		if err != nil {
			for _, k := range ring {
				k.Wipe()
			}
			return nil, fmt.Errorf("unlock %s: %w", cfg.KeyFiles[i], err)
		}
		ring[k.Public.ID] = k
	}
	log.Info("keyring unlocked", "keys", len(ring), "seconds", time.Since(start).Seconds())
	return ring, nil
}

// readKeyFiles reads the key files of TRANSFER_KEYS without any passphrase.
// Each must be an Airlock key file and no key id may be listed twice (two
// copies of one key file are a mistake worth stopping for): either is a
// usage error naming TRANSFER_KEYS.
func readKeyFiles(log *slog.Logger, paths []string) ([]*keyfile.File, error) {
	files := make([]*keyfile.File, 0, len(paths))
	seen := map[string]string{} // key id -> file
	for _, path := range paths {
		f, err := readKeyFile(log, path)
		if err != nil {
			return nil, cli.Usagef("TRANSFER_KEYS: %v", err)
		}
		if other, dup := seen[f.KeyID]; dup {
			return nil, cli.Usagef("TRANSFER_KEYS: %s and %s hold the same key id %s", other, path, f.KeyID)
		}
		seen[f.KeyID] = path
		files = append(files, f)
	}
	return files, nil
}

// readKeyFile reads one key file without unlocking it, and logs a warning
// when its permissions let anyone but its owner at it: the passphrase is then
// the key's only protection.
func readKeyFile(log *slog.Logger, path string) (*keyfile.File, error) {
	f, err := keyfile.Read(path)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("key file is readable or writable by group or others; chmod 600 it (and check its directory)",
			"file", path, "mode", fmt.Sprintf("%04o", info.Mode().Perm()), "key_id", f.KeyID)
	}
	return f, nil
}

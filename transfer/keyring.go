package transfer

import (
	"context"
	"fmt"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

// Keyring holds the unlocked private keys, by key id. Rows name their key id,
// so rotation is just holding old and new keys at once.
type Keyring map[seal.KeyID]*seal.PrivateKey

// unlockKeyring reads every TRANSFER_KEYS file and unlocks it with the one
// passphrase. A wrong passphrase names the file and changes nothing.
func unlockKeyring(ctx context.Context, env cli.Env, cfg *Config) (Keyring, error) {
	if len(cfg.KeyFiles) == 0 {
		return nil, cli.Usagef("TRANSFER_KEYS: required but not set (comma-separated key files from `transfer keys new`)")
	}
	if _, err := cfg.keyIDs(); err != nil {
		return nil, cli.Usagef("%v", err)
	}
	pass, err := readPassphrase(ctx, env, "TRANSFER_PASSPHRASE", false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	ring := Keyring{}
	for _, path := range cfg.KeyFiles {
		f, err := keyfile.Read(path)
		if err != nil {
			return nil, err
		}
		k, err := f.Unlock(pass)
		if err != nil {
			return nil, fmt.Errorf("unlock %s: %w", path, err)
		}
		ring[k.Public.ID] = k
	}
	return ring, nil
}

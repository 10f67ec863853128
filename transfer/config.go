package transfer

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer/keyfile"
)

// Config is what the worker commands read from the environment. The
// passphrase is not here: it is read only when a key is unlocked.
type Config struct {
	IntakeURL   string `json:"-"`
	ClinicalURL string `json:"-"`
	KeyFiles    []string
	RowKeys     []seal.RowKey `json:"-"`
	// Schedule is the cron spec of `transfer run`'s passes; NOTIFY wake-ups
	// come on top of it.
	Schedule string
	// Retention is how long an unmoved row may wait in intake before it is
	// expired (deleted, counted, never moved).
	Retention time.Duration
	// QuarantineRetention is how long a quarantined row is kept in clinical
	// for investigation before transfer deletes it (counted).
	QuarantineRetention time.Duration
	BatchSize           int
	// BatchBytes bounds the envelope bytes read into one batch.
	BatchBytes int64
	Forms      *forms.Registry
	// MetricsAddr is where `transfer run` serves Prometheus metrics; empty
	// (the default) serves none.
	MetricsAddr string
}

// DefaultQuarantineRetention is TRANSFER_QUARANTINE_RETENTION's default:
// 90 days, time to notice and investigate a forged or broken row.
const DefaultQuarantineRetention = 2160 * time.Hour

// LoadConfig reads the settings; needRowKeys is false for `status`, which
// opens nothing.
func LoadConfig(getenv func(string) string, needRowKeys bool) (*Config, error) {
	r := config.NewReader(getenv)
	c := &Config{
		IntakeURL:           r.DatabaseURL("INTAKE_DATABASE_URL"),
		ClinicalURL:         r.DatabaseURL("CLINICAL_DATABASE_URL"),
		KeyFiles:            r.List("TRANSFER_KEYS"),
		Schedule:            r.String("TRANSFER_SCHEDULE", "@every 1m"),
		Retention:           r.Duration("TRANSFER_RETENTION", 720*time.Hour),
		QuarantineRetention: r.Duration("TRANSFER_QUARANTINE_RETENTION", DefaultQuarantineRetention),
		BatchSize:           r.Int("TRANSFER_BATCH_SIZE", 500, 1, 100_000),
	}
	c.BatchBytes = r.Bytes("TRANSFER_BATCH_BYTES", DefaultBatchBytes)
	if c.BatchBytes < 64<<10 || c.BatchBytes > 256<<20 {
		r.Fail("TRANSFER_BATCH_BYTES", "must be from 64KiB to 256MiB")
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		r.Fail("TRANSFER_SCHEDULE", "must be a cron spec such as @every 1m, @hourly or */5 * * * *")
	}
	if r.String("TRANSFER_METRICS_ADDR", "") != "" {
		c.MetricsAddr = r.Addr("TRANSFER_METRICS_ADDR", "")
	}
	for i, s := range r.SecretList("TRANSFER_ROW_KEYS", needRowKeys) {
		k, err := seal.ParseRowKey(s)
		if err != nil {
			r.Fail("TRANSFER_ROW_KEYS", "entry %d: %v", i+1, err)
			break
		}
		c.RowKeys = append(c.RowKeys, k)
	}
	c.Forms = r.Forms("TRANSFER_FORMS_DIR")
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// keyIDs reads the key ids of TRANSFER_KEYS without any passphrase.
func (c *Config) keyIDs() ([]string, error) {
	var ids []string
	seen := map[string]string{}
	for _, path := range c.KeyFiles {
		f, err := keyfile.Read(path)
		if err != nil {
			return nil, fmt.Errorf("TRANSFER_KEYS: %w", err)
		}
		if other, dup := seen[f.KeyID]; dup {
			return nil, fmt.Errorf("TRANSFER_KEYS: %s and %s hold the same key id %s", other, path, f.KeyID)
		}
		seen[f.KeyID] = path
		ids = append(ids, f.KeyID)
	}
	return ids, nil
}

package intake

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store writes sealed rows. Its login may only INSERT: there is deliberately no
// method to read a submission back.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore wraps a pool logged in as a member of airlock_intake_writer.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// InsertSubmission stores one sealed row. The insert trigger sends an empty
// NOTIFY that wakes transfer.
func (s *Store) InsertSubmission(ctx context.Context, r *SealedRow) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO submissions (id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7)`,
		r.SubmissionID, r.FormID, r.FormVersion, r.KeyID, r.ReceivedAt, r.Envelope, r.MAC)
	if err != nil {
		return fmt.Errorf("insert submission: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

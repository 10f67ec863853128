package clinical

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SearchTTL is how long a saved search can be shown again (Back, reload,
// the next page) before the search has to be made again.
const SearchTTL = time.Hour

// searchIDLen is the size of a search id: 256 random bits.
const searchIDLen = 32

// SavedSearches keeps a search made by POST for post/redirect/get: the
// page that shows its results is GET /submissions?search=<id>, where the id
// is opaque, random, works only in the session that made it and expires
// (migration 000110). The search text, which may name a patient, never goes
// in a URL and is stored only sealed.
type SavedSearches struct {
	pool *pgxpool.Pool
	aead cipher.AEAD
	now  func() time.Time
}

// NewSavedSearches derives the sealing key from the clinical secret key.
func NewSavedSearches(pool *pgxpool.Pool, secret SecretKey, now func() time.Time) *SavedSearches {
	block, err := aes.NewCipher(secret.derive("saved search v1"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &SavedSearches{pool: pool, aead: aead, now: now}
}

// errSearchGone is what any unusable search id gets: expired, never made,
// or another session's. The three are not told apart.
var errSearchGone = &Error{Code: CodeNotFound, Msg: "This search has expired or belongs to another login. Search again."}

// searchAD binds a sealed search to its session and id, so a row moved to
// another session or id does not open.
func searchAD(sessionHash, idHash []byte) []byte {
	return append(append([]byte("search\x00"), sessionHash...), idHash...)
}

// Save stores p for the session and returns its new id.
func (s *SavedSearches) Save(ctx context.Context, sessionHash []byte, p listParams) (string, error) {
	var id [searchIDLen]byte
	rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	idHash := sha256.Sum256(id[:])
	plain, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode search: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, searchAD(sessionHash, idHash[:]))
	clear(plain)
	now := s.now()
	// Expired searches go as new ones come: the table stays small without
	// a job of its own.
	if _, err := s.pool.Exec(ctx, `DELETE FROM saved_searches WHERE expires_at <= $1`, now); err != nil {
		return "", fmt.Errorf("prune saved searches: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO saved_searches (id_hash, session_hash, sealed, expires_at) VALUES ($1, $2, $3, $4)`,
		idHash[:], sessionHash, sealed, now.Add(SearchTTL)); err != nil {
		return "", fmt.Errorf("save search: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(id[:]), nil
}

// Load returns the search id names, if it belongs to the session and has
// not expired; errSearchGone otherwise.
func (s *SavedSearches) Load(ctx context.Context, sessionHash []byte, id string) (listParams, error) {
	var p listParams
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != searchIDLen {
		return p, errSearchGone
	}
	idHash := sha256.Sum256(raw)
	var sealed []byte
	err = s.pool.QueryRow(ctx, `SELECT sealed FROM saved_searches WHERE id_hash = $1 AND session_hash = $2 AND expires_at > $3`,
		idHash[:], sessionHash, s.now()).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, errSearchGone
	}
	if err != nil {
		return p, fmt.Errorf("load saved search: %w", err)
	}
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return p, errSearchGone
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], searchAD(sessionHash, idHash[:]))
	if err != nil {
		return p, errSearchGone
	}
	defer clear(plain)
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, errSearchGone
	}
	return p, nil
}

// Package keyfile stores a clinic's X25519 private key encrypted under a
// passphrase. Format version 1 is a JSON document:
//
//	{
//	  "format": "airlock-private-key", "version": 1,
//	  "key_id": "<16 hex>", "public_key": "airlock-pk1-...",
//	  "created": "<RFC 3339>",
//	  "kdf": {"name": "argon2id", "time": 4, "memory_kib": 131072, "threads": 2, "salt": "<base64, 16 bytes>"},
//	  "cipher": "nacl-secretbox", "nonce": "<base64, 24 bytes>",
//	  "ciphertext": "<base64 of secretbox(private key, nonce, argon2id(passphrase, salt))>"
//	}
//
// The key id and public key are in clear so they can be read without the
// passphrase; after decryption the public key is derived again and must match,
// so an edited header is refused. Changing the passphrase re-wraps the same
// private key: data sealed to it stays readable.
package keyfile

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/airlockhq/airlock/shared/seal"
)

const (
	formatName = "airlock-private-key"
	version1   = 1
	cipherName = "nacl-secretbox"
	kdfName    = "argon2id"
	// MinPassphrase is the shortest passphrase accepted for a new key file.
	MinPassphrase = 12
)

// Params are the argon2id cost parameters stored in a key file.
type Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultParams are the cost of new key files: one unlock takes about half a
// second and 128 MiB on the 2-core development server (AMD EPYC), measured
// as a fresh `transfer once` process; see docs/keys.md for the figures and
// how to measure. Memory is the costly resource for an attacker's GPUs, so
// it is raised before the passes. Existing files keep the cost stored in
// them; `transfer keys passwd` re-wraps a file at the current cost.
var DefaultParams = Params{Time: 4, MemoryKiB: 128 << 10, Threads: 2}

// check bounds the cost parameters: argon2 panics below the minimums, and
// above the maximums a crafted file could exhaust the machine.
func (p Params) check() error {
	if p.Time < 1 || p.Time > 64 || p.MemoryKiB < 8 || p.MemoryKiB > 4<<20 || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range (time 1..64, memory 8 KiB..4 GiB, threads 1..255): %+v", p)
	}
	return nil
}

// File is a parsed key file; Unlock needs the passphrase.
type File struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	KeyID      string    `json:"key_id"`
	PublicKey  string    `json:"public_key"`
	Created    time.Time `json:"created"`
	KDF        kdf       `json:"kdf"`
	Cipher     string    `json:"cipher"`
	Nonce      []byte    `json:"nonce"`
	Ciphertext []byte    `json:"ciphertext"`

	public seal.PublicKey
}

type kdf struct {
	Name string `json:"name"`
	Params
	Salt []byte `json:"salt"`
}

// Errors callers tell apart.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase (or a corrupted key file)")
	ErrShortPassphrase = fmt.Errorf("passphrase must be at least %d characters", MinPassphrase)
)

// Public is the key file's public key, readable without the passphrase.
func (f *File) Public() seal.PublicKey { return f.public }

// Parse reads a key file without unlocking it. Cost parameters are bounded so
// a crafted file cannot make unlocking exhaust the machine.
func Parse(data []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, errors.New("not an Airlock key file (malformed JSON)")
	}
	if f.Format != formatName {
		return nil, errors.New("not an Airlock key file")
	}
	if f.Version != version1 {
		return nil, fmt.Errorf("key file version %d is not supported by this binary", f.Version)
	}
	if f.KDF.Name != kdfName || f.Cipher != cipherName {
		return nil, errors.New("key file names an unsupported kdf or cipher")
	}
	if err := f.KDF.Params.check(); err != nil || len(f.KDF.Salt) < 16 {
		return nil, errors.New("key file kdf parameters out of range")
	}
	if len(f.Nonce) != 24 || len(f.Ciphertext) != 32+secretbox.Overhead {
		return nil, errors.New("key file is truncated or corrupted")
	}
	pub, err := seal.ParsePublicKey(f.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("key file public key: %w", err)
	}
	if pub.ID.String() != f.KeyID {
		return nil, errors.New("key file key_id does not match its public key")
	}
	f.public = pub
	return &f, nil
}

// Read parses the key file at path without unlocking it.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func deriveKey(passphrase []byte, k kdf) *[32]byte {
	var key [32]byte
	copy(key[:], argon2.IDKey(passphrase, k.Salt, k.Time, k.MemoryKiB, k.Threads, 32))
	return &key
}

// Unlock decrypts the private key.
func (f *File) Unlock(passphrase []byte) (*seal.PrivateKey, error) {
	if err := f.KDF.Params.check(); err != nil { // a File not made by Parse or Wrap
		return nil, err
	}
	key := deriveKey(passphrase, f.KDF)
	var nonce [24]byte
	copy(nonce[:], f.Nonce)
	raw, ok := secretbox.Open(nil, f.Ciphertext, &nonce, key)
	clear(key[:])
	if !ok {
		return nil, ErrWrongPassphrase
	}
	var priv [32]byte
	copy(priv[:], raw)
	clear(raw)
	k, err := seal.NewPrivateKey(priv)
	clear(priv[:])
	if err != nil {
		return nil, err
	}
	if k.Public != f.public {
		return nil, errors.New("key file public key does not match its private key")
	}
	return k, nil
}

// CheckPassphrase enforces the length policy for new passphrases.
func CheckPassphrase(p []byte) error {
	if utf8.RuneCount(p) < MinPassphrase {
		return ErrShortPassphrase
	}
	return nil
}

// Wrap encrypts k under passphrase into a new key file.
func Wrap(k *seal.PrivateKey, passphrase []byte, p Params) (*File, error) {
	if err := CheckPassphrase(passphrase); err != nil {
		return nil, err
	}
	// Refuse here what Parse would refuse later: a key file nobody can read
	// back is worse than no key file.
	if err := p.check(); err != nil {
		return nil, err
	}
	f := &File{
		Format: formatName, Version: version1,
		KeyID: k.Public.ID.String(), PublicKey: k.Public.String(),
		Created: time.Now().UTC().Truncate(time.Second),
		KDF:     kdf{Name: kdfName, Params: p, Salt: make([]byte, 16)},
		Cipher:  cipherName, Nonce: make([]byte, 24),
		public: k.Public,
	}
	if _, err := io.ReadFull(rand.Reader, f.KDF.Salt); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand.Reader, f.Nonce); err != nil {
		return nil, err
	}
	key := deriveKey(passphrase, f.KDF)
	var nonce [24]byte
	copy(nonce[:], f.Nonce)
	raw := k.Bytes()
	f.Ciphertext = secretbox.Seal(nil, raw[:], &nonce, key)
	clear(raw[:])
	clear(key[:])
	return f, nil
}

// Marshal is the file's bytes.
func (f *File) Marshal() []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(err) // every field is a plain value
	}
	return append(b, '\n')
}

// WriteNew writes f to path with mode 0600, atomically (temporary file, fsync,
// rename), refusing to replace an existing file unless replace is set.
func WriteNew(path string, f *File, replace bool) error {
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite a key file", path)
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".airlock-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(f.Marshal()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if !replace {
		// Link fails if path appeared meanwhile, unlike rename.
		if err := os.Link(tmp.Name(), path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

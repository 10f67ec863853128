package keyfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
)

// cheap are argon2id parameters for tests: within Parse's bounds, and fast.
var cheap = Params{Time: 1, MemoryKiB: 8192, Threads: 1}

const testPassphrase = "a long enough test passphrase"

func newKey(t *testing.T) *seal.PrivateKey {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wrap(t *testing.T, k *seal.PrivateKey) *File {
	t.Helper()
	f, err := Wrap(k, []byte(testPassphrase), cheap)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWrapUnlockRoundTrip(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	f := wrap(t, k)
	if f.KeyID != k.Public.ID.String() || f.PublicKey != k.Public.String() || f.Public() != k.Public {
		t.Fatalf("wrapped file names %s / %s, want %s", f.KeyID, f.PublicKey, k.Public)
	}
	if f.KDF.Params != cheap || len(f.KDF.Salt) != 16 || len(f.Nonce) != 24 || f.Created.IsZero() {
		t.Fatalf("wrapped file kdf %+v, nonce %d bytes, created %v", f.KDF, len(f.Nonce), f.Created)
	}
	raw := k.Bytes()
	if bytes.Contains(f.Marshal(), raw[:]) || bytes.Contains(f.Marshal(), []byte(base64.StdEncoding.EncodeToString(raw[:]))) {
		t.Fatal("key file holds the private key in clear")
	}

	// Marshal then Parse gives back the same file, which unlocks to the same key.
	parsed, err := Parse(f.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v", err)
	}
	if !bytes.Equal(parsed.Marshal(), f.Marshal()) {
		t.Fatalf("Marshal/Parse round trip changed the file:\n%s\n%s", f.Marshal(), parsed.Marshal())
	}
	for name, file := range map[string]*File{"wrapped": f, "parsed": parsed} {
		got, err := file.Unlock([]byte(testPassphrase))
		if err != nil {
			t.Fatalf("%s: Unlock: %v", name, err)
		}
		if got.Bytes() != k.Bytes() || got.Public != k.Public {
			t.Fatalf("%s: Unlock gave another key", name)
		}
	}

	// A second wrap of the same key uses a fresh salt and nonce.
	again := wrap(t, k)
	if bytes.Equal(again.KDF.Salt, f.KDF.Salt) || bytes.Equal(again.Nonce, f.Nonce) || bytes.Equal(again.Ciphertext, f.Ciphertext) {
		t.Fatal("two wraps share a salt, nonce or ciphertext")
	}
}

// TestChangePassphrase: re-wrapping keeps the private key, so data sealed to
// it stays readable; the old passphrase no longer opens the new file.
func TestChangePassphrase(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	env, err := seal.Seal(k.Public, []byte("sealed before the change"))
	if err != nil {
		t.Fatal(err)
	}
	unlocked, err := wrap(t, k).Unlock([]byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	const newPassphrase = "another passphrase, also long"
	f2, err := Wrap(unlocked, []byte(newPassphrase), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Unlock([]byte(testPassphrase)); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase on the new file: %v, want ErrWrongPassphrase", err)
	}
	k2, err := f2.Unlock([]byte(newPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	e, err := seal.ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := k2.Open(e); err != nil || string(plain) != "sealed before the change" {
		t.Fatalf("open after the change: %q, %v", plain, err)
	}
}

// TestDefaultParams runs the production cost once.
func TestDefaultParams(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	f, err := Wrap(k, []byte(testPassphrase), DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(f.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.KDF.Params != DefaultParams {
		t.Fatalf("params %+v, want %+v", parsed.KDF.Params, DefaultParams)
	}
	got, err := parsed.Unlock([]byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bytes() != k.Bytes() {
		t.Fatal("Unlock gave another key")
	}
}

func TestUnlockWrongPassphrase(t *testing.T) {
	t.Parallel()
	f := wrap(t, newKey(t))
	for _, p := range []string{"", testPassphrase + " ", testPassphrase[1:], strings.ToUpper(testPassphrase), " " + testPassphrase} {
		k, err := f.Unlock([]byte(p))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("Unlock(%q): %v, want ErrWrongPassphrase", p, err)
		}
		if k != nil {
			t.Errorf("Unlock(%q) returned a key with its error", p)
		}
	}
}

func TestWrapDenials(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	tests := []struct {
		name       string
		passphrase string
		params     Params
		want       error // nil: any error
	}{
		{"empty passphrase", "", cheap, ErrShortPassphrase},
		{"11 characters", "abcdefghijk", cheap, ErrShortPassphrase},
		// 11 characters in 22 bytes: the policy counts characters, not bytes.
		{"11 two-byte characters", strings.Repeat("é", 11), cheap, ErrShortPassphrase},
		{"zero params", testPassphrase, Params{}, nil},
		{"time 0", testPassphrase, Params{Time: 0, MemoryKiB: 8192, Threads: 1}, nil},
		{"time 65", testPassphrase, Params{Time: 65, MemoryKiB: 8192, Threads: 1}, nil},
		{"threads 0", testPassphrase, Params{Time: 1, MemoryKiB: 8192, Threads: 0}, nil},
		{"memory 7 KiB", testPassphrase, Params{Time: 1, MemoryKiB: 7, Threads: 1}, nil},
		{"memory over 4 GiB", testPassphrase, Params{Time: 1, MemoryKiB: 4<<20 + 1, Threads: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Wrap(k, []byte(tt.passphrase), tt.params)
			if err == nil {
				t.Fatalf("Wrap accepted: %s", f.Marshal())
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Wrap: %v, want %v", err, tt.want)
			}
		})
	}
	// The shortest accepted passphrase, in multi-byte characters.
	if _, err := Wrap(k, []byte(strings.Repeat("é", MinPassphrase)), cheap); err != nil {
		t.Fatalf("Wrap with %d characters: %v", MinPassphrase, err)
	}
	if err := CheckPassphrase([]byte(strings.Repeat("x", MinPassphrase))); err != nil {
		t.Fatalf("CheckPassphrase of %d characters: %v", MinPassphrase, err)
	}
}

// edit returns data (a key file) with one change made to its JSON.
func edit(t *testing.T, data []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kdfOf(m map[string]any) map[string]any { return m["kdf"].(map[string]any) }

// b64Edit changes the base64 field at m[key] through f.
func b64Edit(t *testing.T, m map[string]any, key string, f func([]byte) []byte) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m[key].(string))
	if err != nil {
		t.Fatal(err)
	}
	m[key] = base64.StdEncoding.EncodeToString(f(b))
}

func TestParseDenials(t *testing.T) {
	t.Parallel()
	good := wrap(t, newKey(t)).Marshal()
	other := newKey(t).Public
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "malformed JSON"},
		{"not JSON", []byte("airlock-pk1-"), "malformed JSON"},
		{"JSON array", []byte("[]"), "malformed JSON"},
		{"JSON object of nothing", []byte("{}"), "not an Airlock key file"},
		{"truncated JSON", good[:len(good)/2], "malformed JSON"},
		{"created not a time", edit(t, good, func(m map[string]any) { m["created"] = "yesterday" }), "malformed JSON"},
		{"format", edit(t, good, func(m map[string]any) { m["format"] = "airlock-public-key" }), "not an Airlock key file"},
		{"version 2", edit(t, good, func(m map[string]any) { m["version"] = 2 }), "version 2"},
		{"version 0", edit(t, good, func(m map[string]any) { m["version"] = 0 }), "version 0"},
		{"kdf name", edit(t, good, func(m map[string]any) { kdfOf(m)["name"] = "argon2i" }), "unsupported kdf or cipher"},
		{"cipher", edit(t, good, func(m map[string]any) { m["cipher"] = "aes-gcm" }), "unsupported kdf or cipher"},
		{"kdf time 0", edit(t, good, func(m map[string]any) { kdfOf(m)["time"] = 0 }), "out of range"},
		{"kdf time 65", edit(t, good, func(m map[string]any) { kdfOf(m)["time"] = 65 }), "out of range"},
		{"kdf time huge", edit(t, good, func(m map[string]any) { kdfOf(m)["time"] = 1 << 31 }), "out of range"},
		{"kdf time overflows uint32", edit(t, good, func(m map[string]any) { kdfOf(m)["time"] = 1 << 32 }), "malformed JSON"},
		{"kdf memory 7 KiB", edit(t, good, func(m map[string]any) { kdfOf(m)["memory_kib"] = 7 }), "out of range"},
		{"kdf memory over 4 GiB", edit(t, good, func(m map[string]any) { kdfOf(m)["memory_kib"] = 4<<20 + 1 }), "out of range"},
		{"kdf threads 0", edit(t, good, func(m map[string]any) { kdfOf(m)["threads"] = 0 }), "out of range"},
		{"kdf threads negative", edit(t, good, func(m map[string]any) { kdfOf(m)["threads"] = -1 }), "malformed JSON"},
		{"kdf params missing", edit(t, good, func(m map[string]any) { m["kdf"] = map[string]any{"name": "argon2id", "salt": kdfOf(m)["salt"]} }), "out of range"},
		{"salt 15 bytes", edit(t, good, func(m map[string]any) { b64Edit(t, kdfOf(m), "salt", func(b []byte) []byte { return b[:15] }) }), "out of range"},
		{"salt missing", edit(t, good, func(m map[string]any) { delete(kdfOf(m), "salt") }), "out of range"},
		{"salt not base64", edit(t, good, func(m map[string]any) { kdfOf(m)["salt"] = "!!" }), "malformed JSON"},
		{"nonce truncated", edit(t, good, func(m map[string]any) { b64Edit(t, m, "nonce", func(b []byte) []byte { return b[:23] }) }), "truncated or corrupted"},
		{"nonce extended", edit(t, good, func(m map[string]any) { b64Edit(t, m, "nonce", func(b []byte) []byte { return append(b, 0) }) }), "truncated or corrupted"},
		{"nonce missing", edit(t, good, func(m map[string]any) { delete(m, "nonce") }), "truncated or corrupted"},
		{"ciphertext truncated", edit(t, good, func(m map[string]any) { b64Edit(t, m, "ciphertext", func(b []byte) []byte { return b[:len(b)-1] }) }), "truncated or corrupted"},
		{"ciphertext without its tag", edit(t, good, func(m map[string]any) { b64Edit(t, m, "ciphertext", func(b []byte) []byte { return b[16:] }) }), "truncated or corrupted"},
		{"ciphertext extended", edit(t, good, func(m map[string]any) { b64Edit(t, m, "ciphertext", func(b []byte) []byte { return append(b, 0) }) }), "truncated or corrupted"},
		{"ciphertext missing", edit(t, good, func(m map[string]any) { delete(m, "ciphertext") }), "truncated or corrupted"},
		{"public key one character changed", edit(t, good, func(m map[string]any) {
			s := m["public_key"].(string)
			c := "a"
			if s[20] == 'a' {
				c = "b"
			}
			m["public_key"] = s[:20] + c + s[21:]
		}), "checksum"},
		{"public key truncated", edit(t, good, func(m map[string]any) { s := m["public_key"].(string); m["public_key"] = s[:len(s)-1] }), "public key"},
		{"public key missing", edit(t, good, func(m map[string]any) { delete(m, "public_key") }), "public key"},
		{"public key of another key", edit(t, good, func(m map[string]any) { m["public_key"] = other.String() }), "key_id does not match"},
		{"key id of another key", edit(t, good, func(m map[string]any) { m["key_id"] = other.ID.String() }), "key_id does not match"},
		{"key id in upper case", edit(t, good, func(m map[string]any) { m["key_id"] = strings.ToUpper(m["key_id"].(string)) }), "key_id does not match"},
		{"key id missing", edit(t, good, func(m map[string]any) { delete(m, "key_id") }), "key_id does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse accepted %s", tt.data)
			}
			if f != nil {
				t.Fatal("Parse returned a file with its error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("the unedited file: %v", err)
	}
}

// TestUnlockDenials: edits Parse cannot see are caught when unlocking.
func TestUnlockDenials(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	good := wrap(t, k).Marshal()
	other := newKey(t).Public
	flipFirst := func(b []byte) []byte { b[0] ^= 1; return b }
	tests := []struct {
		name string
		data []byte
		want error // nil: any error but ErrWrongPassphrase
	}{
		{"ciphertext bit flipped", edit(t, good, func(m map[string]any) { b64Edit(t, m, "ciphertext", flipFirst) }), ErrWrongPassphrase},
		{"nonce bit flipped", edit(t, good, func(m map[string]any) { b64Edit(t, m, "nonce", flipFirst) }), ErrWrongPassphrase},
		{"salt bit flipped", edit(t, good, func(m map[string]any) { b64Edit(t, kdfOf(m), "salt", flipFirst) }), ErrWrongPassphrase},
		{"salt extended", edit(t, good, func(m map[string]any) { b64Edit(t, kdfOf(m), "salt", func(b []byte) []byte { return append(b, 0) }) }), ErrWrongPassphrase},
		{"kdf time raised", edit(t, good, func(m map[string]any) { kdfOf(m)["time"] = 2 }), ErrWrongPassphrase},
		{"kdf memory lowered", edit(t, good, func(m map[string]any) { kdfOf(m)["memory_kib"] = 4096 }), ErrWrongPassphrase},
		{"kdf threads raised", edit(t, good, func(m map[string]any) { kdfOf(m)["threads"] = 2 }), ErrWrongPassphrase},
		// Both header fields swapped consistently for another key: Parse
		// cannot tell, Unlock derives the real public key and refuses.
		{"public key and key id of another key", edit(t, good, func(m map[string]any) {
			m["public_key"] = other.String()
			m["key_id"] = other.ID.String()
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse(tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := f.Unlock([]byte(testPassphrase))
			if err == nil {
				t.Fatalf("Unlock accepted the edited file (key %s)", got.Public)
			}
			if got != nil {
				t.Fatal("Unlock returned a key with its error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Unlock: %v, want %v", err, tt.want)
			}
			if tt.want == nil && (errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "does not match")) {
				t.Fatalf("Unlock: %v, want a public key mismatch", err)
			}
		})
	}
}

// TestUnlockUnparsedFile: a File not made by Parse or Wrap is refused, not a
// panic inside argon2.
func TestUnlockUnparsedFile(t *testing.T) {
	t.Parallel()
	if _, err := new(File).Unlock([]byte(testPassphrase)); err == nil {
		t.Fatal("Unlock of a zero File succeeded")
	}
}

func TestWriteNew(t *testing.T) {
	t.Parallel()
	f := wrap(t, newKey(t))
	other := wrap(t, newKey(t))

	t.Run("new file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "clinic.key")
		if err := WriteNew(path, f, false); err != nil {
			t.Fatal(err)
		}
		assertOnly(t, dir, "clinic.key")
		assertMode0600(t, path)
		read, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if read.Public() != f.Public() || !bytes.Equal(read.Marshal(), f.Marshal()) {
			t.Fatal("Read gives another file than was written")
		}
	})

	t.Run("refuses to overwrite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "clinic.key")
		if err := WriteNew(path, f, false); err != nil {
			t.Fatal(err)
		}
		err := WriteNew(path, other, false)
		if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
			t.Fatalf("second WriteNew: %v, want a refusal", err)
		}
		assertOnly(t, dir, "clinic.key")
		if got, _ := os.ReadFile(path); !bytes.Equal(got, f.Marshal()) {
			t.Fatal("the refused write changed the existing file")
		}
	})

	t.Run("refuses a dangling symlink", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "clinic.key")
		target := filepath.Join(dir, "elsewhere")
		if err := os.Symlink(target, path); err != nil {
			t.Skip(err)
		}
		if err := WriteNew(path, f, false); err == nil {
			t.Fatal("WriteNew wrote through a symlink")
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("WriteNew created the symlink's target")
		}
		assertOnly(t, dir, "clinic.key")
	})

	t.Run("replace", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "clinic.key")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(path, other, true); err != nil {
			t.Fatal(err)
		}
		assertOnly(t, dir, "clinic.key")
		assertMode0600(t, path)
		if got, _ := os.ReadFile(path); !bytes.Equal(got, other.Marshal()) {
			t.Fatal("replace did not write the new file")
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := WriteNew(filepath.Join(dir, "no", "clinic.key"), f, false); err == nil {
			t.Fatal("WriteNew into a missing directory succeeded")
		}
		assertOnly(t, dir)
	})
}

// assertOnly checks dir holds exactly names: no temporary file left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %q, want %q", got, names)
	}
}

func assertMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file: %v", err)
	}
	path := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of a bad file: %v, want an error naming the path", err)
	}
}

//go:build unix

package keyfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/seal"
)

const newPassphrase = "a different passphrase, also long"

func TestRewrap(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	f := wrap(t, k)
	f.Created = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) // as if made long ago
	sealed, err := seal.Seal(k.Public, []byte("sealed before the change"))
	if err != nil {
		t.Fatal(err)
	}

	nf, err := Rewrap(f, []byte(testPassphrase), []byte(newPassphrase), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if nf.KeyID != f.KeyID || nf.PublicKey != f.PublicKey || !nf.Created.Equal(f.Created) {
		t.Errorf("rewrapped header %s %s %v, want %s %s %v", nf.KeyID, nf.PublicKey, nf.Created, f.KeyID, f.PublicKey, f.Created)
	}
	if bytes.Equal(nf.KDF.Salt, f.KDF.Salt) || bytes.Equal(nf.Nonce, f.Nonce) {
		t.Error("the rewrapped file reuses the salt or nonce")
	}
	parsed, err := Parse(nf.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Unlock([]byte(testPassphrase)); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("old passphrase on the rewrapped file: %v, want ErrWrongPassphrase", err)
	}
	got, err := parsed.Unlock([]byte(newPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bytes() != k.Bytes() {
		t.Fatal("the rewrapped file holds another key")
	}
	env, err := seal.ParseEnvelope(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := got.Open(env); err != nil || string(plain) != "sealed before the change" {
		t.Errorf("data sealed before the change: %q, %v", plain, err)
	}

	// The same passphrase again is allowed: it upgrades the cost.
	if _, err := Rewrap(f, []byte(testPassphrase), []byte(testPassphrase), cheap); err != nil {
		t.Errorf("rewrap under the same passphrase: %v", err)
	}
	if _, err := Rewrap(f, []byte("not the passphrase at all"), []byte(newPassphrase), cheap); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("rewrap with a wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
	if _, err := Rewrap(f, []byte(testPassphrase), []byte("too short"), cheap); !errors.Is(err, ErrShortPassphrase) {
		t.Errorf("rewrap to a short passphrase: %v, want ErrShortPassphrase", err)
	}
	if _, err := Rewrap(f, []byte(testPassphrase), []byte(newPassphrase), Params{}); err == nil {
		t.Error("rewrap to zero params succeeded")
	}
}

// writeFile writes f as a new key file in a new directory.
func writeFile(t *testing.T, f *File) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "clinic.key")
	if err := WriteNew(path, f, false); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestReplace(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	f := wrap(t, k)
	nf, err := Rewrap(f, []byte(testPassphrase), []byte(newPassphrase), cheap)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("replaces and overwrites the old bytes", func(t *testing.T) {
		t.Parallel()
		dir, path := writeFile(t, f)
		// A reader holding the old file open sees what became of its bytes.
		old, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		if err := Replace(path, nf); err != nil {
			t.Fatal(err)
		}
		assertOnly(t, dir, "clinic.key")
		assertMode0600(t, path)
		if got, _ := os.ReadFile(path); !bytes.Equal(got, nf.Marshal()) {
			t.Fatal("the file does not hold the new wrapping")
		}
		if rest, err := io.ReadAll(old); err != nil || len(rest) != 0 {
			t.Fatalf("the old file still holds %d bytes (%v), want it overwritten and emptied", len(rest), err)
		}
	})

	t.Run("leaves bytes another hard link names", func(t *testing.T) {
		t.Parallel()
		dir, path := writeFile(t, f)
		link := filepath.Join(dir, "backup.key")
		if err := os.Link(path, link); err != nil {
			t.Skip(err)
		}
		if err := Replace(path, nf); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(link); !bytes.Equal(got, f.Marshal()) {
			t.Fatal("Replace destroyed the bytes another name still holds")
		}
	})

	t.Run("keeps the owner", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("needs root to give the file another owner")
		}
		_, path := writeFile(t, f)
		if err := os.Chown(path, 4321, 4322); err != nil {
			t.Fatal(err)
		}
		if err := Replace(path, nf); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != 4321 || st.Gid != 4322 {
			t.Fatalf("owner %d:%d, want 4321:4322", st.Uid, st.Gid)
		}
	})

	other := wrap(t, newKey(t))
	refusals := []struct {
		name    string
		prepare func(t *testing.T, dir, path string) // makes path what must be refused
		wantErr string
	}{
		{"another key", func(t *testing.T, dir, path string) {
			if err := os.WriteFile(path, other.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "holds key id"},
		{"not a key file", func(t *testing.T, dir, path string) {
			if err := os.WriteFile(path, []byte("precious notes\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not an Airlock key file"},
		{"a symbolic link", func(t *testing.T, dir, path string) {
			target := filepath.Join(dir, "real.key")
			if err := os.WriteFile(target, f.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Skip(err)
			}
		}, "not a regular file"},
		{"missing", func(t *testing.T, dir, path string) {}, "no such file"},
	}
	for _, r := range refusals {
		t.Run("refuses "+r.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "clinic.key")
			r.prepare(t, dir, path)
			before := snapshot(t, dir)
			err := Replace(path, nf)
			if err == nil || !strings.Contains(err.Error(), r.wantErr) {
				t.Fatalf("Replace: %v, want an error mentioning %q", err, r.wantErr)
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("the refused Replace changed the directory:\n%s\n%s", before, after)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	t.Parallel()
	f := wrap(t, newKey(t))

	t.Run("overwrites every link and removes the name", func(t *testing.T) {
		t.Parallel()
		dir, path := writeFile(t, f)
		link := filepath.Join(dir, "copy.key")
		if err := os.Link(path, link); err != nil {
			t.Skip(err)
		}
		if err := Destroy(path, f.KeyID); err != nil {
			t.Fatal(err)
		}
		assertOnly(t, dir, "copy.key")
		if got, err := os.ReadFile(link); err != nil || len(got) != 0 {
			t.Fatalf("the file's bytes survive under another name: %d bytes, %v", len(got), err)
		}
	})

	refusals := []struct {
		name    string
		prepare func(t *testing.T, dir, path string)
		keyID   string
		wantErr string
	}{
		{"another key id", func(t *testing.T, dir, path string) {
			if err := os.WriteFile(path, f.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "0123456789abcdef", "holds key id"},
		{"not a key file", func(t *testing.T, dir, path string) {
			if err := os.WriteFile(path, []byte("precious notes\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, f.KeyID, "not an Airlock key file"},
		{"a symbolic link", func(t *testing.T, dir, path string) {
			if err := os.WriteFile(filepath.Join(dir, "real.key"), f.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(dir, "real.key"), path); err != nil {
				t.Skip(err)
			}
		}, f.KeyID, "not a regular file"},
		{"a directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, f.KeyID, "not a regular file"},
	}
	for _, r := range refusals {
		t.Run("refuses "+r.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "clinic.key")
			r.prepare(t, dir, path)
			before := snapshot(t, dir)
			err := Destroy(path, r.keyID)
			if err == nil || !strings.Contains(err.Error(), r.wantErr) {
				t.Fatalf("Destroy: %v, want an error mentioning %q", err, r.wantErr)
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("the refused Destroy changed the directory:\n%s\n%s", before, after)
			}
		})
	}
}

// snapshot describes every entry of dir and the contents of its regular files.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name() + " " + e.Type().String())
		if e.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
		b.WriteString("\n")
	}
	return b.String()
}

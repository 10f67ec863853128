package keyfile

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Rewrap unlocks f with passphrase and wraps the same private key under
// newPassphrase with the cost p: a passphrase change, or a cost upgrade when
// the passphrase stays. Data sealed to the key is untouched. The new file
// keeps f's creation time, because the key is as old as it was.
func Rewrap(f *File, passphrase, newPassphrase []byte, p Params) (*File, error) {
	// Refuse a bad new passphrase or cost before paying for an unlock.
	if err := CheckPassphrase(newPassphrase); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	k, err := f.Unlock(passphrase)
	if err != nil {
		return nil, err
	}
	defer k.Wipe()
	nf, err := Wrap(k, newPassphrase, p)
	if err != nil {
		return nil, err
	}
	nf.Created = f.Created
	return nf, nil
}

// Replace writes f over the key file at path, atomically: a temporary file in
// the same directory (mode 0600, the old file's owner kept), fsync, rename,
// fsync of the directory. It refuses unless path is a regular file holding an
// Airlock key file of the same key as f, so replacing can never swap or lose a
// key. Once the rename is durable, the old file's bytes (the key under its old
// passphrase) are overwritten, unless another hard link still names them.
func Replace(path string, f *File) error {
	old, oldInfo, err := openKeyFile(path, f.KeyID)
	if err != nil {
		return err
	}
	defer old.Close()
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, f)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op after a successful rename
	if err := keepOwner(tmp, oldInfo); err != nil {
		return fmt.Errorf("keep the owner of %s: %w", path, err)
	}
	// The file may have been swapped since it was opened; replace only what
	// was checked.
	if now, err := os.Lstat(path); err != nil || !os.SameFile(now, oldInfo) {
		return fmt.Errorf("%s changed while it was being replaced; nothing written", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The old bytes are kept: after a crash the directory may still
		// name them, and they are then the only copy of the key.
		return fmt.Errorf("%s replaced, but syncing its directory failed (the old file's bytes were not overwritten): %w", path, err)
	}
	if links, ok := linkCount(old); ok && links == 0 {
		if err := overwrite(old); err != nil {
			return fmt.Errorf("%s replaced, but overwriting the old file failed: %w", path, err)
		}
	}
	return nil
}

// Destroy overwrites the key file at path with random bytes, syncs it and
// removes it: retiring a key. It refuses anything that is not a regular file
// holding the Airlock key file of keyID, so a mistyped path destroys nothing.
// Every hard link to the file loses the key too, since they share the bytes.
// Copies elsewhere (backups, snapshots, secret stores) are the operator's to
// destroy; see docs/keys.md.
func Destroy(path, keyID string) error {
	fh, info, err := openKeyFile(path, keyID)
	if err != nil {
		return err
	}
	defer fh.Close()
	if err := overwrite(fh); err != nil {
		return fmt.Errorf("overwrite %s: %w", path, err)
	}
	if now, err := os.Lstat(path); err != nil || !os.SameFile(now, info) {
		return fmt.Errorf("%s changed while it was being destroyed; its old bytes are overwritten, the name is kept", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// openKeyFile opens path for writing after checking it is a regular file (not
// a symbolic link) holding the key file of keyID.
func openKeyFile(path, keyID string) (*os.File, fs.FileInfo, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (a symbolic link? name the file it points to)", path)
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	opened, err := fh.Stat()
	if err != nil || !os.SameFile(opened, info) {
		fh.Close()
		return nil, nil, fmt.Errorf("%s changed while it was being opened", path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, 1<<20))
	if err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	kf, err := Parse(data)
	if err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if kf.KeyID != keyID {
		fh.Close()
		return nil, nil, fmt.Errorf("%s holds key id %s, not %s", path, kf.KeyID, keyID)
	}
	return fh, opened, nil
}

// overwrite replaces every byte of fh with random bytes, then empties it,
// syncing after each step. On a journaling, copy-on-write or flash file system
// older copies of the blocks may survive; it is still the best a program can
// do, and it makes a plain undelete useless.
func overwrite(fh *os.File) error {
	info, err := fh.Stat()
	if err != nil {
		return err
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.CopyN(fh, rand.Reader, info.Size()); err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		return err
	}
	if err := fh.Truncate(0); err != nil {
		return err
	}
	return fh.Sync()
}

// writeTemp writes f to a new temporary file in dir with mode 0600, synced,
// and returns its name.
func writeTemp(dir string, f *File) (string, error) {
	tmp, err := os.CreateTemp(dir, ".airlock-key-*")
	if err != nil {
		return "", err
	}
	err = func() error {
		if err := tmp.Chmod(0o600); err != nil {
			return err
		}
		if _, err := tmp.Write(f.Marshal()); err != nil {
			return err
		}
		return tmp.Sync()
	}()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package keyfile

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
)

// The frozen key file: written once by an earlier build, it must unlock with
// every future build, because operators keep key files for years. If a
// change makes TestFrozenKeyFile fail, the change breaks existing key files;
// fix the change, not the files.
const (
	vectorKeyFile    = "testdata/v1.key"
	vectorExpectFile = "testdata/v1.expect.json"
)

// vectorExpect is what vectorKeyFile must unlock to.
type vectorExpect struct {
	Comment    string `json:"_comment"`
	Passphrase string `json:"passphrase"`
	PrivateKey string `json:"private_key"` // hex of the raw X25519 private key
	PublicKey  string `json:"public_key"`
	KeyID      string `json:"key_id"`
}

func readVectorExpect(tb testing.TB) vectorExpect {
	tb.Helper()
	data, err := os.ReadFile(vectorExpectFile)
	if err != nil {
		tb.Fatal(err)
	}
	var v vectorExpect
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatalf("%s: %v", vectorExpectFile, err)
	}
	return v
}

func TestFrozenKeyFile(t *testing.T) {
	t.Parallel()
	want := readVectorExpect(t)
	f, err := Read(vectorKeyFile)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if f.KeyID != want.KeyID || f.PublicKey != want.PublicKey || f.Public().String() != want.PublicKey {
		t.Fatalf("key file names %s / %s, want %s / %s", f.KeyID, f.PublicKey, want.KeyID, want.PublicKey)
	}
	if f.KDF.Params != (Params{Time: 1, MemoryKiB: 8192, Threads: 1}) {
		t.Fatalf("frozen file has kdf params %+v", f.KDF.Params)
	}
	k, err := f.Unlock([]byte(want.Passphrase))
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	raw := k.Bytes()
	if got := hex.EncodeToString(raw[:]); got != want.PrivateKey {
		t.Fatalf("private key %s, want %s", got, want.PrivateKey)
	}
	if k.Public.String() != want.PublicKey || k.Public.ID.String() != want.KeyID {
		t.Fatalf("unlocked key's public key %s, want %s", k.Public, want.PublicKey)
	}
	if _, err := f.Unlock([]byte(want.Passphrase + " ")); err != ErrWrongPassphrase {
		t.Fatalf("Unlock with a wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
}

// TestWriteVectorKeyFile writes the frozen key file once, when
// AIRLOCK_WRITE_VECTORS=1, and refuses to replace it.
func TestWriteVectorKeyFile(t *testing.T) {
	if os.Getenv("AIRLOCK_WRITE_VECTORS") != "1" {
		t.Skip("set AIRLOCK_WRITE_VECTORS=1 to write " + vectorKeyFile)
	}
	if _, err := os.Stat(vectorExpectFile); err == nil {
		t.Fatalf("%s exists and is frozen; not replacing it", vectorExpectFile)
	}
	// The same key as shared/seal's frozen vector: its public key string
	// has a "-" in the key field.
	var raw [32]byte
	hex.Decode(raw[:], []byte("dfb466940ac375bbb35c8b5d34d72d1b2ad3ac26309094ffcb50f536492ab0cd"))
	k, err := seal.NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Non-ASCII on purpose: the passphrase's UTF-8 bytes go to argon2id as
	// they are, without normalisation, and must keep doing so.
	const passphrase = "correct horse battery staple – grüße"
	f, err := Wrap(k, []byte(passphrase), Params{Time: 1, MemoryKiB: 8192, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(vectorKeyFile, f, false); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(vectorExpect{
		Comment: "Frozen test vector: DO NOT MODIFY (nor v1.key). Key files written today must " +
			"unlock forever; if TestFrozenKeyFile fails, the code changed the key file format.",
		Passphrase: passphrase,
		PrivateKey: hex.EncodeToString(raw[:]),
		PublicKey:  k.Public.String(),
		KeyID:      k.Public.ID.String(),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorExpectFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

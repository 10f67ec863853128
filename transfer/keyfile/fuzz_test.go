package keyfile

import (
	"os"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
)

// FuzzKeyfileParse: a key file is read from disk at start-up; whatever it
// holds, Parse must not panic, and what it accepts must be consistent,
// survive Marshal, and (when cheap enough to try) unlock without panicking.
func FuzzKeyfileParse(f *testing.F) {
	frozen, err := os.ReadFile(vectorKeyFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(frozen)
	// A file at the lowest cost Parse allows, so the fuzzer reaches Unlock.
	var raw [32]byte
	raw[0] = 1
	k, err := seal.NewPrivateKey(raw)
	if err != nil {
		f.Fatal(err)
	}
	tiny, err := Wrap(k, []byte(testPassphrase), Params{Time: 1, MemoryKiB: 8, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny.Marshal())
	f.Add([]byte(strings.Replace(string(tiny.Marshal()), `"version": 1`, `"version": 1.5`, 1)))
	f.Add([]byte(strings.Replace(string(tiny.Marshal()), `"threads": 1`, `"threads": 255`, 1)))
	f.Add([]byte(strings.Replace(string(frozen), `"format"`, `"FORMAT"`, 1)))
	f.Add([]byte(`{"format":"airlock-private-key","version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if file != nil {
				t.Fatalf("error %v with a file", err)
			}
			return
		}
		pub, err := seal.ParsePublicKey(file.PublicKey)
		if err != nil || pub != file.Public() || pub.ID.String() != file.KeyID {
			t.Fatalf("accepted a file whose header is inconsistent: %s", data)
		}
		again, err := Parse(file.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal()) of an accepted file: %v", err)
		}
		if again.Public() != file.Public() || again.KDF.Params != file.KDF.Params {
			t.Fatal("Marshal/Parse round trip changed the file")
		}
		// Unlocking costs Time × MemoryKiB; only try the cheap ones.
		p := file.KDF.Params
		if p.Time > 2 || p.MemoryKiB > 64 || p.Threads > 4 {
			return
		}
		key, err := file.Unlock([]byte(testPassphrase))
		if err == nil && key.Public != file.Public() {
			t.Fatal("Unlock returned a key that is not the file's")
		}
	})
}

package keyfile

import (
	"testing"

	"github.com/airlockhq/airlock/shared/seal"
)

// BenchmarkUnlockDefaultParams is what one unlock of a new key file costs. The
// heap is warm after the first iteration; a fresh process also pays for
// touching its first MemoryKiB, which is why docs/keys.md times `transfer
// once` as well.
func BenchmarkUnlockDefaultParams(b *testing.B) {
	k, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	f, err := Wrap(k, []byte(testPassphrase), DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(DefaultParams.MemoryKiB)/1024, "MiB")
	for b.Loop() {
		if _, err := f.Unlock([]byte(testPassphrase)); err != nil {
			b.Fatal(err)
		}
	}
}

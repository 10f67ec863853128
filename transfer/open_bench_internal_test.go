package transfer

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// BenchmarkOpenRow is transfer's own work on one sealed new-patient
// submission of about 1.5 KB (BenchmarkTransferPass's rows), without the
// databases: MAC, envelope, X25519 open, payload, validation against the
// form, calculated items, carried answers and search words. Run it under
// callgrind for a figure a loaded machine does not move.
func BenchmarkOpenRow(b *testing.B) {
	key, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	rowKey, err := seal.NewRowKey()
	if err != nil {
		b.Fatal(err)
	}
	q, ok := forms.Builtin().Get("new-patient")
	if !ok {
		b.Fatal("no new-patient form")
	}
	raw := map[string]json.RawMessage{}
	for k, v := range map[string]any{"family-name": "Quillfeather", "given-name": "Ysolde", "birth-date": "1971-07-04",
		"sex-at-birth": "other", "email": "ysolde@example.org", "allergies": true, "allergy-details": "Wasp stings, swelling",
		"alcohol-units": 2, "height": 180.25, "consent": true,
		"medications": "Levothyroxine 50 microgram daily. " + strings.Repeat("x", 700)} {
		raw[k], _ = json.Marshal(v)
	}
	a, errs := q.Validate(raw)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	sealed, _, err := intake.NewSealer(key.Public, rowKey).SealSubmission(q, a)
	if err != nil {
		b.Fatal(err)
	}
	m := &Mover{Keys: Keyring{key.Public.ID: key}, RowKeys: []seal.RowKey{rowKey}, Forms: forms.Builtin()}
	row := &pendingRow{Seq: 1, Row: sealed.Row, MAC: sealed.MAC}
	b.ReportAllocs()
	for b.Loop() {
		if o := m.openRow(row); o.deliver == nil {
			b.Fatalf("row not delivered: %+v", o)
		}
	}
}

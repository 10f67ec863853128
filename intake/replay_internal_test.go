package intake

import (
	"encoding/hex"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// TestReplayDerivationFrozen pins the derivation of docs/formats.md ("Replay
// key"): replay keys are stored for days, so a change that derives other
// values would let a repeat made across an upgrade be stored twice. Do not
// modify the expected values; a new derivation needs a new label. The API
// case was computed independently from docs/formats.md (Python hmac).
func TestReplayDerivationFrozen(t *testing.T) {
	var rowKey seal.RowKey
	for i := range rowKey {
		rowKey[i] = byte(i)
	}
	rp := newReplayer(rowKey)
	str := "Example"
	answers := forms.Answers{"family-name": {{ValueString: &str}}}
	corr := &seal.Correction{Receipt: "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ", CodeHash: seal.HashCorrectionCode("7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4TX")}
	for _, tc := range []struct {
		name      string
		replayKey []byte
		corrects  *seal.Correction
		want      [4]string // replay key hex, id, receipt, correction code
	}{
		{"api key", rp.apiReplayKey("new-patient", "0b7e9f2c-4d1a-4e8b-9c3f-5a6d7e8f9a0b"), nil, [4]string{
			"b8b64fba2ce73e54febfb339fd62cd86e33327906ccfaf65f2fc565fbd86b90e", "c92b1ac3-ed6c-4967-b32f-281c01244e93",
			"YQTH-VLB7-LR6Y-NEJM-G68S-MBLG", "EK4Y-796H-BDDY-AC5U-8JLR-KM9Z-WEZQ"}},
		{"form token", rp.formReplayKey("new-patient", formToken{cookie: "cookie-value", nonce: make([]byte, tokenNonceSize)}), corr, [4]string{
			"a9e06d7b2a54cc4d552277b2b197c93c7a4967f4beb02502b18e76653ed7f4f4", "0fc86859-19bf-4556-a454-27ed97002a79",
			"DCCM-WZJX-A54B-DGKP-X8NL-KAS8", "L9U9-RLXA-8THG-362H-KZTJ-ZKX2-GJU3"}},
	} {
		ident, err := rp.derive(tc.replayKey, answers, tc.corrects)
		if err != nil {
			t.Fatal(err)
		}
		got := [4]string{hex.EncodeToString(tc.replayKey), ident.id, ident.Receipt, ident.CorrectionCode}
		if got != tc.want {
			t.Errorf("%s: derived %q, want %q", tc.name, got, tc.want)
		}
	}
}

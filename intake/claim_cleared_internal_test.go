package intake

import (
	"bytes"
	"testing"
)

// TestCorrectionClaimIsCleared: handleSubmitJSON runs takeJSONCorrection(raw)
// and then, deferred, clearRaw(raw). takeJSONCorrection takes "$corrects"
// out of raw, so clearRaw never sees it: the raw claim, which holds the
// correction code of an earlier submission (a secret only its submitter
// has), must be cleared by takeJSONCorrection itself, or it stays in freed
// memory (found by review5).
func TestCorrectionClaimIsCleared(t *testing.T) {
	const code = "QQQQ-WWWW-EEEE-RRRR"
	body := []byte(`{"family-name":"Ann","$corrects":{"receipt":"AAAA-BBBB-CCCC-DDDD-EEEE-FFFF","correction_code":"` + code + `"}}`)
	raw, err := decodeAnswers(bodyReader{bytes.NewReader(body), int64(len(body))}, 8)
	if err != nil {
		t.Fatal(err)
	}
	claim := raw[correctsKey]
	// As handleSubmitJSON does:
	func() {
		defer clearRaw(raw)
		takeJSONCorrection(raw)
	}()
	if bytes.Contains(claim, []byte(code)) {
		t.Errorf("the raw correction claim still holds the correction code after the request: %s", claim)
	}
}

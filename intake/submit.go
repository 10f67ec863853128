package intake

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// Sealer turns validated answers into a row that only the clinic can open and
// only transfer can authenticate.
type Sealer struct {
	Recipient seal.PublicKey
	RowKey    seal.RowKey
	Now       func() time.Time
}

// NewSealer seals to recipient and authenticates rows with rowKey.
func NewSealer(recipient seal.PublicKey, rowKey seal.RowKey) *Sealer {
	return &Sealer{Recipient: recipient, RowKey: rowKey, Now: time.Now}
}

// SealedRow is one submission as stored in the intake database.
type SealedRow struct {
	seal.Row
	MAC []byte
	// ReplayKey is stored beside the row, outside the MAC (transfer never
	// reads it): nil, or the HMAC that lets intake refuse a second
	// submission under the same form token or Idempotency-Key.
	ReplayKey []byte
}

// SealSubmission seals answers to the current recipient and returns the row
// and the receipt reference shown to the submitter. The receipt lives only
// inside the ciphertext; the intake database never sees it. It discards the
// correction code: Seal returns it.
func (s *Sealer) SealSubmission(q *forms.Questionnaire, answers forms.Answers) (*SealedRow, string, error) {
	row, issued, err := s.Seal(q, answers, nil)
	return row, issued.Receipt, err
}

// Issued is what the submitter is shown once, and nobody else ever: the
// receipt, and the correction code that with it lets them correct the
// submission. Only the code's hash is sealed; neither is stored in clear.
type Issued struct {
	Receipt        string
	CorrectionCode string
}

// Seal seals answers to the current recipient, with a new correction code's
// hash and, when corrects is not nil, the correction the submitter claims.
func (s *Sealer) Seal(q *forms.Questionnaire, answers forms.Answers, corrects *seal.Correction) (*SealedRow, Issued, error) {
	ident, err := randomIdentity()
	if err != nil {
		return nil, Issued{}, err
	}
	row, err := s.sealAs(q, answers, corrects, ident)
	return row, ident.Issued, err
}

// sealAs seals answers as the submission ident: its row id, receipt and
// correction code, and the replay key stored beside the row (replay.go).
func (s *Sealer) sealAs(q *forms.Questionnaire, answers forms.Answers, corrects *seal.Correction, ident identity) (*SealedRow, error) {
	id, receipt, code := ident.id, ident.Receipt, ident.CorrectionCode
	clock := s.Now
	if clock == nil {
		clock = time.Now
	}
	now := clock().UTC().Truncate(time.Microsecond)
	payload := seal.Payload{
		Version: 1,
		Binding: seal.Binding{
			SubmissionID: id,
			FormID:       q.ID,
			KeyID:        s.Recipient.ID.String(),
		},
		FormVersion: q.FormVersion(),
		Receipt:     receipt,
		SubmittedAt: now.Format(time.RFC3339Nano),

		CorrectionCodeHash: seal.HashCorrectionCode(code),
		Corrects:           corrects,
	}
	plaintext, err := json.Marshal(sealedPayload{Payload: payload, Answers: answers})
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	env, err := seal.Seal(s.Recipient, plaintext)
	clear(plaintext)
	if err != nil {
		return nil, err
	}
	row := &SealedRow{Row: seal.Row{
		SubmissionID: id,
		FormID:       q.ID,
		FormVersion:  q.FormVersion(),
		KeyID:        s.Recipient.ID.String(),
		ReceivedAt:   now,
		Envelope:     env,
	}}
	row.MAC = s.RowKey.MAC(row.Row)
	row.ReplayKey = ident.replayKey
	return row, nil
}

// sealedPayload is a seal.Payload with its answers encoded in place: as the
// payload's json.RawMessage they would be encoded once, then scanned and
// compacted again by the payload's encoding. The outer field hides the
// embedded one of the same name, so "answers" appears once.
type sealedPayload struct {
	seal.Payload
	Answers forms.Answers `json:"answers"`
}

// newUUID makes a random (version 4) UUID in its canonical text form.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return uuidFromBytes(b), nil
}

// uuidFromBytes writes 16 uniformly random bytes as a version 4 UUID.
func uuidFromBytes(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var receiptEncoding = base32.NewEncoding(seal.ReceiptAlphabet).WithPadding(base32.NoPadding)

// newReceipt makes an unguessable 120-bit reference: 24 characters from an
// alphabet without look-alikes (no I, O, 0, 1), in groups of four.
func newReceipt() (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random receipt: %w", err)
	}
	return receiptFromBytes(b), nil
}

// receiptFromBytes writes 15 uniformly random bytes as a receipt.
func receiptFromBytes(b [15]byte) string {
	s := receiptEncoding.EncodeToString(b[:])
	out := make([]byte, 0, len(s)+len(s)/4)
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			out = append(out, '-')
		}
		out = append(out, s[i:i+4]...)
	}
	return string(out)
}

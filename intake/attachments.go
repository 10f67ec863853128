package intake

import (
	"crypto/sha1" // FHIR R4 defines Attachment.hash as SHA-1
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/filetype"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
)

// attachmentPolicy decides which files a submission may carry. Types are
// detected from the bytes, never taken from the file name or the
// contentType the client claims.
type attachmentPolicy struct {
	maxSize int64
	allowed []string
}

// typeNames are the words the error message uses for the allowed types.
var typeNames = map[string]string{
	"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG", "text/plain": "plain text",
	"image/gif": "GIF", "image/webp": "WebP", "image/bmp": "BMP", "audio/mpeg": "MP3",
	"audio/wave": "WAV", "video/mp4": "MP4", "video/webm": "WebM", "application/zip": "ZIP",
}

// tooLargeMessage is the error for a file over the per-file limit.
func (p attachmentPolicy) tooLargeMessage() locale.Message {
	return locale.New("intake.attachment.too_large", formatSize(p.maxSize))
}

func (p attachmentPolicy) typeMessage() locale.Message {
	return locale.New("intake.attachment.type", typeList(p.allowed))
}

// typeList is the allowed types in words, rendered in the reader's
// language ("PDF, PNG, JPEG, plain text").
type typeList []string

// Localize implements locale.Localizer.
func (l typeList) Localize(lang language.Tag) string {
	pr := locale.Default().Printer(lang)
	names := make([]string, 0, len(l))
	for _, t := range l {
		if t == "text/plain" {
			names = append(names, pr.T("intake.type.text_plain"))
			continue
		}
		names = append(names, typeNames[t])
	}
	return strings.Join(names, ", ")
}

// typeList is the allowed types in words for pr's language.
func (p attachmentPolicy) typeList(pr *locale.Printer) string {
	return typeList(p.allowed).Localize(pr.Lang())
}

// check inspects one file; it returns the detected type, or a message for
// the field (which never describes the content beyond its size and type).
func (p attachmentPolicy) check(data []byte) (string, locale.Message) {
	if int64(len(data)) > p.maxSize {
		return "", p.tooLargeMessage()
	}
	ct := filetype.Detect(data)
	if !slices.Contains(p.allowed, ct) {
		return "", p.typeMessage()
	}
	return ct, locale.Message{}
}

// apply checks every attachment among validated answers and records the
// detected type, size and hash on each, which is what gets sealed.
func (p attachmentPolicy) apply(q *forms.Questionnaire, answers forms.Answers) forms.FieldErrors {
	var errs forms.FieldErrors
	q.WalkAnswers(answers, func(x forms.Answered) {
		if x.Item.Type != forms.TypeAttachment {
			return
		}
		for i, v := range x.Values {
			att := v.ValueAttachment
			if att == nil {
				continue
			}
			ct, msg := p.check(att.Data)
			if !msg.IsZero() {
				if len(x.Values) > 1 {
					msg = locale.New("forms.answer_n", i+1, msg)
				}
				errs = append(errs, forms.FieldError{Field: x.Field, Message: msg})
				break
			}
			sum := sha1.Sum(att.Data)
			att.ContentType = ct
			att.Size = int64(len(att.Data))
			att.Hash = sum[:]
		}
	})
	return errs
}

// formatSize prints a byte count the way INTAKE_MAX_ATTACHMENT takes it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

package intake

import (
	"encoding/json"
	"net/url"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
	"github.com/airlockhq/airlock/shared/seal"
)

// How a submission says it corrects an earlier one (docs/intake.md,
// "Corrections"). It names the earlier receipt and presents that
// submission's correction code. intake cannot check the pair (it never reads
// stored data): it seals the receipt and the code's hash, and transfer links
// the two submissions only when the hash matches the original's.
//
// The claim is never an answer: it is kept out of the form's linkIds.
const (
	// correctsKey is the top-level key of a JSON answers object that holds
	// {"receipt": ..., "correction_code": ...}. No form may use it as a
	// linkId.
	correctsKey = "$corrects"
	// CorrectsExtensionURL is the QuestionnaireResponse extension with the
	// same two values, as nested extensions "receipt" and "correctionCode"
	// (valueString each).
	CorrectsExtensionURL = "https://airlock.dev/fhir/StructureDefinition/corrects"
	// The HTML form's fields of the "This corrects an earlier submission"
	// fieldset.
	correctsReceiptField = "_corrects_receipt"
	correctsCodeField    = "_corrects_code"
)

// correctsClaim is the JSON value under correctsKey.
type correctsClaim struct {
	Receipt        string `json:"receipt"`
	CorrectionCode string `json:"correction_code"`
}

// parseCorrection checks a claimed receipt and correction code as typed and
// returns the correction to seal: nil when neither was given. Errors name
// receiptField or codeField and never quote what was typed.
func parseCorrection(receipt, code, receiptField, codeField string) (*seal.Correction, forms.FieldErrors) {
	if receipt == "" && code == "" {
		return nil, nil
	}
	var errs forms.FieldErrors
	r, ok := seal.NormaliseReceipt(receipt)
	switch {
	case receipt == "":
		errs = append(errs, forms.FieldError{Field: receiptField, Message: locale.New("intake.corrects.receipt_required")})
	case !ok:
		errs = append(errs, forms.FieldError{Field: receiptField, Message: locale.New("intake.corrects.receipt_shape")})
	}
	c, cok := seal.NormaliseCorrectionCode(code)
	switch {
	case code == "":
		errs = append(errs, forms.FieldError{Field: codeField, Message: locale.New("intake.corrects.code_required")})
	case !cok:
		errs = append(errs, forms.FieldError{Field: codeField, Message: locale.New("intake.corrects.code_shape")})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &seal.Correction{Receipt: r, CodeHash: seal.HashCorrectionCode(c)}, nil
}

// takeJSONCorrection removes the correction claim from a JSON submission's
// answers (application/json, or a QuestionnaireResponse's extension that
// decodeQuestionnaireResponse put there) and checks it.
func takeJSONCorrection(raw map[string]json.RawMessage) (*seal.Correction, forms.FieldErrors) {
	v, ok := raw[correctsKey]
	if !ok {
		return nil, nil
	}
	delete(raw, correctsKey)
	// Out of raw, so clearRaw will not see it: the claim holds a correction
	// code, which must not stay in freed memory.
	defer clear(v)
	var claim correctsClaim
	if err := json.Unmarshal(v, &claim); err != nil {
		return nil, forms.FieldErrors{{Field: correctsKey, Message: locale.New("intake.corrects.json_shape")}}
	}
	corr, errs := parseCorrection(claim.Receipt, claim.CorrectionCode, correctsKey+".receipt", correctsKey+".correction_code")
	if corr == nil && errs == nil {
		errs = forms.FieldErrors{{Field: correctsKey, Message: locale.New("intake.corrects.json_empty")}}
	}
	return corr, errs
}

// fhirExtension is the part of a FHIR extension intake reads.
type fhirExtension struct {
	URL         string          `json:"url"`
	ValueString *string         `json:"valueString,omitempty"`
	Extension   []fhirExtension `json:"extension,omitempty"`
}

// correctsFromExtensions finds the corrects extension of a
// QuestionnaireResponse and returns it as the JSON value takeJSONCorrection
// reads, or nil when there is none.
func correctsFromExtensions(exts []fhirExtension) json.RawMessage {
	for _, e := range exts {
		if e.URL != CorrectsExtensionURL {
			continue
		}
		var claim correctsClaim
		for _, sub := range e.Extension {
			if sub.ValueString == nil {
				continue
			}
			switch sub.URL {
			case "receipt":
				claim.Receipt = *sub.ValueString
			case "correctionCode":
				claim.CorrectionCode = *sub.ValueString
			}
		}
		b, _ := json.Marshal(claim)
		return b
	}
	return nil
}

// takeFormCorrection removes the correction fieldset's values from an HTML
// form submission and checks them.
func takeFormCorrection(values url.Values) (receipt string, corr *seal.Correction, errs forms.FieldErrors) {
	receipt, code := values.Get(correctsReceiptField), values.Get(correctsCodeField)
	delete(values, correctsReceiptField)
	delete(values, correctsCodeField)
	corr, errs = parseCorrection(receipt, code, correctsReceiptField, correctsCodeField)
	return receipt, corr, errs
}

package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/jsonread"
	"github.com/airlockhq/airlock/shared/locale"
	"github.com/airlockhq/airlock/shared/seal"
)

// storeTimeout bounds sealing and storing one submission, so a stuck
// database cannot hold requests for ever.
const storeTimeout = 10 * time.Second

func (s *Server) form(c echo.Context) (*forms.Questionnaire, error) {
	q, ok := s.forms.Get(c.Param("id"))
	if !ok {
		return nil, echo.NewHTTPError(http.StatusNotFound, "unknown form")
	}
	return q, nil
}

// handleGetForm serves the Questionnaire JSON exactly as loaded.
func (s *Server) handleGetForm(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/fhir+json", q.Raw)
}

// handleSubmitJSON accepts either a JSON object mapping linkId to answer
// (application/json) or a FHIR QuestionnaireResponse (application/fhir+json),
// validates, seals and stores it, and answers 201 with the receipt.
func (s *Server) handleSubmitJSON(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	key, err := parseIdempotencyKey(c.Request().Header)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	var raw map[string]json.RawMessage
	body := bodyReader{c.Request().Body, c.Request().ContentLength}
	switch mt {
	case "application/json":
		raw, err = decodeAnswers(body, len(q.Members()))
	case "application/fhir+json":
		raw, err = decodeQuestionnaireResponse(body, q)
	default:
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json or application/fhir+json")
	}
	if err != nil {
		return err
	}
	defer clearRaw(raw)
	corrects, cerrs := takeJSONCorrection(raw)
	answers, ferrs := q.Validate(raw)
	if len(ferrs) == 0 && len(cerrs) == 0 {
		ferrs = s.attachments.apply(q, answers)
	}
	if ferrs = append(ferrs, cerrs...); len(ferrs) > 0 {
		return c.JSON(http.StatusUnprocessableEntity, map[string]any{"errors": apiErrors(s.printerFor(c, s.siteLanguages()), ferrs)})
	}
	var replayKey []byte
	if key != "" {
		replayKey = s.replay.apiReplayKey(q.ID, key)
	}
	issued, err := s.accept(c.Request().Context(), q, answers, corrects, replayKey)
	if errors.Is(err, ErrReplayKeyUsed) {
		// draft-ietf-httpapi-idempotency-key-header: a key reused with
		// another payload is 422.
		return c.JSON(http.StatusUnprocessableEntity, map[string]any{"errors": apiErrors(s.printerFor(c, s.siteLanguages()),
			forms.FieldErrors{forms.Errorf(idempotencyHeader, "intake.api.idempotency_reused")})})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, receiptResponse{CorrectionCode: issued.CorrectionCode, Receipt: issued.Receipt})
}

// receiptResponse is the body of a 201: the same bytes as the map it
// replaced (whose keys encoding/json sorted), without the map's reflection
// and sorting on every submission.
type receiptResponse struct {
	CorrectionCode string `json:"correction_code"`
	Receipt        string `json:"receipt"`
}

// apiFieldError is one entry of a 422's "errors": the field and the
// message in the client's language (Accept-Language among the catalogue's,
// English by default).
type apiFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// baseWords renders the API errors written before a request's language is
// known.
var baseWords = locale.Default().Printer(locale.Base)

func apiErrors(pr *locale.Printer, errs forms.FieldErrors) []apiFieldError {
	out := make([]apiFieldError, len(errs))
	for i, fe := range errs {
		out[i] = apiFieldError{Field: fe.Field, Message: pr.Sprint(fe.Message)}
	}
	return out
}

// accept seals validated answers (and the correction they claim to be, if
// any) and stores them, returning the receipt and correction code to show.
// With a replay key (replay.go) the submission's identity is derived, so a
// repeat returns the same receipt and code and stores nothing; the same
// replay key with other answers is ErrReplayKeyUsed.
func (s *Server) accept(ctx context.Context, q *forms.Questionnaire, answers forms.Answers, corrects *seal.Correction, replayKey []byte) (Issued, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var ident identity
	var err error
	if replayKey != nil {
		ident, err = s.replay.derive(replayKey, answers, corrects)
	} else {
		ident, err = randomIdentity()
	}
	if err != nil {
		return Issued{}, err
	}
	row, err := s.sealer.sealAs(q, answers, corrects, ident)
	if err != nil {
		return Issued{}, err
	}
	if len(row.Envelope) > seal.MaxEnvelope {
		// The schema would refuse it (the envelope bound of migration
		// 000040): answers that escape into much more JSON than they took.
		return Issued{}, errTooLarge
	}
	switch err := s.store.StoreSubmission(ctx, row); {
	case errors.Is(err, ErrAlreadyStored):
		s.metrics.repeats.WithLabelValues(q.ID).Inc()
	case errors.Is(err, ErrReplayKeyUsed):
		s.metrics.replayKeyUsed.WithLabelValues(q.ID).Inc()
		return Issued{}, err
	case err != nil:
		return Issued{}, err
	}
	s.metrics.sealSeconds.Observe(time.Since(start).Seconds())
	return ident.Issued, nil
}

// decodeAnswers reads exactly one JSON object of linkId -> raw answer;
// fields is how many answers the form takes at its top level, a size hint
// that spares the map its regrowth.
func decodeAnswers(body bodyReader, fields int) (map[string]json.RawMessage, error) {
	b, err := readJSONBody(body)
	if err != nil {
		return nil, err
	}
	defer clear(b[:cap(b)]) // the answers live on as decoded copies only
	if len(b) == 0 || b[0] != '{' {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "body must be a JSON object mapping linkId to answer")
	}
	// The hint is capped so a form of many items does not cost every
	// request a large empty map.
	raw := make(map[string]json.RawMessage, min(fields, 64))
	if readAnswerObject(b, raw) != nil {
		// jsonread takes less than encoding/json (not invalid UTF-8, not an
		// unpaired surrogate, not nesting past jsonread.MaxDepth):
		// encoding/json decides the rest exactly as it always did.
		clearRaw(raw)
		clear(raw)
		if err := decodeOne(b, &raw); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// readAnswerObject reads b, one JSON object, into raw, in one pass and
// without reflection, where json.Unmarshal scans b twice. Each value is a
// copy, as json.Unmarshal makes: the caller clears b as soon as it is
// decoded, and the copies when they are sealed (clearRaw). What it
// accepts, encoding/json reads the same way (a later duplicate name wins in
// both); on an error raw holds part of b and the caller starts again.
func readAnswerObject(b []byte, raw map[string]json.RawMessage) error {
	r := jsonread.New(b)
	err := r.Object(func(name []byte) error {
		v, err := r.Raw()
		if err != nil {
			return err
		}
		if old, ok := raw[string(name)]; ok {
			clear(old) // a duplicate name: its earlier value is dropped
		}
		raw[string(name)] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return err
	}
	return r.End()
}

// bodyReader is a request body with the length its Content-Length
// announced (-1 when unknown).
type bodyReader struct {
	io.Reader
	length int64
}

// maxPresized bounds the buffer made up front from an announced length:
// a larger body grows its buffer as it arrives, so a client that announces
// much and sends little cannot make intake allocate for it.
const maxPresized = 64 << 10

// clearRaw overwrites the raw answers once they are validated and sealed
// (or refused): Go frees memory without wiping it, and a root attacker who
// reads the live process must find as little as possible of submissions
// already stored (BenchmarkIntakeMemoryResidue).
func clearRaw(raw map[string]json.RawMessage) {
	for _, v := range raw {
		clear(v)
	}
}

// readJSONBody reads the whole body into one buffer, which the caller
// clears once it has decoded it.
func readJSONBody(body bodyReader) ([]byte, error) {
	size := int64(512) // io.ReadAll's first buffer
	if body.length > 0 && body.length <= maxPresized {
		// One allocation where io.ReadAll would grow its buffer from 512
		// bytes, copying as it goes; +1 to meet the EOF without a regrowth.
		size = body.length + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return bytes.TrimSpace(b), nil
		}
		if err != nil {
			clear(b)
			return nil, err // a *http.MaxBytesError becomes 413 in handleError
		}
		if len(b) == cap(b) {
			// Let append pick the next capacity, and clear what it leaves
			// behind: a body's bytes are a patient's answers.
			grown := append(b, 0)[:len(b)]
			clear(b)
			b = grown
		}
	}
}

// decodeOne decodes exactly one JSON value and refuses anything after it.
// Its errors never quote the body.
func decodeOne(b []byte, v any) error {
	// json.Unmarshal takes exactly one value and nothing after it, without
	// the Decoder's copy of the body; a Decoder only words a refusal.
	if json.Unmarshal(b, v) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON")
	}
	return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON: data after the object")
}

// questionnaireResponse is the part of a FHIR QuestionnaireResponse intake
// reads; other elements (id, meta, authored, subject...) are ignored.
type questionnaireResponse struct {
	ResourceType  string               `json:"resourceType"`
	Questionnaire string               `json:"questionnaire"`
	Status        string               `json:"status"`
	Item          []forms.ResponseItem `json:"item"`
	Extension     []fhirExtension      `json:"extension"`
}

// decodeQuestionnaireResponse reads a QuestionnaireResponse for q and
// flattens it into raw answers for Validate.
func decodeQuestionnaireResponse(body bodyReader, q *forms.Questionnaire) (map[string]json.RawMessage, error) {
	b, err := readJSONBody(body)
	if err != nil {
		return nil, err
	}
	defer clear(b[:cap(b)]) // the answers live on as decoded copies only
	if len(b) == 0 || b[0] != '{' {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "body must be a FHIR QuestionnaireResponse")
	}
	var qr questionnaireResponse
	if err := decodeOne(b, &qr); err != nil {
		return nil, err
	}
	if qr.ResourceType != "QuestionnaireResponse" {
		return nil, echo.NewHTTPError(http.StatusBadRequest, `resourceType must be "QuestionnaireResponse"`)
	}
	switch qr.Status {
	case "", "completed", "amended":
	default:
		return nil, echo.NewHTTPError(http.StatusUnprocessableEntity, map[string]any{"errors": apiErrors(baseWords, forms.FieldErrors{forms.Errorf("status", "intake.api.status")})})
	}
	if qr.Questionnaire != "" && !q.NamedBy(qr.Questionnaire) {
		return nil, echo.NewHTTPError(http.StatusUnprocessableEntity, map[string]any{"errors": apiErrors(baseWords, forms.FieldErrors{forms.Errorf("questionnaire", "intake.api.questionnaire")})})
	}
	raw, err := q.AnswersFromResponseItems(qr.Item)
	if err != nil {
		// The message describes the item tree's shape, never an answer.
		return nil, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	if claim := correctsFromExtensions(qr.Extension); claim != nil {
		if raw == nil {
			raw = map[string]json.RawMessage{}
		}
		raw[correctsKey] = claim
	}
	return raw, nil
}

package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/forms"
)

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

// handleSubmitJSON accepts a JSON object mapping linkId to answer, validates,
// seals and stores it, and answers 201 with the receipt.
func (s *Server) handleSubmitJSON(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	raw, err := decodeAnswers(c.Request().Body)
	if err != nil {
		return err
	}
	answers, ferrs := q.Validate(raw)
	if len(ferrs) > 0 {
		return c.JSON(http.StatusUnprocessableEntity, map[string]any{"errors": ferrs})
	}
	row, receipt, err := s.sealer.SealSubmission(q, answers)
	if err != nil {
		return err
	}
	if err := s.store.InsertSubmission(c.Request().Context(), row); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"receipt": receipt})
}

// decodeAnswers reads exactly one JSON object of linkId -> raw answer.
func decodeAnswers(body io.Reader) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err // a *http.MaxBytesError becomes 413 in handleError
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "body must be a JSON object mapping linkId to answer")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "malformed JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "malformed JSON: data after the object")
	}
	return raw, nil
}

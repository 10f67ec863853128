package intake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
)

// Server is intake's HTTP layer: routes, middleware and error mapping. Echo
// stays inside this file and the handle_*.go files.
type Server struct {
	Echo    *echo.Echo
	forms   *forms.Registry
	sealer  *Sealer
	store   *Store
	maxBody int64
	log     *slog.Logger
}

// NewServer builds the router over a store and a sealer.
func NewServer(cfg *Config, store *Store, log *slog.Logger) *Server {
	s := &Server{
		Echo:    echo.New(),
		forms:   cfg.Forms,
		sealer:  &Sealer{Recipient: cfg.Recipients[0], RowKey: cfg.RowKey, Now: time.Now},
		store:   store,
		maxBody: cfg.MaxBody,
		log:     log,
	}
	e := s.Echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(securityHeaders)
	e.Use(s.limitBody)

	e.GET("/healthz", s.handleHealth)
	e.GET("/api/v1/forms/:id", s.handleGetForm)
	e.POST("/api/v1/forms/:id/submissions", s.handleSubmitJSON)
	return s
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Content-Security-Policy", "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// limitBody refuses bodies over the limit with 413, whether announced in
// Content-Length or discovered while reading.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.maxBody {
			return errTooLarge
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, s.maxBody)
		return next(c)
	}
}

var errTooLarge = echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body is over the size limit")

// handleError maps every error to the contract's JSON shape. Internal details
// are logged, never shown.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = errTooLarge
	}
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		s.log.Error("request failed", "method", c.Request().Method, "route", c.Path(), "error", err.Error())
		he = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
	}
	msg, ok := he.Message.(string)
	if !ok {
		msg = http.StatusText(he.Code)
	}
	if he.Code == http.StatusNotFound && msg == "Not Found" {
		msg = "not found"
	}
	if err := c.JSON(he.Code, map[string]string{"error": msg}); err != nil {
		s.log.Error("write error response", "error", err.Error())
	}
}

func (s *Server) handleHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: database unreachable", "error", err.Error())
		return echo.NewHTTPError(http.StatusServiceUnavailable, "database unreachable")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Serve runs intake until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.CheckSchema(ctx, pool, migrations.Intake()); err != nil {
		return err
	}
	srv := NewServer(cfg, NewStore(pool), log)

	httpSrv := &http.Server{
		Handler:           srv.Echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if !cfg.PlainHTTP {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load INTAKE_TLS_CERT/INTAKE_TLS_KEY: %w", err)
		}
		httpSrv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			// TLS 1.2 suites: forward-secret AEADs only (TLS 1.3 suites are fixed by Go).
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
			},
		}
		ln = tls.NewListener(ln, httpSrv.TLSConfig)
	}
	log.Info("intake listening", "addr", ln.Addr().String(), "tls", !cfg.PlainHTTP,
		"recipient_key_id", cfg.Recipients[0].ID.String(), "forms", len(cfg.Forms.List()))

	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("intake stopped")
	return nil
}

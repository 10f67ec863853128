package intake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/acme"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/clientip"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
	"github.com/airlockhq/airlock/shared/ops"
	"github.com/airlockhq/airlock/shared/pg"
)

// Server is intake's HTTP layer: routes, middleware and error mapping. Echo
// stays inside this file and the handle_*.go files.
type Server struct {
	Echo        *echo.Echo
	forms       *forms.Registry
	sealer      *Sealer
	store       submissionStore
	maxBody     int64
	log         *slog.Logger
	limiter     *rateLimiter // nil when INTAKE_RATE_LIMIT is 0
	clients     clientip.Resolver
	metrics     *metrics
	csrf        csrfGuard
	replay      replayer
	receipts    receiptSealer
	attachments attachmentPolicy
	pages       pages
	catalogue   *locale.Catalogue
	// results and birthDateLimiter serve one-time result links
	// (handle_results.go).
	results          *ResultStore
	birthDateLimiter *rateLimiter
	ready            http.Handler // /readyz: the database answers
}

// NewServer builds the router over a store and a sealer.
func NewServer(cfg *Config, store *Store, log *slog.Logger) *Server {
	// Every line logged with a request's context names its request id.
	log = slog.New(ops.WithRequestID(log.Handler()))
	maxAttachment := cfg.MaxAttachment
	if maxAttachment <= 0 {
		maxAttachment = DefaultMaxAttachment
	}
	types := cfg.AttachmentTypes
	if len(types) == 0 {
		types = DefaultAttachmentTypes
	}
	s := &Server{
		Echo:        echo.New(),
		forms:       cfg.Forms,
		sealer:      NewSealer(cfg.Recipients[0], cfg.RowKey),
		store:       store,
		maxBody:     cfg.MaxBody,
		log:         log,
		limiter:     newRateLimiter(cfg.RateLimit, RateBurst, cfg.RateLimitGlobal),
		clients:     clientip.Resolver{Trusted: cfg.TrustedProxies},
		csrf:        csrfGuard{key: csrfKey(cfg.RowKey)},
		replay:      newReplayer(cfg.RowKey),
		receipts:    newReceiptSealer(cfg.RowKey),
		attachments: attachmentPolicy{maxSize: min(maxAttachment, cfg.MaxBody), allowed: types},
		pages:       loadPages(locale.Default()),
		catalogue:   locale.Default(),
	}
	if store != nil {
		s.results = store.Results()
	}
	if cfg.Forms != nil {
		// A form's translation into a language intake has no messages for
		// is not offered (the page around it would be in another
		// language): say so once, so the clinic knows to add the catalogue.
		for _, q := range cfg.Forms.List() {
			for _, tag := range q.Languages()[1:] {
				if !s.catalogue.Supports(tag) {
					log.Warn("form translation not offered: intake has no messages in its language (docs/intake.md, Adding a language)",
						"form", q.ID, "language", tag.String())
				}
			}
		}
	}
	s.birthDateLimiter = newRateLimiter(birthDatePerMinute, birthDateBurst, 0)
	s.metrics = newMetrics(s.limiter)
	s.ready = ops.Ready(log, ops.Probe{Name: "intake database", Check: store.Ping})
	e := s.Echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Echo's own default logger is never used: nothing about clients is logged.
	e.Pre(echo.WrapMiddleware(ops.RequestID))
	e.Use(securityHeaders)
	e.Use(s.observe)
	e.Use(s.recoverPanic)
	e.Use(s.limitRate)
	e.Use(s.limitBody)

	e.GET("/", s.handleIndex)
	e.GET("/forms/:id", s.handleFormPage)
	e.POST("/forms/:id", s.handleFormSubmit)
	e.GET("/forms/:id/sent", s.handleReceiptPage)
	e.POST("/forms/:id/sent", s.handleReceiptDone)
	e.GET("/static/intake.css", s.handleCSS)
	e.GET("/livez", echo.WrapHandler(ops.Live()))
	e.GET("/readyz", echo.WrapHandler(s.ready))
	e.GET("/healthz", echo.WrapHandler(s.ready)) // the name before /readyz
	e.GET("/api/v1/forms/:id", s.handleGetForm)
	e.POST("/api/v1/forms/:id/submissions", s.handleSubmitJSON)
	e.GET("/r/:token", s.handleResultPage)
	e.POST("/r/:token", s.handleResultDownload)
	return s
}

// submissionStore is what the handlers need of a Store; the fuzz tests
// put a stand-in here so they run without a database.
type submissionStore interface {
	StoreSubmission(ctx context.Context, r *SealedRow) error
	Ping(ctx context.Context) error
}

// MetricsHandler serves /metrics, /livez and /readyz. Serve puts it on its
// own listener (INTAKE_METRICS_ADDR), never on the public one.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	ops.HandleHealth(mux, s.ready)
	return mux
}

// contentSecurityPolicy allows the one stylesheet and nothing else: no
// script at all, no inline style, no plugins, no framing, forms only to
// intake itself.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries, errors and 404s
// included (echo runs this middleware for unmatched routes too).
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		// The same value slices for every response, where Set would
		// canonicalise each name and allocate each slice anew. Sharing
		// them is safe: nothing writes into a header's slice (Set
		// replaces it, and Add appends to a full slice, which copies).
		for name, values := range securityHeaderValues {
			h[name] = values
		}
		return next(c)
	}
}

// securityHeaderValues are the headers securityHeaders sets, by canonical
// name, each slice full to its capacity.
var securityHeaderValues = func() http.Header {
	h := http.Header{}
	h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	h.Set("Cache-Control", "no-store")
	for name, values := range h {
		h[name] = slices.Clip(values)
	}
	return h
}()

// recoverPanic turns a panic into a 500 and logs where it happened, never
// the request.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.ErrorContext(c.Request().Context(), "panic in handler", "route", c.Path(), "stack", string(debug.Stack()))
				err = errors.New("panic")
			}
		}()
		return next(c)
	}
}

// observe records request durations and submission outcomes. It maps the
// error itself so that the status it records is the one sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" || strings.Contains(route, "*") {
			route = "unmatched"
		}
		method := c.Request().Method
		s.metrics.duration.WithLabelValues(route, ops.MethodLabel(method), strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		if method == http.MethodPost {
			channel := ""
			switch route {
			case "/forms/:id":
				channel = "html"
			case "/api/v1/forms/:id/submissions":
				channel = "api"
			}
			if channel != "" {
				// Only known form ids become label values; anything else
				// a client typed into the URL is counted as "unknown".
				form := "unknown"
				if q, ok := s.forms.Get(c.Param("id")); ok {
					form = q.ID
				}
				s.metrics.submission(form, channel, status)
			}
		}
		return nil
	}
}

var errRateLimited = echo.NewHTTPError(http.StatusTooManyRequests, "too many submissions from your address: wait before sending again")

// limitRate applies the per-client and global limits to submissions (every
// POST). Reading a form is not limited.
func (s *Server) limitRate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.limiter == nil || c.Request().Method != http.MethodPost {
			return next(c)
		}
		ok, wait, by := s.limiter.allow(clientAddr(s.clients, c.Request()), time.Now())
		if !ok {
			s.metrics.rateLimited.WithLabelValues(string(by)).Inc()
			c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
			return errRateLimited
		}
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

// isAPI tells JSON routes from pages: errors answer in the route's kind.
func isAPI(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/healthz"
}

// handleError maps every error to the contract's JSON shape on API routes
// and to an HTML page elsewhere. Internal details are logged, never shown.
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
		s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "route", c.Path(), "error", err.Error())
		he = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
	}
	if body, ok := he.Message.(map[string]any); ok && isAPI(c.Request().URL.Path) {
		// A structured body, such as {"errors":[...]} for a 422.
		if err := c.JSON(he.Code, body); err != nil {
			s.log.ErrorContext(c.Request().Context(), "write error response", "error", err.Error())
		}
		return
	}
	msg, ok := he.Message.(string)
	if !ok {
		msg = http.StatusText(he.Code)
	}
	if he.Code == http.StatusNotFound && msg == "Not Found" {
		msg = "not found"
	}
	if isAPI(c.Request().URL.Path) {
		if err := c.JSON(he.Code, map[string]string{"error": msg}); err != nil {
			s.log.ErrorContext(c.Request().Context(), "write error response", "error", err.Error())
		}
		return
	}
	if err := s.render(c, he.Code, "error", s.errorPage(c, he.Code)); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write error page", "error", err.Error())
	}
}

// errorPage words an error for a person, in the language of the form the
// request was for (or of the site).
func (s *Server) errorPage(c echo.Context, code int) errorPage {
	offered := s.siteLanguages()
	q, isForm := s.forms.Get(c.Param("id"))
	if isForm {
		offered = s.formLanguages(q)
	}
	pr := s.printerFor(c, offered)
	p := errorPage{page: s.newPage(pr, "", nil, ""), Back: withLang("/", pr), BackText: pr.T("intake.error.back_list")}
	switch code {
	case http.StatusNotFound:
		p.Title, p.Message = pr.T("intake.error.not_found.title"), pr.T("intake.error.not_found")
	case http.StatusForbidden:
		p.Title, p.Message = pr.T("intake.error.not_sent.title"), pr.T("intake.error.csrf")
		if isForm {
			p.Back, p.BackText = withLang("/forms/"+q.ID, pr), pr.T("intake.error.back_form")
		}
	case http.StatusTooManyRequests:
		p.Title = pr.T("intake.error.rate.title")
		p.Message = pr.T("intake.error.rate")
		if ra, err := strconv.Atoi(c.Response().Header().Get("Retry-After")); err == nil {
			p.Message = pr.T("intake.error.rate_wait", ra)
		}
		p.Back = ""
	case http.StatusRequestEntityTooLarge:
		p.Title = pr.T("intake.error.too_large.title")
		p.Message = pr.T("intake.error.too_large", formatSize(s.maxBody))
		p.Back = ""
	case http.StatusMethodNotAllowed:
		p.Title, p.Message = pr.T("intake.error.method.title"), pr.T("intake.error.method")
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		p.Title, p.Message = pr.T("intake.error.unreadable.title"), pr.T("intake.error.unreadable")
	default:
		p.Title, p.Message = pr.T("intake.error.internal.title"), pr.T("intake.error.internal")
	}
	return p
}

// Server timeouts. Reading may take a while, since a patient on a slow
// mobile link may upload several megabytes, but never for ever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	writeTimeout      = readTimeout + 30*time.Second
	idleTimeout       = 2 * time.Minute
)

// Serve runs intake until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, int32(cfg.DBMaxConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.CheckSchema(ctx, pool, migrations.Intake()); err != nil {
		return err
	}
	// A login that could read submissions back, or cannot store them, is a
	// deployment mistake: refuse to start rather than serve 500s or hold
	// more than a public server may.
	if err := ops.RequireGrants(ctx, pool, "airlock_intake_writer", writerGrants); err != nil {
		return fmt.Errorf("INTAKE_DATABASE_URL: %w", err)
	}
	srv := NewServer(cfg, NewStore(pool), log)

	httpSrv := &http.Server{
		Handler:           srv.Echo,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          serverErrorLog(log),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if !cfg.PlainHTTP {
		var getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
		var nextProtos []string
		if cfg.ACME != nil {
			m := cfg.ACME.manager()
			getCertificate = acmeGetCertificate(m, cfg.ACME.Domains, log)
			// acme-tls/1: the ACME server's TLS-ALPN-01 check on this port.
			nextProtos = []string{"h2", "http/1.1", acme.ALPNProto}
		} else {
			certs, err := newCertLoader(cfg.TLSCert, cfg.TLSKey, log)
			if err != nil {
				ln.Close()
				return err
			}
			getCertificate = certs.getCertificate
		}
		httpSrv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: getCertificate,
			NextProtos:     nextProtos,
			// TLS 1.2 suites: forward-secret AEADs only (TLS 1.3 suites are fixed by Go).
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
			},
		}
	}

	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		metricsLn, err = net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on INTAKE_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		metricsSrv = &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          serverErrorLog(log),
		}
	}
	log.Info("intake listening", "addr", ln.Addr().String(), "tls", !cfg.PlainHTTP, "acme", cfg.ACME != nil,
		"recipient_key_id", cfg.Recipients[0].ID.String(), "forms", len(cfg.Forms.List()),
		"rate_limit", cfg.RateLimit, "metrics", metricsAddr(metricsLn))

	errc := make(chan error, 2)
	go func() {
		if cfg.PlainHTTP {
			errc <- httpSrv.Serve(ln)
		} else {
			// ServeTLS with the certificate in TLSConfig also enables
			// HTTP/2.
			errc <- httpSrv.ServeTLS(ln, "", "")
		}
	}()
	if metricsSrv != nil {
		go func() { errc <- metricsSrv.Serve(metricsLn) }()
	}
	select {
	case err := <-errc:
		httpSrv.Close()
		if metricsSrv != nil {
			metricsSrv.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if metricsSrv != nil {
		metricsSrv.Shutdown(shutdownCtx)
	}
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("intake stopped")
	return nil
}

func metricsAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// addrInLog matches the IPv4 and IPv6 addresses (with or without a port)
// that net/http puts into its own error lines ("http: TLS handshake error
// from 192.0.2.1:5555: ...", "http2: ... from client [2001:db8::1]:443"):
// they must not reach the logs.
var addrInLog = regexp.MustCompile(`\[[0-9a-fA-F:.%a-zA-Z]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}\b`)

// redactAddrs replaces every network address in a log line.
func redactAddrs(s string) string {
	return addrInLog.ReplaceAllString(s, "[client]")
}

// serverErrorLog sends net/http's own messages to slog with client
// addresses removed.
func serverErrorLog(l *slog.Logger) *log.Logger {
	return log.New(redactingWriter{l}, "", 0)
}

type redactingWriter struct{ l *slog.Logger }

func (w redactingWriter) Write(p []byte) (int, error) {
	msg := redactAddrs(strings.TrimSpace(string(p)))
	w.l.Warn("http server", "error", msg)
	return len(p), nil
}

package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/ops"
	"github.com/airlockhq/airlock/shared/pg"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names. The __Host- prefix makes the browser insist on Secure,
// Path=/ and no Domain, so no other host or path can set or shadow them.
const (
	sessionCookie = "__Host-airlock-session"
	preCookie     = "__Host-airlock-pre" // binds the login form's CSRF token
)

// tokenLen is the length of an encoded 256-bit token.
const tokenLen = 43

func encodeToken(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// Server is the staff web app: routes, authorisation, rendering and error
// mapping. Echo stays inside this file and the handle_*.go files.
type Server struct {
	Echo     *echo.Echo
	accounts *Accounts
	subs     *Submissions
	searches *SavedSearches
	audit    *Audit
	exporter *Exporter
	forms    *forms.Registry
	pool     *pgxpool.Pool
	log      *slog.Logger
	now      func() time.Time
	csrfKey  []byte
	// exportKey signs export tickets (handle_export.go).
	exportKey []byte
	pages     map[string]*template.Template
	// results publishes one-time result links to intakeURL
	// (CLINICAL_INTAKE_URL; "" turns publishing off).
	results   *Results
	intakeURL string
	metrics   *metrics
	ready     http.Handler // /readyz: the database answers
}

// NewServer builds the router. now is the clock (tests move it).
func NewServer(cfg *ServeConfig, pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) *Server {
	// Every line logged with a request's context names its request id.
	log = slog.New(ops.WithRequestID(log.Handler()))
	audit := NewAudit(pool, cfg.SecretKey)
	audit.now = now
	accounts := NewAccounts(pool, audit, cfg.SecretKey, NewPasswords(cfg.Argon2), now)
	accounts.SessionIdle, accounts.SessionMax = cfg.SessionIdle, cfg.SessionMax
	s := &Server{
		Echo:      echo.New(),
		accounts:  accounts,
		subs:      NewSubmissions(pool, cfg.SecretKey, now),
		searches:  NewSavedSearches(pool, cfg.SecretKey, now),
		audit:     audit,
		exporter:  &Exporter{Pool: pool, Audit: audit, Forms: cfg.Forms},
		forms:     cfg.Forms,
		pool:      pool,
		log:       log,
		now:       now,
		csrfKey:   cfg.SecretKey.derive("csrf v1"),
		exportKey: cfg.SecretKey.derive("export ticket v1"),
		pages:     parsePages(),
		metrics:   newMetrics(pool, log),
	}
	if cfg.Forms != nil {
		s.subs.UseForms(cfg.Forms)
	}
	s.results, s.intakeURL = NewResults(pool, now), cfg.IntakeURL
	audit.appended = func(n int) { s.metrics.auditAppends.Add(float64(n)) }
	s.ready = ops.Ready(log, ops.Probe{Name: "clinical database", Check: pool.Ping})
	e := s.Echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Throttling counts the client address: the TCP peer, or behind a
	// proxy listed in CLINICAL_TRUSTED_PROXIES, the address it forwards.
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}))
	e.Pre(echo.WrapMiddleware(ops.RequestID))
	e.Use(securityHeaders)
	e.Use(s.observe)
	e.Use(limitBody)

	e.GET("/livez", echo.WrapHandler(ops.Live()))
	e.GET("/readyz", echo.WrapHandler(s.ready))
	e.GET("/healthz", echo.WrapHandler(s.ready)) // the name before /readyz
	static, _ := fs.Sub(staticFS, "static")
	files := noListing(http.FileServer(http.FS(static)))
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", files)))
	// Browsers ask for /favicon.ico on their own; it is one of the static
	// files, so nothing is fetched from elsewhere.
	e.GET("/favicon.ico", echo.WrapHandler(http.StripPrefix("/", files)))

	s.route(http.MethodGet, "/login", anyone, s.handleLoginPage)
	s.route(http.MethodPost, "/login", anyone, s.handleLogin)
	s.route(http.MethodGet, "/enrol", anyone, s.handleEnrolPage)
	s.route(http.MethodPost, "/enrol/start", anyone, s.handleEnrolStart)
	s.route(http.MethodGet, "/enrol/qr.png", enrolling, s.handleEnrolQR)
	s.route(http.MethodPost, "/enrol", enrolling, s.handleEnrol)
	s.route(http.MethodPost, "/logout", loggedIn, s.handleLogout)
	s.route(http.MethodPost, "/logout-everywhere", loggedIn, s.handleLogoutEverywhere)
	s.route(http.MethodGet, "/", loggedIn, s.handleHome)

	s.route(http.MethodGet, "/submissions", reader, s.handleList)
	s.route(http.MethodPost, "/submissions", reader, s.handleSearch)
	s.route(http.MethodGet, "/submissions/:id", reader, s.handleDetail)
	s.route(http.MethodPost, "/submissions/:id/status", clinician, s.handleStatus)
	s.route(http.MethodPost, "/submissions/:id/notes", clinician, s.handleNote)
	s.route(http.MethodPost, "/submissions/:id/accept-correction", clinician, s.handleAcceptCorrection)
	s.route(http.MethodGet, "/submissions/:id/attachments/:item/:n", clinician, s.handleAttachment)
	s.route(http.MethodPost, "/submissions/:id/results", clinician, s.handlePublishResult)
	s.route(http.MethodPost, "/submissions/:id/results/:rid/withdraw", clinician, s.handleWithdrawResult)
	s.route(http.MethodPost, "/export", clinician, s.handleExport)
	s.route(http.MethodGet, "/export/ready", clinician, s.handleExportReady)
	s.route(http.MethodGet, "/export/file", clinician, s.handleExportFile)

	s.route(http.MethodGet, "/admin/staff", admin, s.handleStaffPage)
	s.route(http.MethodPost, "/admin/staff", admin, s.handleStaffCreate)
	s.route(http.MethodPost, "/admin/staff/:sid/approve", admin, s.handleStaffApprove)
	s.route(http.MethodPost, "/admin/staff/:sid/roles", admin, s.handleStaffRoles)
	s.route(http.MethodPost, "/admin/staff/:sid/disable", admin, s.handleStaffDisable)
	s.route(http.MethodPost, "/admin/staff/:sid/reset", admin, s.handleStaffReset)
	s.route(http.MethodGet, "/admin/audit", admin, s.handleAuditPage)
	s.route(http.MethodPost, "/admin/audit/verify", admin, s.handleAuditVerify)
	s.route(http.MethodGet, "/admin/erase", admin, s.handleErasePage)
	s.route(http.MethodPost, "/admin/erase", admin, s.handleErase)
	return s
}

// access is what a route requires.
type access int

const (
	anyone    access = iota // the login and enrolment-start pages
	enrolling               // an enrolment session (after the enrolment codes)
	loggedIn                // any full session
	reader                  // a full session of a clinician or viewer
	clinician               // a full session of a clinician
	admin                   // a full session of an admin
)

func (a access) role() string {
	switch a {
	case clinician:
		return RoleClinician
	case admin:
		return RoleAdmin
	}
	return ""
}

// handler is a route handler; sess is nil only on anyone routes.
type handler func(c echo.Context, sess *Session) error

// route registers a handler behind its checks, in this order: the session
// (401), the CSRF token of a state-changing request (403), the role (403,
// audited). No handler runs without passing all three.
func (s *Server) route(method, path string, need access, h handler) {
	s.Echo.Add(method, path, func(c echo.Context) error {
		sess, err := s.session(c)
		if err != nil {
			return err
		}
		switch {
		case need == anyone:
		case sess == nil:
			return errSessionExpired
		case need == enrolling && sess.Stage != StageEnrol:
			return c.Redirect(http.StatusSeeOther, "/")
		case need != enrolling && sess.Stage != StageFull:
			if method == http.MethodGet {
				return c.Redirect(http.StatusSeeOther, "/enrol")
			}
			return errorf(CodeForbidden, "Finish setting up your account first.")
		}
		if method != http.MethodGet && method != http.MethodHead && !s.validCSRF(c, sess) {
			return errorf(CodeForbidden, "The form has expired or did not come from this site. Go back, reload the page and try again.")
		}
		if sess != nil && !allowed(sess.Staff, need) {
			detail := map[string]any{"route": path, "method": method}
			if _, err := s.audit.Append(c.Request().Context(), sess.Staff.Actor(), "access.denied", targetOf(c), detail); err != nil {
				return err
			}
			return errForbidden
		}
		return h(c, sess)
	})
}

func allowed(st *Staff, need access) bool {
	switch need {
	case reader:
		return st.ReadsData()
	case clinician, admin:
		return st.Has(need.role())
	}
	return true
}

// targetOf names the object a denied request aimed at, by its opaque id.
func targetOf(c echo.Context) string {
	if id := c.Param("id"); uuidPattern.MatchString(id) {
		return "submission-ref:" + id
	}
	if sid := c.Param("sid"); sid != "" && len(sid) < 20 {
		return "staff:" + sid
	}
	return ""
}

// session returns the request's session, nil when there is none. An unknown,
// expired or idle session is nil too: the route decides whether it needs one.
func (s *Server) session(c echo.Context) (*Session, error) {
	if v, ok := c.Get("session").(*Session); ok {
		return v, nil
	}
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	sess, err := s.accounts.Session(c.Request().Context(), ck.Value)
	if codeOf(err) == CodeUnauthorised {
		clearCookie(c, sessionCookie)
		c.Set("expired", true)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Set("session", sess)
	return sess, nil
}

func setCookie(c echo.Context, name, value string) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// csrfToken is the token forms carry: an HMAC of the session token's hash
// (or, before login, of the pre-login cookie), so it changes with every
// session and needs no storage.
func (s *Server) csrfToken(c echo.Context, sess *Session) string {
	m := hmac.New(sha256.New, s.csrfKey)
	if sess != nil {
		m.Write([]byte("session\x00"))
		m.Write(sess.TokenHash)
	} else {
		pre, err := c.Cookie(preCookie)
		var v string
		if err == nil && len(pre.Value) == tokenLen {
			v = pre.Value
		} else {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return ""
			}
			v = encodeToken(raw)
			setCookie(c, preCookie, v)
		}
		m.Write([]byte("pre\x00" + v))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// postValue reads a form field from the request body only. Echo's
// FormValue also reads the URL's query string, where a token or a password
// would end up in logs, history and Referer headers.
func postValue(c echo.Context, name string) string {
	return c.Request().PostFormValue(name)
}

func (s *Server) validCSRF(c echo.Context, sess *Session) bool {
	got := postValue(c, "csrf")
	if got == "" {
		return false
	}
	m := hmac.New(sha256.New, s.csrfKey)
	if sess != nil {
		m.Write([]byte("session\x00"))
		m.Write(sess.TokenHash)
	} else {
		pre, err := c.Cookie(preCookie)
		if err != nil || len(pre.Value) != tokenLen {
			return false
		}
		m.Write([]byte("pre\x00" + pre.Value))
	}
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(got), []byte(want))
}

// securityHeaders sets the headers every response carries. The CSP allows
// no script at all and styles only from this origin (the one stylesheet).
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "+
			"script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if p := c.Request().URL.Path; strings.HasPrefix(p, "/static/") || p == "/favicon.ico" {
			// The stylesheet and icons carry nothing private: caching them
			// for a day spares a request per page.
			h.Set("Cache-Control", "public, max-age=86400")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// maxBody bounds request bodies: staff forms are small.
const maxBody = 1 << 20

func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		limit := int64(maxBody)
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/results") {
			limit = maxResultBody // publishing a result uploads a document
		}
		if req.ContentLength > limit {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large.")
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
		return next(c)
	}
}

// handleError maps every error to a status and an HTML page, in one place:
// 401 shows the login page, the rest an error page with a safe message.
// Internal details are logged, never shown.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		if !errors.Is(err, context.Canceled) {
			s.log.ErrorContext(c.Request().Context(), "request failed after the response started", "method", c.Request().Method, "route", c.Path(), "error", err.Error())
		}
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong. Try again, and tell your administrator if it keeps happening."
	var de *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &de):
		status, msg = statusOf(de.Code), de.Msg
		s.retryAfter(c, de.Code)
	case errors.As(err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, "The request is too large."
	case errors.As(err, &he):
		status = he.Code
		msg = http.StatusText(he.Code) + "."
		if m, ok := he.Message.(string); ok && he.Code != http.StatusNotFound {
			msg = m
		}
		if he.Code == http.StatusNotFound {
			msg = "There is no page at this address: it may have been mistyped, or what it showed has been erased."
		}
	default:
		s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "route", c.Path(), "error", err.Error())
	}
	if c.Request().URL.Path == "/healthz" {
		_ = c.JSON(status, map[string]string{"error": msg})
		return
	}
	if status == http.StatusUnauthorized {
		if de == errSessionExpired {
			// No session, or one that ended: nothing went wrong, so the
			// login page says it in the neutral style.
			info := "Please log in."
			if c.Get("expired") == true {
				info = errSessionExpired.Msg
			}
			s.renderLoginPage(c, status, "", info)
			return
		}
		s.renderLogin(c, status, msg)
		return
	}
	sess, _ := c.Get("session").(*Session)
	if sess == nil && status < http.StatusInternalServerError {
		// A path no route matched never loaded the session: load it, so a
		// 404 shows the navigation like every other page.
		if got, err := s.session(c); err == nil && got != nil && got.Stage == StageFull {
			sess = got
		}
	}
	if err := s.render(c, status, "error", sess, &page{Title: http.StatusText(status), Error: msg}); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write error page", "error", err.Error())
	}
}

// retryAfter tells a refused client when trying again makes sense.
func (s *Server) retryAfter(c echo.Context, code ErrorCode) {
	switch code {
	case CodeBusy:
		c.Response().Header().Set("Retry-After", "2")
	case CodeThrottled:
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(s.accounts.ThrottleWindow.Seconds())))
	}
}

// errPanic replaces a recovered panic's value, which may hold anything
// (patient data included), so neither the log nor the page repeats it.
var errPanic = errors.New("handler panicked (recovered)")

// logPanic logs a recovered panic by route and stack (function names and
// lines, no values) and has handleError answer 500.
func (s *Server) logPanic(c echo.Context, _ error, stack []byte) error {
	s.log.ErrorContext(c.Request().Context(), "panic recovered", "method", c.Request().Method, "route", c.Path(), "stack", string(stack))
	return errPanic
}

// noListing answers 404 for a directory, so /static/ lists nothing.
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// MetricsHandler serves /metrics, /livez and /readyz. Serve puts it on its
// own listener (CLINICAL_METRICS_ADDR), never on the staff app's.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	ops.HandleHealth(mux, s.ready)
	return mux
}

// page is what every template gets.
type page struct {
	Title  string
	Staff  *Staff
	CSRF   string
	Error  string // what went wrong, in the error style
	Info   string // a neutral message ("You are logged out.")
	Notice string
	Data   any
	// Enrolling is an enrolment session: the header offers no navigation
	// and no logout, since every other page sends the user back to /enrol
	// (the enrolment codes are used up, so leaving would need new ones).
	Enrolling bool
}

func (s *Server) render(c echo.Context, status int, name string, sess *Session, p *page) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("no template %q", name)
	}
	if sess != nil {
		p.Staff = sess.Staff
		p.Enrolling = sess.Stage == StageEnrol
	}
	p.CSRF = s.csrfToken(c, sess)
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return c.HTML(status, b.String())
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"statusLabel":      statusLabel,
		"resultStateLabel": resultStateLabel,
		"resultsArgs": func(r *resultsView, d *Detail, csrf string, st *Staff) map[string]any {
			return map[string]any{"R": r, "D": d, "CSRF": csrf, "Staff": st}
		},
		"has":   func(st *Staff, role string) bool { return st != nil && st.Has(role) },
		"reads": func(st *Staff) bool { return st != nil && st.ReadsData() },
		"join":  strings.Join,
		"add":   func(a, b int) int { return a + b },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return pages
}

func statusLabel(s string) string {
	switch s {
	case ReviewNew:
		return "New"
	case ReviewInReview:
		return "In review"
	case ReviewDone:
		return "Done"
	case ReviewArchived:
		return "Archived"
	}
	return s
}

// Serve runs the staff app until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, cfg *ServeConfig, log *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, 16)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.CheckSchema(ctx, pool, migrations.Clinical()); err != nil {
		return err
	}
	srv := NewServer(cfg, pool, log, time.Now)
	httpSrv := &http.Server{
		Handler:           srv.Echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // exports stream
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	useTLS := cfg.TLSCert != ""
	if useTLS {
		cert := cfg.Certificate
		if cert == nil { // a ServeConfig built without LoadServeConfig
			c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				ln.Close()
				return fmt.Errorf("load CLINICAL_TLS_CERT/CLINICAL_TLS_KEY: %w", err)
			}
			cert = &c
		}
		httpSrv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*cert},
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
			},
		}
		ln = tls.NewListener(ln, httpSrv.TLSConfig)
	}
	var metricsSrv *http.Server
	metricsAddr := ""
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on CLINICAL_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		metricsAddr = mln.Addr().String()
		metricsSrv = &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go metricsSrv.Serve(mln)
		defer metricsSrv.Close()
	}
	srv.logAuditHead(ctx) // the head at start-up, then every AuditHeadInterval
	log.Info("clinical listening", "addr", ln.Addr().String(), "tls", useTLS, "metrics", metricsAddr)

	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		srv.runJobs(jobsCtx, cfg)
	}()

	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		stopJobs()
		<-jobsDone
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = httpSrv.Shutdown(shutdownCtx)
	stopJobs()
	<-jobsDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("clinical stopped")
	return nil
}

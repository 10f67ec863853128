package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
)

// Probe is one condition of readiness, such as "intake database reachable".
// Check returns nil when the condition holds; its error is logged, never
// shown to the caller (it may name hosts or users).
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// probeTimeout bounds each readiness probe.
const probeTimeout = 2 * time.Second

// Live is /livez: 200 while the process can answer at all. It checks
// nothing else, so an orchestrator restarts only a wedged process, never one
// whose database is briefly away.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Ready is /readyz (and the older /healthz): 200 when every probe passes,
// else 503 naming the first that failed. Probes run in order, each with its
// own timeout.
func Ready(log *slog.Logger, probes ...Probe) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range probes {
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			err := p.Check(ctx)
			cancel()
			if err != nil {
				if log != nil {
					log.WarnContext(r.Context(), "readiness: "+p.Name+" failed", "error", err.Error())
				}
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not ready: " + p.Name})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// HandleHealth registers /livez, /readyz and /healthz (an alias of /readyz)
// on a ServeMux such as a metrics listener's.
func HandleHealth(mux *http.ServeMux, ready http.Handler) {
	mux.Handle("GET /livez", Live())
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /healthz", ready)
}

// HealthcheckTimeout bounds the whole request of `healthcheck`.
const HealthcheckTimeout = 5 * time.Second

// Healthcheck is the `healthcheck [URL]` subcommand: GET the URL (by default
// /readyz on the address in addrVar, the service's internal metrics
// listener) and exit 0 on 200, 1 otherwise. It is what a container
// healthcheck runs in a distroless image, which has no curl.
func Healthcheck(ctx context.Context, env cli.Env, program, addrVar string) error {
	args := env.Args[1:]
	var target string
	switch len(args) {
	case 0:
		addr := strings.TrimSpace(env.Getenv(addrVar))
		if addr == "" {
			return cli.Usagef("%s: %s healthcheck needs it set (the internal listener that serves /readyz), or a URL argument", addrVar, program)
		}
		u, err := localURL(addr)
		if err != nil {
			return cli.Usagef("%s: %v", addrVar, err)
		}
		target = u
	case 1:
		u, err := url.Parse(args[0])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cli.Usagef("%s healthcheck: the argument must be an http:// or https:// URL such as http://127.0.0.1:9464/readyz", program)
		}
		target = u.String()
	default:
		return cli.Usagef("%s healthcheck: unexpected argument %q", program, args[1])
	}
	ctx, cancel := context.WithTimeout(ctx, HealthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return cli.Usagef("%s healthcheck: %v", program, err)
	}
	client := &http.Client{Timeout: HealthcheckTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: status %d", target, resp.StatusCode)
	}
	fmt.Fprintf(env.Stdout, "ok %s\n", target)
	return nil
}

// localURL turns a listen address into the /readyz URL on this host: an
// empty or wildcard host becomes loopback.
func localURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("must be host:port with a fixed port for healthcheck")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

package intake

import (
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/airlockhq/airlock/shared/clientip"
	"golang.org/x/time/rate"
)

// Limits of the per-client table, so a flood from many addresses cannot
// grow it without bound.
const (
	// maxClients bounds the table; beyond it (after evicting idle entries)
	// new clients meet only the global ceiling.
	maxClients = 100_000
	// sweepEvery is how often idle entries are evicted.
	sweepEvery = time.Minute
)

// rateLimiter applies the per-client token bucket and the global ceiling to
// submissions. Client addresses live only in this in-memory table, keyed by
// address (IPv6 by /64, the block one subscriber normally holds); they are
// never logged or stored.
type rateLimiter struct {
	perClient rate.Limit
	burst     int
	global    *rate.Limiter // nil: no global ceiling
	idleAfter time.Duration // an entry idle this long has a full bucket again

	mu        sync.Mutex
	clients   map[netip.Addr]*clientEntry
	lastSweep time.Time
}

type clientEntry struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// newRateLimiter returns nil when perMinute is 0: limiting is off.
func newRateLimiter(perMinute, burst, globalPerMinute int) *rateLimiter {
	if perMinute <= 0 {
		return nil
	}
	rl := &rateLimiter{
		perClient: rate.Limit(float64(perMinute) / 60),
		burst:     burst,
		clients:   make(map[netip.Addr]*clientEntry),
		lastSweep: time.Now(),
	}
	// Time to refill a whole bucket, plus a margin.
	rl.idleAfter = time.Duration(float64(burst)/float64(rl.perClient)*float64(time.Second)) + time.Minute
	if globalPerMinute > 0 {
		rl.global = rate.NewLimiter(rate.Limit(float64(globalPerMinute)/60), max(burst, globalPerMinute/10))
	}
	return rl
}

// scope names which limit refused a request, for metrics.
type scope string

const (
	scopeClient scope = "client"
	scopeGlobal scope = "global"
)

// allow takes one token for client from its bucket and from the global
// ceiling. When either is empty it takes nothing and says how long to wait.
func (rl *rateLimiter) allow(client netip.Addr, now time.Time) (ok bool, retryAfter time.Duration, by scope) {
	var own *rate.Reservation
	if lim := rl.limiterFor(client, now); lim != nil {
		own = lim.ReserveN(now, 1)
		if d := own.DelayFrom(now); d > 0 {
			own.CancelAt(now)
			return false, d, scopeClient
		}
	}
	if rl.global != nil {
		r := rl.global.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			if own != nil {
				own.CancelAt(now)
			}
			return false, d, scopeGlobal
		}
	}
	return true, 0, ""
}

func (rl *rateLimiter) limiterFor(client netip.Addr, now time.Time) *rate.Limiter {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if now.Sub(rl.lastSweep) >= sweepEvery {
		rl.sweep(now)
	}
	e := rl.clients[client]
	if e == nil {
		if len(rl.clients) >= maxClients {
			rl.sweep(now)
			if len(rl.clients) >= maxClients {
				return nil
			}
		}
		e = &clientEntry{lim: rate.NewLimiter(rl.perClient, rl.burst)}
		rl.clients[client] = e
	}
	e.lastSeen = now
	return e.lim
}

// sweep drops entries idle long enough that their bucket is full again, so
// forgetting them changes nothing.
func (rl *rateLimiter) sweep(now time.Time) {
	for k, e := range rl.clients {
		if now.Sub(e.lastSeen) > rl.idleAfter {
			delete(rl.clients, k)
		}
	}
	rl.lastSweep = now
}

// size is the number of clients tracked, for metrics.
func (rl *rateLimiter) size() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.clients)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// clientAddr returns the rate-limit key of a request: the client address
// (shared/clientip's rule), with IPv6 reduced to its /64.
func clientAddr(clients clientip.Resolver, r *http.Request) netip.Addr {
	return clientip.LimitKey(clients.Client(r))
}

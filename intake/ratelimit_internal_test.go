package intake

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestRateLimiterEvicts: idle clients are forgotten, so the table is bounded
// by recent activity, not by every address ever seen.
func TestRateLimiterEvicts(t *testing.T) {
	t.Parallel()
	rl := newRateLimiter(60, 20, 0)
	now := time.Now()
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		if ok, _, _ := rl.allow(a, now); !ok {
			t.Fatal("first submission refused")
		}
	}
	if n := rl.size(); n != 1000 {
		t.Fatalf("%d clients tracked, want 1000", n)
	}
	later := now.Add(rl.idleAfter + sweepEvery + time.Second)
	rl.allow(netip.MustParseAddr("203.0.113.1"), later)
	if n := rl.size(); n != 1 {
		t.Errorf("%d clients tracked after they went idle, want 1", n)
	}
	if newRateLimiter(0, 20, 6000) != nil {
		t.Error("INTAKE_RATE_LIMIT=0 still limits")
	}
}

// TestRedactAddrs: net/http's own error lines lose every client address.
func TestRedactAddrs(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		"http: TLS handshake error from 203.0.113.7:51234: EOF",
		"http2: server: error reading preface from client 203.0.113.7:443: bogus greeting",
		"http: TLS handshake error from [2001:db8::1]:51234: tls: first record does not look like a TLS handshake",
		"http: superfluous response.WriteHeader from 2001:db8:0:1::77",
		"http: Accept error: accept tcp [::]:8443: too many open files; retrying in 5ms",
	} {
		got := redactAddrs(line)
		for _, addr := range []string{"203.0.113.7", "2001:db8", "51234"} {
			if strings.Contains(got, addr) {
				t.Errorf("%q -> %q still holds %s", line, got, addr)
			}
		}
		if !strings.Contains(got, "[client]") {
			t.Errorf("%q -> %q", line, got)
		}
	}
}

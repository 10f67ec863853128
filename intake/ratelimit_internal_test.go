package intake

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestForwardedClient(t *testing.T) {
	t.Parallel()
	cr := clientResolver{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}}
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"no header: the peer", nil, "10.0.0.1"},
		{"one client", []string{"203.0.113.7"}, "203.0.113.7"},
		{"client-written entries to the left are ignored", []string{"192.0.2.1, 198.51.100.2, 203.0.113.7"}, "203.0.113.7"},
		{"trusted hops are skipped", []string{"203.0.113.7, 10.9.9.9, 10.8.8.8"}, "203.0.113.7"},
		{"several header lines", []string{"192.0.2.1", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"},
		{"garbage stops at the last good hop", []string{"203.0.113.7, Zq-garbage, 10.9.9.9"}, "10.9.9.9"},
		{"garbage from the proxy itself", []string{"Zq-garbage"}, "10.0.0.1"},
		{"only trusted hops", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"IPv4-mapped IPv6", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"IPv6 through a trusted IPv6 proxy", []string{"2001:db8:1::5, 2001:db8:ffff::1"}, "2001:db8:1::5"},
	}
	for _, tc := range cases {
		got := cr.forwardedClient(tc.values, netip.MustParseAddr("10.0.0.1"))
		if got.String() != tc.want {
			t.Errorf("%s: %v -> %s, want %s", tc.name, tc.values, got, tc.want)
		}
	}
}

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

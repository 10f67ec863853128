package clientip

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestForwardedClient: from a trusted proxy, the rightmost X-Forwarded-For
// entry that is not itself a trusted proxy.
func TestForwardedClient(t *testing.T) {
	t.Parallel()
	res := Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}}
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
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:40000"
		for _, v := range tc.values {
			r.Header.Add("X-Forwarded-For", v)
		}
		got := res.Client(r)
		if got.String() != tc.want {
			t.Errorf("%s: %v -> %s, want %s", tc.name, tc.values, got, tc.want)
		}
	}
}

// TestUntrustedPeerHeaderIgnored: a client that is not a trusted proxy
// cannot choose its own address by writing X-Forwarded-For.
func TestUntrustedPeerHeaderIgnored(t *testing.T) {
	t.Parallel()
	res := Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2::7]:40000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := res.Client(r); got.String() != "2001:db8:1:2::7" {
		t.Errorf("untrusted peer with X-Forwarded-For: %s, want the peer", got)
	}
	if got := (Resolver{}).Client(r); got.String() != "2001:db8:1:2::7" {
		t.Errorf("zero Resolver: %s, want the peer", got)
	}
	if LimitKey(netip.MustParseAddr("2001:db8:1:2:3::4")) != LimitKey(netip.MustParseAddr("2001:db8:1:2:ffff::9")) {
		t.Error("two addresses of one /64 have different limit keys")
	}
	if LimitKey(netip.MustParseAddr("203.0.113.9")).String() != "203.0.113.9" {
		t.Error("an IPv4 address is not its own limit key")
	}
}

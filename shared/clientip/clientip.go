// Package clientip finds the client address of an HTTP request behind
// trusted reverse proxies, the one rule intake's rate limits and clinical's
// login throttling share (docs/intake.md, "Client address").
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/airlockhq/airlock/shared/config"
)

// Resolver finds client addresses. The zero Resolver trusts no proxy: the
// TCP peer is the client.
type Resolver struct {
	// Trusted are the peers whose X-Forwarded-For is believed.
	Trusted []netip.Prefix
}

// Client returns the client address of r: the TCP peer, unless the peer is
// a trusted proxy; then the rightmost X-Forwarded-For address (all such
// headers, in order) that is not itself a trusted proxy. Entries left of it
// are the client's own writing and ignored; a malformed entry ends the walk
// at the last good hop. From an untrusted peer the header is ignored. The
// result is invalid only when RemoteAddr holds no address.
func (res Resolver) Client(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !res.trusts(peer) {
		return peer
	}
	return res.forwarded(r.Header.Values("X-Forwarded-For"), peer)
}

func (res Resolver) trusts(a netip.Addr) bool {
	for _, p := range res.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (res Resolver) forwarded(values []string, peer netip.Addr) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// Not written by a proxy we trust: stop at the last good hop.
				return client
			}
			client = a.Unmap()
			if !res.trusts(client) {
				return client
			}
		}
	}
	return client
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// LimitKey is the address a per-address limit counts: IPv6 by its /64, the
// block one subscriber normally holds, so a per-address limit is a limit.
func LimitKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.WithZone("")
}

// ReadTrusted reads the setting name: comma-separated IP addresses or CIDR
// prefixes of trusted proxies. A bad entry fails r naming the setting.
func ReadTrusted(r *config.Reader, name string) []netip.Prefix {
	var out []netip.Prefix
	for i, e := range r.List(name) {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				r.Fail(name, "entry %d is not an IP address or CIDR prefix such as 10.0.0.0/8", i+1)
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

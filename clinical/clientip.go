package clinical

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/config"
)

// clientIP returns the IP extractor behind c.RealIP(), which only login
// throttling uses. It follows intake's rule (docs/intake.md): the TCP peer,
// unless the peer is in trusted (CLINICAL_TRUSTED_PROXIES); then the
// rightmost X-Forwarded-For address (all such headers, in order) that is
// not itself a trusted proxy. Entries left of it are the client's own
// writing and ignored; a malformed entry ends the walk at the last good
// hop. From an untrusted peer the header is ignored entirely.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := peerAddr(r.RemoteAddr)
		if !peer.IsValid() {
			return r.RemoteAddr
		}
		client := peer
		if isTrusted(peer) {
			values := r.Header.Values("X-Forwarded-For")
		walk:
			for i := len(values) - 1; i >= 0; i-- {
				hops := strings.Split(values[i], ",")
				for j := len(hops) - 1; j >= 0; j-- {
					a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
					if err != nil {
						break walk
					}
					client = a.Unmap()
					if !isTrusted(client) {
						break walk
					}
				}
			}
		}
		return client.String()
	}
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

// throttleAddr is the address login throttling counts: IPv6 by /64, the
// block one subscriber normally holds, so a per-address limit is a limit.
func throttleAddr(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return addr
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// readTrustedProxies reads CLINICAL_TRUSTED_PROXIES: comma-separated IP
// addresses or CIDR prefixes.
func readTrustedProxies(r *config.Reader) []netip.Prefix {
	var out []netip.Prefix
	for i, e := range r.List("CLINICAL_TRUSTED_PROXIES") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				r.Fail("CLINICAL_TRUSTED_PROXIES", "entry %d is not an IP address or CIDR prefix such as 10.0.0.0/8", i+1)
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

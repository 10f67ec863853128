package clinical

import (
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/clientip"
)

// clientIP returns the IP extractor behind c.RealIP(), which only login
// throttling uses: intake's rule, from shared/clientip, with the proxies in
// CLINICAL_TRUSTED_PROXIES trusted.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	res := clientip.Resolver{Trusted: trusted}
	return func(r *http.Request) string {
		if a := res.Client(r); a.IsValid() {
			return a.String()
		}
		return r.RemoteAddr
	}
}

// throttleAddr is the address login throttling counts: IPv6 by /64
// (clientip.LimitKey), so a per-address limit is a limit.
func throttleAddr(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	return clientip.LimitKey(a).String()
}

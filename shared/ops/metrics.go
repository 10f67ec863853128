package ops

import "net/http"

// MethodLabel is the method label of a request metric: one of the methods
// the services answer, or OTHER. Labelling with the raw method would let
// any client create a new series per made-up method and exhaust the
// metrics' memory.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions:
		return method
	}
	return "OTHER"
}

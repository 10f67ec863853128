// Package filetype tells what a file is from its bytes, never from a name
// or a type someone claims: the one rule for patients' attachments (intake)
// and clinics' result documents (clinical).
package filetype

import (
	"bytes"
	"mime"
	"net/http"
	"unicode/utf8"
)

// Unknown is what Detect returns for bytes it cannot vouch for.
const Unknown = "application/octet-stream"

// Detect sniffs data's media type, without parameters (http.DetectContentType,
// and PDF by its header wherever the sniffer misses it). Plain text must be
// valid UTF-8 throughout, not only in the first 512 bytes the sniffer reads,
// hold no NUL, and hold no markup (LooksLikeMarkup): otherwise it is Unknown.
func Detect(data []byte) string {
	if bytes.HasPrefix(data, []byte("%PDF-")) {
		return "application/pdf"
	}
	mt, _, err := mime.ParseMediaType(http.DetectContentType(data))
	if err != nil {
		return Unknown
	}
	if mt == "text/plain" && (!utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 || LooksLikeMarkup(data)) {
		return Unknown
	}
	return mt
}

// LooksLikeMarkup reports whether text holds anything a browser or viewer
// could take for HTML, SVG or XML: a "<" followed by a letter, "/", "!" or
// "?" (a tag, a closing tag, a comment or doctype, a processing
// instruction) anywhere in it. The sniffer calls text that only starts
// otherwise (such as "scan\n<script>…" or "<svg …>") plain text, and saved
// as .html or .svg it ran script. A genuine plain-text document rarely
// needs such a sequence; it can go as a PDF.
func LooksLikeMarkup(data []byte) bool {
	for i := bytes.IndexByte(data, '<'); i >= 0 && i+1 < len(data); {
		c := data[i+1]
		if c == '/' || c == '!' || c == '?' || ('a' <= c|0x20 && c|0x20 <= 'z') {
			return true
		}
		j := bytes.IndexByte(data[i+1:], '<')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

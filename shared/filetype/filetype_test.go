package filetype

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, data, want string
	}{
		{"pdf", "%PDF-1.7\n...", "application/pdf"},
		{"png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"},
		{"plain text", "Blood pressure 120/80, see you in May.", "text/plain"},
		{"text with a tag later on", "scan results\n<script>alert(1)</script>", Unknown},
		{"svg", `<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>`, Unknown},
		{"comment", "note <!-- hidden -->", Unknown},
		{"closing tag", "a </b>", Unknown},
		{"processing instruction", "x <?xml", Unknown},
		{"arithmetic is not markup", "3 < 4 and 5 <= 6, <3", "text/plain"},
		{"a < at the very end", "less than <", "text/plain"},
		{"invalid UTF-8 past the sniffed prefix", strings.Repeat("a", 600) + "\xff", Unknown},
		{"NUL", "abc\x00def", Unknown},
		{"html", "<!DOCTYPE html><html>", "text/html"},
	} {
		if got := Detect([]byte(c.data)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

package clinical

import (
	"fmt"
	"mime"
)

// attachmentExtensions name a saved attachment after the type intake
// detected from its bytes.
var attachmentExtensions = map[string]string{
	"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
	"image/webp": "webp", "image/bmp": "bmp", "text/plain": "txt", "audio/mpeg": "mp3",
	"audio/wave": "wav", "video/mp4": "mp4", "video/webm": "webm", "application/zip": "zip",
}

// attachmentFilename is the name a downloaded attachment is saved under:
// attachment-N with the extension of its detected type (.bin for any
// other), N counting from 1. The patient's title is only display text: as a
// file name it kept its own extension (scan.html, xray.svg, lab-report.bat
// were saved as such) and could carry a right-to-left override.
func attachmentFilename(contentType string, n int) string {
	ext := "bin"
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && attachmentExtensions[mt] != "" {
		ext = attachmentExtensions[mt]
	}
	return fmt.Sprintf("attachment-%d.%s", n+1, ext)
}

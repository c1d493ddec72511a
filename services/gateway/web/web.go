// Package web is the gateway's page, embedded in the binary: plain HTML,
// CSS and JavaScript (no CDN, no npm, no build step). It talks to the
// gateway over the same WebSocket protocol as any client (/ws).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS is the page's files at their URL paths (index.html at /).
var FS, _ = fs.Sub(static, "static")

package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The console: a page of plain HTML, CSS and JavaScript embedded in the
// binary (no build step, no CDN), served at / of the API. It reads the
// rollouts from GET /v1/stream and relays the requests it signs in the
// browser through POST /v1/requests; see docs/console.md.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP keeps the page to its own origin: no inline script, nothing
// loaded from elsewhere, not framed. (Inline style attributes are allowed:
// the progress bars' widths.)
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// console serves the page at / and its files at /console/.
func (s *Server) console(mux *http.ServeMux) {
	files, _ := fs.Sub(consoleFiles, "console")
	static := http.StripPrefix("/console/", http.FileServerFS(files))
	guard := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", consoleCSP)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /console/", guard(static))
	mux.Handle("GET /{$}", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})))
}

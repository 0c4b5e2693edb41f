// Package ui serves VRSky's admin UI and its API reference from assets
// embedded in the binary: the Vite build of this folder (dist/app) at /ui/,
// and the API reference (dist/docs): at /docs a page rendered at build time
// from the OpenAPI document, listing every operation and schema without a
// script, and at /docs/interactive Stoplight Elements reading the served
// /openapi.json, for trying requests. Both are built by `make ui`; a binary built without them serves a
// page that says how to build them (dist/unbuilt.html, the one committed
// file of dist/).
//
// It never talks to anything: the UI in the browser calls the public REST
// API with the user's key like any other client. Every page it serves
// carries a Content-Security-Policy that allows no inline script and no
// origin but the server's own.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Paths of the embedded trees.
const (
	appDir      = "dist/app"
	docsDir     = "dist/docs"
	unbuiltPage = "dist/unbuilt.html"
)

// UIPath is where the admin UI is served.
const UIPath = "/ui/"

// AppCSP is the Content-Security-Policy of the admin UI: scripts, styles,
// fonts and API calls from the server's own origin only. Inline styles are
// allowed because the editor and the charts set element styles at run time;
// inline scripts, eval and other origins are not.
const AppCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DocsCSP is the Content-Security-Policy of the API reference's pages: the
// same, with fonts and images from data: URLs, which Stoplight Elements
// inlines.
const DocsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Mount returns a handler that serves the admin UI at /ui/, the API
// reference at /docs (and its interactive page at /docs/interactive),
// redirects / to /ui/, and hands every other request to api.
func Mount(api http.Handler) http.Handler {
	return mount(dist, api)
}

func mount(files fs.FS, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	app := newAssets(files, appDir, AppCSP)
	docs := newAssets(files, docsDir, DocsCSP)
	mux.Handle("/ui/", http.StripPrefix("/ui", app.spa()))
	mux.Handle("GET /ui", http.RedirectHandler(UIPath, http.StatusMovedPermanently))
	mux.Handle("GET /docs", http.StripPrefix("/docs", docs.page("/index.html")))
	mux.Handle("GET /docs/interactive", docs.page("/interactive.html"))
	mux.Handle("/docs/", http.StripPrefix("/docs", docs.tree()))
	mux.Handle("GET /{$}", http.RedirectHandler(UIPath, http.StatusFound))
	mux.Handle("/", api)
	return mux
}

// assets serves one embedded tree.
type assets struct {
	files   fs.FS // nil when the tree is not built
	unbuilt []byte
	csp     string
	gzipped sync.Map // file name -> []byte, compressed once
}

func newAssets(files fs.FS, dir, csp string) *assets {
	a := &assets{csp: csp}
	if sub, err := fs.Sub(files, dir); err == nil {
		if _, err := fs.Stat(sub, "index.html"); err == nil {
			a.files = sub
		}
	}
	a.unbuilt, _ = fs.ReadFile(files, unbuiltPage)
	return a
}

// Cache lifetimes: hashed build assets never change under their name; HTML
// and unhashed files are revalidated on every load.
const (
	immutable   = "public, max-age=31536000, immutable"
	revalidated = "no-cache"
)

// spa serves the app's files and, for any other path that is not an asset,
// index.html, so that the client-side router's URLs survive a reload.
func (a *assets) spa() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(w, r) {
			return
		}
		name := cleanName(r.URL.Path)
		if name == "" || name == "index.html" {
			a.serve(w, r, "index.html")
			return
		}
		if a.exists(name) {
			a.serve(w, r, name)
			return
		}
		// A missing asset is a 404: answering HTML for a script would only
		// hide the mistake behind a MIME-type error.
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			a.notFound(w)
			return
		}
		a.serve(w, r, "index.html")
	})
}

// page always serves one file.
func (a *assets) page(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, strings.TrimPrefix(name, "/"))
	})
}

// tree serves the tree's files and nothing else.
func (a *assets) tree() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(w, r) {
			return
		}
		name := cleanName(r.URL.Path)
		if name == "" {
			name = "index.html"
		}
		if !a.exists(name) {
			a.notFound(w)
			return
		}
		a.serve(w, r, name)
	})
}

func (a *assets) allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	a.headers(w)
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// cleanName turns a URL path into a file name inside the tree, or "" for
// its root; ".." cannot climb out of it.
func cleanName(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (a *assets) exists(name string) bool {
	// The build's gzipped copies are served for their file, not by name.
	if a.files == nil || name == "" || strings.HasSuffix(name, ".gz") {
		return false
	}
	st, err := fs.Stat(a.files, name)
	return err == nil && !st.IsDir()
}

func (a *assets) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", a.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (a *assets) notFound(w http.ResponseWriter) {
	a.headers(w)
	w.Header().Set("Cache-Control", revalidated)
	http.Error(w, "not found", http.StatusNotFound)
}

// serve writes one file with its type, cache policy and, when the client
// takes it, gzip.
func (a *assets) serve(w http.ResponseWriter, r *http.Request, name string) {
	a.headers(w)
	h := w.Header()
	if a.files == nil {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", revalidated)
		http.ServeContent(w, r, "unbuilt.html", time.Time{}, bytes.NewReader(a.unbuilt))
		return
	}
	body, err := fs.ReadFile(a.files, name)
	if err != nil {
		a.notFound(w)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		h.Set("Cache-Control", immutable)
	} else {
		h.Set("Cache-Control", revalidated)
	}
	ctype := contentType(name)
	h.Set("Content-Type", ctype)
	h.Add("Vary", "Accept-Encoding")
	if compressible(ctype) && len(body) > 1024 && acceptsGzip(r) {
		body = a.gzip(name, body)
		h.Set("Content-Encoding", "gzip")
	}
	// The build's files carry no useful modification time; the ETag of
	// the content lets the no-cache ones revalidate cheaply.
	h.Set("ETag", etag(body))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// gzip returns the file's gzipped body: the copy the build made (NAME.gz,
// see scripts/copy-docs.mjs) when there is one, else one compressed here
// once.
func (a *assets) gzip(name string, body []byte) []byte {
	if z, ok := a.gzipped.Load(name); ok {
		return z.([]byte)
	}
	if z, err := fs.ReadFile(a.files, name+".gz"); err == nil && isGzipOf(z, body) {
		z, _ := a.gzipped.LoadOrStore(name, z)
		return z.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	z, _ := a.gzipped.LoadOrStore(name, buf.Bytes())
	return z.([]byte)
}

// isGzipOf checks a prebuilt NAME.gz against NAME, so a stale copy is never
// served for a file that changed.
func isGzipOf(z, body []byte) bool {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return false
	}
	plain, err := io.ReadAll(io.LimitReader(zr, int64(len(body))+1))
	return err == nil && bytes.Equal(plain, body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".woff":  "font/woff",
	".txt":   "text/plain; charset=utf-8",
	".map":   "application/json",
}

func contentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "application/json") || ctype == "image/svg+xml"
}

func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

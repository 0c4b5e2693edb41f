package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// built is a tree as `make ui` leaves it.
func built() fstest.MapFS {
	return fstest.MapFS{
		"dist/unbuilt.html":               {Data: []byte("<p>not built</p>")},
		"dist/app/index.html":             {Data: []byte(`<!doctype html><script type="module" src="/ui/assets/index-abc.js"></script>`)},
		"dist/app/assets/index-abc.js":    {Data: []byte(strings.Repeat("console.log('vrsky');\n", 200))},
		"dist/app/assets/style-def.css":   {Data: []byte("body{}")},
		"dist/app/favicon.svg":            {Data: []byte("<svg></svg>")},
		"dist/docs/index.html":            {Data: []byte(`<h1>VRSky API</h1><a href="/openapi.json">OpenAPI document</a><article class="op" id="list-tenants">`)},
		"dist/docs/interactive.html":      {Data: []byte(`<elements-api apiDescriptionUrl="/openapi.json"></elements-api>`)},
		"dist/docs/web-components.min.js": {Data: []byte("customElements.define('elements-api', class{})")},
	}
}

// api stands in for the API's handler: it says which path reached it.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"api":"`+r.URL.Path+`"}`)
})

func do(t *testing.T, h http.Handler, method, target string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "http://vrsky.test"+target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesTheAppWithItsPolicies(t *testing.T) {
	h := mount(built(), api)
	tests := []struct {
		name, path   string
		status       int
		body, cache  string
		contentType  string
		csp          string
		bodyContains string
	}{
		{name: "index", path: "/ui/", status: 200, cache: revalidated, contentType: "text/html; charset=utf-8", csp: AppCSP, bodyContains: "/ui/assets/index-abc.js"},
		{name: "index by name", path: "/ui/index.html", status: 200, cache: revalidated, csp: AppCSP, bodyContains: "<!doctype html>"},
		{name: "hashed asset is immutable", path: "/ui/assets/index-abc.js", status: 200, cache: immutable, contentType: "text/javascript; charset=utf-8", csp: AppCSP, bodyContains: "vrsky"},
		{name: "css", path: "/ui/assets/style-def.css", status: 200, cache: immutable, contentType: "text/css; charset=utf-8"},
		{name: "unhashed file is revalidated", path: "/ui/favicon.svg", status: 200, cache: revalidated, contentType: "image/svg+xml"},
		{name: "client route falls back to index", path: "/ui/integrations/orders", status: 200, cache: revalidated, contentType: "text/html; charset=utf-8", bodyContains: "/ui/assets/index-abc.js"},
		{name: "deep client route", path: "/ui/integrations/orders/versions", status: 200, bodyContains: "<!doctype html>"},
		{name: "missing asset is 404, not HTML", path: "/ui/assets/gone-123.js", status: 404, csp: AppCSP},
		{name: "missing file with extension is 404", path: "/ui/robots.txt", status: 404},
		{name: "docs page", path: "/docs", status: 200, contentType: "text/html; charset=utf-8", csp: DocsCSP, bodyContains: `<article class="op" id="list-tenants">`},
		{name: "interactive docs page", path: "/docs/interactive", status: 200, cache: revalidated, contentType: "text/html; charset=utf-8", csp: DocsCSP, bodyContains: "<elements-api"},
		{name: "interactive docs page by name", path: "/docs/interactive.html", status: 200, csp: DocsCSP, bodyContains: "<elements-api"},
		{name: "docs asset", path: "/docs/web-components.min.js", status: 200, contentType: "text/javascript; charset=utf-8", csp: DocsCSP},
		{name: "docs unknown", path: "/docs/nope.js", status: 404},
		{name: "api passes through", path: "/v1/tenants", status: 200, body: `{"api":"/v1/tenants"}`},
		{name: "api root paths pass through", path: "/openapi.json", status: 200, body: `{"api":"/openapi.json"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, http.MethodGet, tt.path)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.body != "" {
				require.Equal(t, tt.body, rec.Body.String())
				require.Empty(t, rec.Header().Get("Content-Security-Policy"), "the API's answers are not the UI's")
			}
			if tt.cache != "" {
				require.Equal(t, tt.cache, rec.Header().Get("Cache-Control"))
			}
			if tt.contentType != "" {
				require.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
			}
			if tt.csp != "" {
				require.Equal(t, tt.csp, rec.Header().Get("Content-Security-Policy"))
				require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
				require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
			}
			if tt.bodyContains != "" {
				require.Contains(t, rec.Body.String(), tt.bodyContains)
			}
		})
	}
}

func TestPoliciesAllowNoInlineScriptNorOtherOrigins(t *testing.T) {
	for _, csp := range []string{AppCSP, DocsCSP} {
		for _, directive := range strings.Split(csp, ";") {
			d := strings.TrimSpace(directive)
			if strings.HasPrefix(d, "script-src") {
				require.Equal(t, "script-src 'self'", d, "no inline script, no eval, no other origin")
			}
			require.NotContains(t, d, "http", "no remote origin in %q", d)
			require.NotContains(t, d, "*", "no wildcard in %q", d)
		}
		require.Contains(t, csp, "default-src 'none'")
		require.Contains(t, csp, "frame-ancestors 'none'")
	}
}

func TestRedirects(t *testing.T) {
	h := mount(built(), api)
	rec := do(t, h, http.MethodGet, "/")
	require.Equal(t, http.StatusFound, rec.Code)
	require.Equal(t, "/ui/", rec.Header().Get("Location"))

	rec = do(t, h, http.MethodGet, "/ui")
	require.Equal(t, http.StatusMovedPermanently, rec.Code)
	require.Equal(t, "/ui/", rec.Header().Get("Location"))
}

func TestHostilePaths(t *testing.T) {
	h := mount(built(), api)
	for _, p := range []string{
		"/ui/../../etc/passwd",
		"/ui/%2e%2e/%2e%2e/etc/passwd",
		"/ui/assets/..%2f..%2fembed.go",
		"/ui/" + strings.Repeat("a/", 2000) + "x.js",
		"/ui/assets/%00.js",
		"/docs/../../go.mod",
	} {
		t.Run(p[:min(len(p), 40)], func(t *testing.T) {
			rec := do(t, h, http.MethodGet, p)
			require.NotContains(t, rec.Body.String(), "root:", "nothing outside the tree")
			require.NotContains(t, rec.Body.String(), "package ui")
			require.NotContains(t, rec.Body.String(), "module github.com")
			require.Contains(t, []int{200, 301, 307, 404, 400}, rec.Code)
			if loc := rec.Header().Get("Location"); loc != "" {
				require.True(t, strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//"), "a redirect stays on this server: %q", loc)
			}
		})
	}
}

func TestOnlyReads(t *testing.T) {
	h := mount(built(), api)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := do(t, h, m, "/ui/")
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
		require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
		require.Equal(t, AppCSP, rec.Header().Get("Content-Security-Policy"))
		rec = do(t, h, m, "/docs/web-components.min.js")
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
	}
	rec := do(t, h, http.MethodHead, "/ui/assets/index-abc.js")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Body.String())
}

func TestGzipAndRevalidation(t *testing.T) {
	h := mount(built(), api)
	rec := do(t, h, http.MethodGet, "/ui/assets/index-abc.js", "Accept-Encoding", "br, gzip")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	require.Contains(t, rec.Header().Values("Vary"), "Accept-Encoding")
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, string(built()["dist/app/assets/index-abc.js"].Data), string(plain))

	// The same file again comes from the cache of compressed bodies.
	again := do(t, h, http.MethodGet, "/ui/assets/index-abc.js", "Accept-Encoding", "gzip")
	require.Equal(t, rec.Body.Bytes(), again.Body.Bytes())

	refused := do(t, h, http.MethodGet, "/ui/assets/index-abc.js", "Accept-Encoding", "gzip;q=0")
	require.Empty(t, refused.Header().Get("Content-Encoding"))

	small := do(t, h, http.MethodGet, "/ui/assets/style-def.css", "Accept-Encoding", "gzip")
	require.Empty(t, small.Header().Get("Content-Encoding"), "tiny files go as they are")

	plainRec := do(t, h, http.MethodGet, "/ui/")
	tag := plainRec.Header().Get("ETag")
	require.NotEmpty(t, tag)
	cond := do(t, h, http.MethodGet, "/ui/", "If-None-Match", tag)
	require.Equal(t, http.StatusNotModified, cond.Code)
}

// TestPrebuiltGzip: a NAME.gz the build made is what goes out for NAME
// (nothing is compressed while the browser waits), unless it is not the
// gzip of NAME; the .gz files are not served by their own names.
func TestPrebuiltGzip(t *testing.T) {
	script := []byte(strings.Repeat("customElements.define('x', class{});\n", 100))
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	_, _ = zw.Write(script)
	require.NoError(t, zw.Close())
	tree := built()
	tree["dist/docs/assets/web-components.min-0123456789.js"] = &fstest.MapFile{Data: script}
	tree["dist/docs/assets/web-components.min-0123456789.js.gz"] = &fstest.MapFile{Data: z.Bytes()}
	tree["dist/docs/assets/stale-0123456789.js"] = &fstest.MapFile{Data: script}
	tree["dist/docs/assets/stale-0123456789.js.gz"] = &fstest.MapFile{Data: []byte("not gzip at all")}
	h := mount(tree, api)

	rec := do(t, h, http.MethodGet, "/docs/assets/web-components.min-0123456789.js", "Accept-Encoding", "gzip")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	require.Equal(t, z.Bytes(), rec.Body.Bytes(), "the prebuilt copy, byte for byte")
	require.Equal(t, immutable, rec.Header().Get("Cache-Control"))
	require.Equal(t, DocsCSP, rec.Header().Get("Content-Security-Policy"))

	stale := do(t, h, http.MethodGet, "/docs/assets/stale-0123456789.js", "Accept-Encoding", "gzip")
	require.Equal(t, "gzip", stale.Header().Get("Content-Encoding"))
	zr, err := gzip.NewReader(bytes.NewReader(stale.Body.Bytes()))
	require.NoError(t, err, "a broken .gz is replaced by a fresh compression")
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, script, plain)

	plainRec := do(t, h, http.MethodGet, "/docs/assets/web-components.min-0123456789.js")
	require.Empty(t, plainRec.Header().Get("Content-Encoding"))
	require.Equal(t, script, plainRec.Body.Bytes())

	for _, p := range []string{"/docs/assets/web-components.min-0123456789.js.gz", "/ui/assets/index-abc.js.gz"} {
		require.Equal(t, http.StatusNotFound, do(t, h, http.MethodGet, p).Code, p)
	}
}

func TestUnbuiltTreeSaysHowToBuild(t *testing.T) {
	h := mount(fstest.MapFS{"dist/unbuilt.html": {Data: []byte("<p>run make ui</p>")}}, api)
	for _, p := range []string{"/ui/", "/ui/integrations", "/docs"} {
		rec := do(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusOK, rec.Code, p)
		require.Contains(t, rec.Body.String(), "make ui", p)
		require.Equal(t, revalidated, rec.Header().Get("Cache-Control"))
		require.NotEmpty(t, rec.Header().Get("Content-Security-Policy"))
	}
	require.Equal(t, http.StatusNotFound, do(t, h, http.MethodGet, "/ui/assets/index.js").Code)
	require.Equal(t, http.StatusNotFound, do(t, h, http.MethodGet, "/docs/web-components.min.js").Code)
}

// TestEmbeddedTree: the binary's own tree serves either the built UI or
// the page that says how to build it, and never fails to.
func TestEmbeddedTree(t *testing.T) {
	h := Mount(api)
	rec := do(t, h, http.MethodGet, "/ui/")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, AppCSP, rec.Header().Get("Content-Security-Policy"))
	body := rec.Body.String()
	require.True(t, strings.Contains(body, "make ui") || strings.Contains(body, `<div id="root">`), body)
}

func TestContentTypes(t *testing.T) {
	require.Equal(t, "font/woff2", contentType("a.WOFF2"))
	require.Equal(t, "application/octet-stream", contentType("a.bin"))
	require.True(t, compressible("application/json"))
	require.False(t, compressible("image/png"))
}

// Package ssrf guards every outbound connection a connector makes to a
// target a tenant supplies (HTTP and Slack requests, PostgreSQL
// connections), so that a tenant cannot make VRSky reach the platform's own
// network: loopback, private and link-local ranges, cloud metadata
// endpoints, and the IPv4-mapped, NAT64 and 6to4 spellings of them.
//
// What a tenant may reach is the platform's decision: a Guard is built only
// from the tenant's sdk.EgressPolicy, which a platform admin sets. Nothing
// in a tenant's connector config widens it, and link-local addresses and
// cloud metadata endpoints are refused whatever the policy says.
//
// The guard decides on the address actually being dialled, after DNS
// resolution, so a name that resolves to a public address at config time
// and to a private one later (DNS rebinding) is still refused. Every
// redirect target is checked again before it is followed.
//
// This package must never connect to an address before deciding it is
// allowed, never follow a redirect to a refused address, never use an
// HTTP proxy from the environment (the proxy would do the dialling), and
// never put a whole URL in an error: URLs such as Slack webhooks are
// secrets.
package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// MaxRedirects is how many redirects a guarded client follows for one
// request.
const MaxRedirects = 5

// ConnectTimeout bounds each TCP connect a guarded dialer makes.
const ConnectTimeout = 10 * time.Second

// PolicyHint tells whoever reads a refusal how the policy changes.
const PolicyHint = "a platform admin changes it with PATCH /v1/tenants/{id}"

// Guard decides which addresses a tenant's outbound connections may reach.
// Build one with New from the tenant's egress policy; the zero value allows
// public addresses only. A Guard is immutable and safe for concurrent use.
type Guard struct {
	allowPrivate bool
	allowHosts   []string
}

// New returns the guard for a tenant's egress policy (sdk.Env.Egress).
// Later changes to p do not affect it.
func New(p sdk.EgressPolicy) *Guard {
	return &Guard{allowPrivate: p.AllowPrivate, allowHosts: slices.Clone(p.AllowHosts)}
}

// Widest returns the guard of the widest policy a platform admin can
// grant. Configs are checked against it before their tenant is known
// (when a spec is applied), so that what no tenant may ever reach
// (link-local and metadata addresses) fails early and everything else is
// decided with the tenant's own policy when the connector is built.
func Widest() *Guard {
	return &Guard{allowPrivate: true}
}

// RefusedError says which address or host the guard refused, and why.
type RefusedError struct {
	// Target is the refused address ("10.0.0.1:80") or host name.
	Target string
	// Reason names the class of address ("private address").
	Reason string
	// Always is true for what no policy allows: link-local addresses and
	// cloud metadata endpoints.
	Always bool
}

func (e *RefusedError) Error() string {
	if e.Always {
		return fmt.Sprintf("ssrf: refused to connect to %s: %s: link-local and cloud metadata addresses are never allowed", e.Target, e.Reason)
	}
	return fmt.Sprintf("ssrf: refused to connect to %s: %s: the platform's egress policy for this tenant refuses it (%s)", e.Target, e.Reason, PolicyHint)
}

// refuse returns the permanent error for a refused target.
func refuse(target, reason string, always bool) error {
	return sdk.PermanentError(&RefusedError{Target: target, Reason: reason, Always: always})
}

// IsRefused reports whether err is, or wraps, a refusal by a Guard.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// ValidatePolicy checks an egress policy before a platform admin stores it:
// every AllowHosts entry is a host or host:port, and none names a
// link-local address or a cloud metadata endpoint, which no policy opens.
func ValidatePolicy(p sdk.EgressPolicy) error {
	var errs []error
	for _, entry := range p.AllowHosts {
		h, _, err := parseAllowEntry(entry)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if isMetadataName(h) {
			errs = append(errs, fmt.Errorf("allowHosts entry %q: a cloud metadata service is never allowed", entry))
			continue
		}
		if addr, err := netip.ParseAddr(h); err == nil {
			if reason, always := classify(addr); always {
				errs = append(errs, fmt.Errorf("allowHosts entry %q: %s: link-local and cloud metadata addresses are never allowed", entry, reason))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckURL validates a URL: the scheme is http or https, there is a host
// and no user info, and a host given as an IP address (or as "localhost")
// is allowed. Host names are checked again, on their resolved addresses,
// each time they are dialled. Errors are permanent.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return sdk.PermanentError(fmt.Errorf("ssrf: parse url: %w", err))
	}
	return g.checkURL(u)
}

func (g *Guard) checkURL(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return sdk.Permanentf("ssrf: url scheme %q: want http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return sdk.Permanentf("ssrf: url has no host")
	}
	if u.User != nil {
		return sdk.Permanentf("ssrf: url must not hold a user name or password; put credentials in headers or secrets")
	}
	host := u.Hostname()
	if host == "" {
		return sdk.Permanentf("ssrf: url has no host")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return sdk.Permanentf("ssrf: url port %q: want 1 to 65535", port)
	}
	return g.CheckHost(host, port)
}

// CheckHost decides on a host (name or IP literal) and port before any
// resolution: what can be refused without DNS. A name that passes is
// checked again on each address it resolves to when it is dialled.
func (g *Guard) CheckHost(host, port string) error {
	if isMetadataName(host) {
		return refuse(normalHost(host), "cloud metadata service", true)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		return g.CheckAddr(netip.AddrPortFrom(addr, uint16(p)))
	}
	if g.hostAllowed(host, port) || g.allowPrivate {
		return nil
	}
	if isLocalName(host) {
		return refuse(net.JoinHostPort(host, port), "local host name", false)
	}
	if looksNumeric(host) {
		return refuse(host, "non-standard IP address notation", false)
	}
	return nil
}

// CheckAddr decides on a resolved address about to be dialled. A refusal is
// a permanent error wrapping a *RefusedError.
func (g *Guard) CheckAddr(ap netip.AddrPort) error {
	reason, always := classify(ap.Addr())
	switch {
	case reason == "":
		return nil
	case always:
		return refuse(ap.String(), reason, true)
	case g.allowPrivate || g.addrAllowed(ap):
		return nil
	}
	return refuse(ap.String(), reason, false)
}

// checkAlways refuses only what no policy allows; it is the check for
// addresses that a host named in the policy's AllowHosts resolves to.
func checkAlways(ap netip.AddrPort) error {
	if reason, always := classify(ap.Addr()); always {
		return refuse(ap.String(), reason, true)
	}
	return nil
}

// Client returns an HTTP client that dials only addresses the guard allows,
// re-checks every redirect target, follows at most MaxRedirects redirects,
// ignores proxy settings from the environment, and gives up on a request
// after timeout (0 means no limit beyond the request's context).
func (g *Guard) Client(timeout time.Duration) *http.Client {
	transport := &http.Transport{
		// No proxy: it would dial the target on our behalf, unchecked.
		Proxy:                  nil,
		DialContext:            g.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: g.checkRedirect}
}

// DialContext connects like net.Dialer.DialContext, to a TCP "host:port",
// checking every address the host resolves to just before connecting to it
// (so DNS rebinding gains nothing), within ConnectTimeout. Hosts the policy
// names in AllowHosts may resolve to any address but link-local and
// metadata ones. Unix sockets count as loopback. Refusals are permanent
// errors wrapping a *RefusedError.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "unix" {
		if !g.allowPrivate {
			return nil, refuse("unix socket", "local socket", false)
		}
		d := net.Dialer{Timeout: ConnectTimeout}
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, sdk.PermanentError(fmt.Errorf("ssrf: dial address %q: %w", addr, err))
	}
	if err := g.CheckHost(host, port); err != nil {
		return nil, err
	}
	control := g.control
	if g.hostAllowed(host, port) {
		control = controlAlways
	}
	d := net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second, Control: control}
	return d.DialContext(ctx, network, addr)
}

// control runs after the address is resolved and the socket created, just
// before connect: the last moment to refuse.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse(address, "unparsable address", false)
	}
	return g.CheckAddr(ap)
}

// controlAlways is control for hosts named in AllowHosts.
func controlAlways(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse(address, "unparsable address", false)
	}
	return checkAlways(ap)
}

// checkRedirect re-checks each redirect target and bounds their number.
func (g *Guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return sdk.Permanentf("ssrf: stopped after %d redirects", MaxRedirects)
	}
	if err := g.checkURL(req.URL); err != nil {
		return fmt.Errorf("ssrf: redirect: %w", err)
	}
	return nil
}

// hostAllowed reports whether AllowHosts names host, or host:port.
func (g *Guard) hostAllowed(host, port string) bool {
	host = normalHost(host)
	addr, ipErr := netip.ParseAddr(host)
	for _, entry := range g.allowHosts {
		h, p, err := parseAllowEntry(entry)
		if err != nil || (p != "" && p != port) {
			continue
		}
		if h == host {
			return true
		}
		if a, err := netip.ParseAddr(h); err == nil && ipErr == nil && a.WithZone("") == addr.WithZone("") {
			return true
		}
	}
	return false
}

// addrAllowed reports whether AllowHosts names the IP address of ap (with
// or without its port).
func (g *Guard) addrAllowed(ap netip.AddrPort) bool {
	return g.hostAllowed(ap.Addr().WithZone("").Unmap().String(), strconv.Itoa(int(ap.Port()))) ||
		g.hostAllowed(ap.Addr().WithZone("").String(), strconv.Itoa(int(ap.Port())))
}

// parseAllowEntry splits an AllowHosts entry into a normalised host and an
// optional port.
func parseAllowEntry(entry string) (host, port string, err error) {
	e := strings.TrimSpace(entry)
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("allowHosts entry %q: %s", entry, why)
	}
	if e == "" {
		return bad("empty")
	}
	if strings.ContainsAny(e, "/@?# \t") {
		return bad("want a host or host:port, not a URL")
	}
	if h, p, err := net.SplitHostPort(e); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return bad("port must be 1 to 65535")
		}
		if h == "" {
			return bad("no host")
		}
		return normalHost(h), p, nil
	}
	if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
		e = e[1 : len(e)-1]
	}
	if _, err := netip.ParseAddr(e); err != nil && strings.Contains(e, ":") {
		return bad("want a host or host:port")
	}
	return normalHost(e), "", nil
}

// normalHost lower-cases a host name and drops a trailing dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isLocalName reports whether a host name always means this machine.
func isLocalName(host string) bool {
	h := normalHost(host)
	switch h {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return true
	}
	return strings.HasSuffix(h, ".localhost")
}

// looksNumeric reports whether host is made of numeric labels only (decimal,
// octal or 0x-hex) without being a standard IP address: "2130706433",
// "0x7f.1", "0177.0.0.1". Resolvers disagree on what such names mean.
func looksNumeric(host string) bool {
	labels := strings.Split(normalHost(host), ".")
	for _, l := range labels {
		if l == "" {
			return false
		}
		digits := l
		if strings.HasPrefix(l, "0x") {
			digits = l[2:]
			if strings.Trim(digits, "0123456789abcdef") != "" {
				return false
			}
			continue
		}
		if strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}

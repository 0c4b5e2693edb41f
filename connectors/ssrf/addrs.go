package ssrf

import "net/netip"

// blockedRange is a range of addresses that is not the public internet.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blocked4 and blocked6 are checked in order; the first match gives the
// reason.
var (
	blocked4 = []blockedRange{
		{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address"},
		{netip.MustParsePrefix("0.0.0.0/8"), `"this network" address (0.0.0.0/8)`},
		{netip.MustParsePrefix("10.0.0.0/8"), "private address (10.0.0.0/8)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT address (100.64.0.0/10)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local address (169.254.0.0/16)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private address (172.16.0.0/12)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment address (192.0.0.0/24)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation address (192.0.2.0/24)"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private address (192.168.0.0/16)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address (198.18.0.0/15)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation address (198.51.100.0/24)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation address (203.0.113.0/24)"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
		{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved address (240.0.0.0/4)"},
	}
	blocked6 = []blockedRange{
		{netip.MustParsePrefix("::/128"), "unspecified address"},
		{netip.MustParsePrefix("::1/128"), "loopback address"},
		{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address (::/96)"},
		{netip.MustParsePrefix("100::/64"), "discard-only address (100::/64)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation address (2001:db8::/32)"},
		{netip.MustParsePrefix("fc00::/7"), "private address (fc00::/7)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local address (fe80::/10)"},
		{netip.MustParsePrefix("fec0::/10"), "site-local address (fec0::/10)"},
		{netip.MustParsePrefix("ff00::/8"), "multicast address"},
	}

	// Prefixes whose addresses embed an IPv4 address in their last 32
	// bits: NAT64 (RFC 6052, RFC 8215) and SIIT (RFC 6145).
	embedsLast32 = []netip.Prefix{
		netip.MustParsePrefix("64:ff9b::/96"),
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("::ffff:0:0:0/96"),
	}
	sixToFour = netip.MustParsePrefix("2002::/16")

	// linkLocal are the link-local ranges: never allowed, whatever the
	// policy, because cloud metadata services live there.
	linkLocal = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
	}

	// metadata are cloud instance metadata endpoints: never allowed,
	// whatever the policy.
	metadata = map[netip.Addr]bool{
		netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OpenStack, DigitalOcean
		netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task metadata
		netip.MustParseAddr("fd00:ec2::254"):   true, // AWS IMDS over IPv6
		netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
		netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud
	}

	// metadataNames are host names of cloud metadata services: never
	// allowed, whatever the policy, even before they are resolved.
	metadataNames = map[string]bool{
		"metadata.google.internal":   true,
		"metadata.goog":              true,
		"metadata":                   true,
		"instance-data":              true,
		"instance-data.ec2.internal": true,
		"metadata.azure.com":         true,
		"metadata.tencentyun.com":    true,
	}
)

// classify returns why addr is not a public internet address ("" when it
// is) and whether it is never allowed whatever the policy (a link-local
// address or a cloud metadata endpoint). IPv4 addresses hidden in IPv6 ones
// (mapped, NAT64, SIIT, 6to4) are judged by the IPv4 address.
func classify(addr netip.Addr) (reason string, always bool) {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return "invalid address", false
	}
	if addr.Is4In6() {
		if r, m := classify(addr.Unmap()); r != "" {
			return "IPv4-mapped " + r, m
		}
		return "", false
	}
	if addr.Is6() {
		b := addr.As16()
		for _, p := range embedsLast32 {
			if p.Contains(addr) {
				if r, m := classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
					return "NAT64 address embedding a " + r, m
				}
				return "", false
			}
		}
		if sixToFour.Contains(addr) {
			if r, m := classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return "6to4 address embedding a " + r, m
			}
			return "", false
		}
	}
	if metadata[addr] {
		return "cloud metadata endpoint", true
	}
	ranges := blocked6
	if addr.Is4() {
		ranges = blocked4
	}
	for _, r := range ranges {
		if r.prefix.Contains(addr) {
			return r.reason, isLinkLocal(addr)
		}
	}
	return "", false
}

// isLinkLocal reports whether addr is in a link-local range.
func isLinkLocal(addr netip.Addr) bool {
	for _, p := range linkLocal {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// isMetadataName reports whether host names a cloud metadata service.
func isMetadataName(host string) bool {
	return metadataNames[normalHost(host)]
}

"""Which addresses a connection to a user-given URL may go to: the address policy.

`address_refusal(address)` says why an address is refused ("a private address (RFC 1918)"), or
None for a public one. Refused: private, loopback, link-local, cloud metadata, CGNAT, unique-local,
multicast, reserved and documentation ranges (REFUSED_NETWORKS), anything else Python does not call
globally routable, and the IPv4-mapped and NAT64 forms of all of these. `connectable(address)` is
the address to dial once it has passed.

The media fetcher (taskapi.media.fetch) vets every address a URL's host resolves to with it; any
other code that connects where a user points (webhooks) should do the same.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PRIVATE = "a private address (RFC 1918)"
_LOOPBACK = "a loopback address"
_LINK_LOCAL = "a link-local address"
_DOCUMENTATION = "a documentation address"
_MULTICAST = "a multicast address"
_UNSPECIFIED = "an unspecified address"
_V4, _V6 = ipaddress.IPv4Network, ipaddress.IPv6Network

REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = (
    # Metadata and credential endpoints first, so a refusal names them rather than their range.
    (_V4("169.254.169.254/32"), "a cloud metadata address (AWS, GCP, Azure, OpenStack)"),
    (_V4("169.254.170.2/32"), "a cloud metadata address (ECS task credentials)"),
    (_V4("169.254.170.23/32"), "a cloud metadata address (EKS Pod Identity)"),
    (_V6("fd00:ec2::254/128"), "a cloud metadata address (AWS, IPv6)"),
    (_V6("fd00:ec2::23/128"), "a cloud metadata address (EKS Pod Identity, IPv6)"),
    (_V4("100.100.100.200/32"), "a cloud metadata address (Alibaba Cloud)"),
    (_V4("192.0.0.192/32"), "a cloud metadata address (Oracle Cloud)"),
    (_V4("168.63.129.16/32"), "a cloud platform address (Azure WireServer)"),
    (_V4("0.0.0.0/8"), _UNSPECIFIED),
    (_V4("10.0.0.0/8"), _PRIVATE),
    (_V4("172.16.0.0/12"), _PRIVATE),
    (_V4("192.168.0.0/16"), _PRIVATE),
    (_V4("100.64.0.0/10"), "a shared address (carrier-grade NAT, RFC 6598)"),
    (_V4("127.0.0.0/8"), _LOOPBACK),
    (_V4("169.254.0.0/16"), _LINK_LOCAL),
    (_V4("192.0.0.0/24"), "an IETF protocol address"),
    (_V4("192.0.2.0/24"), _DOCUMENTATION),
    (_V4("198.51.100.0/24"), _DOCUMENTATION),
    (_V4("203.0.113.0/24"), _DOCUMENTATION),
    (_V4("192.88.99.0/24"), "a 6to4 relay address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("224.0.0.0/4"), _MULTICAST),
    (_V4("240.0.0.0/4"), "a reserved address"),  # and 255.255.255.255, broadcast
    (_V6("::/128"), _UNSPECIFIED),
    (_V6("::1/128"), _LOOPBACK),
    (_V6("::/96"), "an IPv4-compatible IPv6 address (deprecated)"),
    (_V6("::ffff:0:0:0/96"), "an IPv4-translated address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("100::/64"), "a discard-only address"),
    (_V6("2001:db8::/32"), _DOCUMENTATION),
    (_V6("2001::/23"), "an IETF protocol address (Teredo and others)"),
    (_V6("2002::/16"), "a 6to4 address"),
    (_V6("3fff::/20"), _DOCUMENTATION),
    (_V6("5f00::/16"), "a segment-routing address"),
    (_V6("fc00::/7"), "a unique-local address"),
    (_V6("fe80::/10"), _LINK_LOCAL),
    (_V6("fec0::/10"), "a site-local address (deprecated)"),
    (_V6("ff00::/8"), _MULTICAST),
)
NAT64 = _V6("64:ff9b::/96")
"""The well-known NAT64 prefix: judged by the IPv4 address it embeds (IPv6-only subnets reach the
IPv4 internet through it)."""


def address_refusal(address: str | IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a connection to `address` is refused ("a private address (RFC 1918)"), or None if it is
    a public address. IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms are judged
    by the IPv4 address inside them. Anything the table misses that Python does not call globally
    routable is refused too."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            reason = address_refusal(ip.ipv4_mapped, allow_loopback=allow_loopback)
            return None if reason is None else f"an IPv4-mapped form of {reason}"
        if ip in NAT64:
            reason = address_refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return None if reason is None else f"a NAT64 form of {reason}"
    if allow_loopback and ip.is_loopback:
        return None
    for network, reason in REFUSED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def connectable(ip: IPAddress) -> IPAddress:
    """The address to dial: an IPv4-mapped IPv6 address as the IPv4 address it stands for."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip

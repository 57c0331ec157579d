"""The fetcher's policy, without a socket: the address table, the URL rules and the refusals that
must come before any connection (tests/unit blocks sockets, so a refusal made too late fails here
as a blocked socket, not as a pass)."""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time

import pytest

from taskapi.errors import TaskApiError
from taskapi.media.addresses import REFUSED_NETWORKS, address_refusal
from taskapi.media.fetch import FetchFailed, FetchRefused, fetch, shown_url
from tests.support.resolver import FakeResolver

PUBLIC_V4 = "93.184.216.34"


def get(url: str, resolver: FakeResolver, **options):
    options.setdefault("accept", ("video/",))
    return fetch(url, max_bytes=1000, timeout_seconds=2, resolver=resolver, **options)


# ------------------------------------------------------------------ the address table

REFUSED = [
    # IPv4
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("169.254.0.1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("169.254.170.23", "metadata"),
    ("100.100.100.200", "metadata"),
    ("192.0.0.192", "metadata"),
    ("168.63.129.16", "Azure"),
    ("192.0.0.8", "IETF"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.88.99.1", "6to4"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fd00:ec2::254", "metadata"),
    ("fd00:ec2::23", "metadata"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001::1", "Teredo"),
    ("2002:a9fe:a9fe::1", "6to4"),
    ("100::1", "discard"),
    ("5f00::1", "segment-routing"),
    ("64:ff9b:1::1", "NAT64"),
    ("::ffff:0:a00:1", "IPv4-translated"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    # IPv4-mapped and NAT64 forms, judged by the IPv4 address inside
    ("::ffff:127.0.0.1", "IPv4-mapped form of a loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of a cloud metadata"),
    ("::ffff:100.100.100.200", "IPv4-mapped form of a cloud metadata"),
    ("::ffff:100.64.0.1", "IPv4-mapped form of a shared"),
    ("::ffff:0.0.0.0", "IPv4-mapped form of an unspecified"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of a cloud metadata"),
    ("64:ff9b::10.0.0.1", "NAT64 form of a private"),
    ("64:ff9b::127.0.0.1", "NAT64 form of a loopback"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V4,
    "172.15.255.255",  # just outside 172.16/12
    "172.32.0.1",
    "100.63.255.255",  # just outside 100.64/10
    "100.128.0.1",
    "169.255.0.1",  # just outside 169.254/16
    "192.169.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a public address: how IPv6-only subnets reach IPv4
]


@pytest.mark.parametrize(("address", "named"), REFUSED)
def test_non_public_addresses_are_refused_with_a_reason_that_names_them(address, named):
    reason = address_refusal(address)

    assert reason is not None, f"{address} must be refused"
    assert named in reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address):
    assert address_refusal(address) is None
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("network", "reason"), REFUSED_NETWORKS, ids=[str(n) for n, _ in REFUSED_NETWORKS])
def test_every_network_in_the_table_is_refused_from_first_to_last_address(network, reason):
    assert address_refusal(network[0])
    assert address_refusal(network[-1])


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_allow_loopback_admits_loopback_only(address):
    assert address_refusal(address) is not None
    assert address_refusal(address, allow_loopback=True) is None


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "169.254.169.254", "fd00:ec2::254", "::ffff:10.0.0.1", "64:ff9b::127.0.0.1", "0.0.0.0"]
)
def test_allow_loopback_admits_nothing_else(address):
    assert address_refusal(address, allow_loopback=True) is not None


# ------------------------------------------------------------------ URL rules, before any connection


@pytest.mark.parametrize(
    "url",
    [
        "http://media.example/intro.mp4",
        "ftp://media.example/intro.mp4",
        "file:///etc/passwd",
        "data:video/mp4;base64,AAAA",
        "gopher://media.example/",
        "media.example/intro.mp4",
    ],
)
def test_only_https_is_fetched_and_nothing_is_resolved_first(url):
    resolver = FakeResolver({"media.example": [PUBLIC_V4]})

    with pytest.raises(FetchRefused, match="only https URLs are fetched") as refused:
        get(url, resolver)

    assert resolver.calls == []
    assert refused.value.permanent


def test_http_with_the_loopback_allowance_is_still_refused_for_a_public_host():
    resolver = FakeResolver({"media.example": [PUBLIC_V4]})

    with pytest.raises(FetchRefused, match="only from loopback"):
        get("http://media.example/intro.mp4", resolver, allow_loopback_http=True)

    assert resolver.calls == ["media.example"]


def test_http_with_the_loopback_allowance_needs_every_address_to_be_loopback():
    resolver = FakeResolver({"mixed.example": ["127.0.0.1", PUBLIC_V4]})

    with pytest.raises(FetchRefused, match="only from loopback"):
        get("http://mixed.example/intro.mp4", resolver, allow_loopback_http=True)


@pytest.mark.parametrize(
    ("addresses", "named"),
    [
        (["10.0.0.1"], "private"),
        (["169.254.169.254"], "cloud metadata"),
        (["fd00:ec2::254"], "cloud metadata"),
        (["::ffff:169.254.169.254"], "IPv4-mapped"),
        (["127.0.0.1"], "loopback"),
        ([PUBLIC_V4, "10.0.0.1"], "private"),  # any refused address refuses the host
        (["2606:4700:4700::1111", "fe80::1"], "link-local"),
    ],
)
def test_a_host_is_refused_when_any_address_it_resolves_to_is_not_public(addresses, named):
    resolver = FakeResolver({"media.example": addresses})

    with pytest.raises(FetchRefused) as refused:
        get("https://media.example/intro.mp4", resolver)

    assert named in str(refused.value)
    assert "media.example resolves to" in str(refused.value)
    assert refused.value.permanent


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "https://10.1.2.3/",
        "https://[::1]:8443/",
    ],
)
def test_ip_literals_are_judged_without_the_resolver(url):
    resolver = FakeResolver({})

    with pytest.raises(FetchRefused, match=" is a"):
        get(url, resolver)

    assert resolver.calls == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:secret@media.example/intro.mp4", "user name or password"),
        ("https://media.example:0/intro.mp4", "port is not valid"),
        ("https://media.example:99999/intro.mp4", "malformed"),
        ("https://[::1/intro.mp4", "malformed"),
        ("https:///intro.mp4", "no valid host name"),
        ("https://media example/intro.mp4", "no valid host name"),
        ("https://media.example/intro mp4", "malformed"),
    ],
)
def test_malformed_urls_are_refused(url, reason):
    with pytest.raises(FetchRefused, match=reason) as refused:
        get(url, FakeResolver({"media.example": [PUBLIC_V4]}))

    assert "secret" not in str(refused.value)


def test_a_name_that_does_not_resolve_fails_for_good():
    with pytest.raises(FetchFailed, match="does not resolve") as failed:
        get("https://nowhere.example/intro.mp4", FakeResolver({}))

    assert failed.value.permanent
    assert not failed.value.retryable


def test_a_resolver_that_fails_for_now_is_retryable():
    def resolver(*_):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(FetchFailed, match="could not be resolved") as failed:
        get("https://media.example/intro.mp4", resolver)

    assert failed.value.retryable


def test_a_slow_resolver_counts_against_the_deadline():
    def resolver(*_):
        time.sleep(0.5)
        return []

    started = time.monotonic()
    with pytest.raises(FetchFailed, match=re.escape("within 0.1 s")) as failed:
        fetch("https://media.example/", max_bytes=10, timeout_seconds=0.1, accept="video/", resolver=resolver)

    assert time.monotonic() - started < 0.4
    assert failed.value.retryable


def test_an_ssl_context_that_does_not_verify_is_rejected():
    careless = ssl.create_default_context()
    careless.check_hostname = False
    careless.verify_mode = ssl.CERT_NONE

    with pytest.raises(ValueError, match="must verify"):
        get("https://media.example/", FakeResolver({}), ssl_context=careless)


@pytest.mark.parametrize("options", [{"max_bytes": 0}, {"timeout_seconds": 0}, {"accept": ()}])
def test_limits_must_be_given(options):
    arguments = {"max_bytes": 10, "timeout_seconds": 1, "accept": ("video/",), **options}

    with pytest.raises(ValueError, match=r"positive|no content type"):
        fetch("https://media.example/", resolver=FakeResolver({}), **arguments)


# ------------------------------------------------------------------ errors and messages


def test_messages_name_the_url_without_credentials_or_query():
    assert shown_url("https://u:p@cdn.example/a/b.mp4?X-Amz-Signature=abc") == "https://cdn.example/a/b.mp4?…"
    assert shown_url("https://cdn.example/" + "a" * 500).endswith("…")
    assert len(shown_url("https://cdn.example/" + "a" * 500)) == 200
    assert shown_url("https://cdn.example/x\x00y") == "https://cdn.example/x?y"


def test_errors_are_domain_errors_that_say_whether_to_retry():
    refused = FetchRefused("https://cdn.example/a.mp4?sig=1", "it is too big")
    gone = FetchFailed("https://cdn.example/a.mp4", "the server answered 404 Not Found", retryable=False)
    busy = FetchFailed("https://cdn.example/a.mp4", "the server answered 503 Service Unavailable")
    redirected = FetchRefused(
        "https://10.0.0.1/", "10.0.0.1 is a private address", redirected_from="https://a.example/"
    )

    assert isinstance(refused, TaskApiError)
    assert str(refused) == "Refused to fetch https://cdn.example/a.mp4?…: it is too big"
    assert (refused.permanent, gone.permanent, busy.permanent) == (True, True, False)
    assert str(gone) == "Could not fetch https://cdn.example/a.mp4: the server answered 404 Not Found"
    assert str(redirected) == (
        "Refused to fetch https://10.0.0.1/ (redirected from https://a.example/): 10.0.0.1 is a private address"
    )
    assert refused.url == "https://cdn.example/a.mp4?sig=1"

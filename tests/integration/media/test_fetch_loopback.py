"""Real fetches against HTTP and HTTPS servers on 127.0.0.1, started here.

Host names (media.test, internal.example) resolve through an injected resolver: the fetch must
connect to the address it vetted, since no real DNS knows these names. Connections to anything
but loopback are blocked for every test (pytest-socket), so a refusal that came after connecting
to 10.0.0.1 or 169.254.169.254 would fail here rather than reach out."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pytest_socket import socket_allow_hosts

from taskapi.media.fetch import FetchFailed, FetchRefused, fetch
from tests.support.resolver import FakeResolver

VIDEO = bytes(range(256)) * 800  # 204,800 bytes: several reads of 64 KiB
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 120
SECRET = b"secret body text the message must never show"


# ------------------------------------------------------------------ the servers


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MediaServer

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host"), dict(self.headers)))
        route, _, query = self.path.partition("?")
        name, *rest = route.strip("/").split("/")
        getattr(self, "route_" + name.replace("-", "_").replace(".", "_"), self.route_missing)(*rest, query=query)

    def answer(self, status: int, content_type: str | None = None, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", headers.pop("length", str(len(body))))
        for header, value in headers.items():
            self.send_header(header.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_missing(self, *_: str, query: str) -> None:
        self.answer(404, "text/plain", SECRET)

    def route_video_mp4(self, query: str) -> None:
        self.answer(200, "video/mp4", VIDEO)

    def route_logo_png(self, query: str) -> None:
        self.answer(200, "image/png; charset=binary", PNG)

    def route_page_html(self, query: str) -> None:
        self.answer(200, "text/html; charset=utf-8", b"<html>" + SECRET)

    def route_untyped(self, query: str) -> None:
        self.answer(200, None, VIDEO)

    def route_gzipped(self, query: str) -> None:
        self.answer(200, "video/mp4", VIDEO, Content_Encoding="gzip")

    def route_chunked(self, query: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(VIDEO), 50_000):
            piece = VIDEO[start : start + 50_000]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_stream(self, query: str) -> None:
        """No Content-Length, no chunks: the body ends when the connection does."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(VIDEO)

    def route_huge(self, query: str) -> None:
        self.close_connection = True
        self.answer(200, "video/mp4", VIDEO[:1000], length="50000000000")

    def route_short(self, query: str) -> None:
        self.close_connection = True
        self.answer(200, "video/mp4", VIDEO[:10], length="1000")

    def route_redirect(self, query: str) -> None:
        self.answer(302, "text/plain", SECRET, Location=unquote(query))

    def route_hops(self, left: str, query: str) -> None:
        """/hops/N: N redirects, the last to the video."""
        remaining = int(left)
        self.answer(302, Location=f"/hops/{remaining - 1}" if remaining > 1 else "/video.mp4")

    def route_status(self, code: str, query: str) -> None:
        self.answer(int(code), "text/plain", SECRET)

    def route_slow(self, query: str) -> None:
        time.sleep(1.5)
        self.answer(200, "video/mp4", VIDEO)

    def route_drip(self, query: str) -> None:
        """Headers at once, then a byte every 50 ms: each read is quick, the whole is not. With
        ?unsized, no Content-Length: the body ends when the connection does."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if query == "unsized":
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", "1000")
        self.end_headers()
        self.close_connection = True
        stop = time.monotonic() + 3
        while time.monotonic() < stop:
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.05)


class MediaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str | None, dict[str, str]]] = []
        self.sni_names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = self._note_sni
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _note_sni(self, _socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.sni_names.append(name)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the point of several tests) is not an error here

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    running = MediaServer()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    """Connections to anything but loopback fail loudly (pytest-socket lifts this after each test)."""
    socket_allow_hosts(["127.0.0.0/8", "::1/128"])


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(
        {
            "media.test": ["127.0.0.1"],
            "other.test": ["127.0.0.1"],
            "internal.example": ["10.0.0.1"],
            "metadata.example": ["169.254.169.254"],
            "mapped.example": ["::ffff:10.0.0.1"],
            "public.example": ["93.184.216.34"],
        }
    )


def get(url: str, resolver: FakeResolver, **options):
    options = {"max_bytes": 10_000_000, "timeout_seconds": 2.0, "accept": ("video/",), **options}
    return fetch(url, resolver=resolver, allow_loopback_http=True, **options)


# ------------------------------------------------------------------ good fetches


def test_a_video_is_fetched_from_the_vetted_address_with_the_name_as_host(server, resolver, tmp_path):
    url = f"http://media.test:{server.port}/video.mp4"

    with get(url, resolver, directory=tmp_path) as fetched:
        assert fetched.url == url
        assert fetched.content_type == "video/mp4"
        assert fetched.size == len(VIDEO)
        assert fetched.read_bytes() == VIDEO
        assert fetched.path.parent == tmp_path

    assert list(tmp_path.iterdir()) == [], "the temporary file goes with the `with` block"
    path, host, headers = server.requests[-1]
    assert (path, host) == ("/video.mp4", f"media.test:{server.port}")
    assert headers["Accept"] == "video/*"
    assert headers["Accept-Encoding"] == "identity"
    assert resolver.calls == ["media.test"], "one lookup: the connection goes to the address vetted"


def test_a_logo_is_fetched_and_its_content_type_loses_its_parameters(server, resolver):
    with get(
        f"http://media.test:{server.port}/logo.png", resolver, accept=("image/png", "image/jpeg", "image/webp")
    ) as fetched:
        assert fetched.content_type == "image/png"
        assert fetched.read_bytes() == PNG


@pytest.mark.parametrize("route", ["chunked", "stream"])
def test_bodies_without_a_content_length_are_read_to_the_end(server, resolver, route):
    with get(f"http://media.test:{server.port}/{route}", resolver, max_bytes=len(VIDEO)) as fetched:
        assert fetched.read_bytes() == VIDEO


def test_a_body_of_exactly_max_bytes_is_accepted(server, resolver):
    with get(f"http://media.test:{server.port}/video.mp4", resolver, max_bytes=len(VIDEO)) as fetched:
        assert fetched.size == len(VIDEO)


def test_a_rebinding_resolver_gets_no_second_chance(server):
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def rebinding(host, port, *_):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in next(answers)]

    with get(f"http://media.test:{server.port}/video.mp4", rebinding) as fetched:
        assert fetched.read_bytes() == VIDEO

    assert calls == ["media.test"]


def test_an_address_that_refuses_is_passed_over_for_the_next(server):
    resolver = FakeResolver({"media.test": ["127.0.0.2", "127.0.0.1"]})  # nothing listens on .2

    with get(f"http://media.test:{server.port}/video.mp4", resolver) as fetched:
        assert fetched.size == len(VIDEO)


def test_a_redirect_chain_of_three_is_followed(server, resolver):
    with get(f"http://media.test:{server.port}/hops/3", resolver) as fetched:
        assert fetched.url == f"http://media.test:{server.port}/video.mp4"
        assert fetched.read_bytes() == VIDEO

    assert resolver.calls == ["media.test"] * 4, "every hop is resolved and vetted again"


# ------------------------------------------------------------------ refusals


def test_a_redirect_chain_longer_than_three_is_refused(server, resolver):
    url = f"http://media.test:{server.port}/hops/4"

    with pytest.raises(FetchRefused, match="redirects more than 3 times") as refused:
        get(url, resolver)

    assert refused.value.url == url
    assert [path for path, *_ in server.requests[-4:]] == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


@pytest.mark.parametrize(
    ("location", "named"),
    [
        ("https://internal.example/video.mp4", "internal.example resolves to a private address"),
        ("https://metadata.example/latest/meta-data/", "metadata.example resolves to a cloud metadata address"),
        ("https://mapped.example/", "IPv4-mapped form of a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "is a cloud metadata address (AWS, IPv6)"),
        ("http://public.example/video.mp4", "http is fetched only from loopback"),
        ("file:///etc/passwd", "only https URLs are fetched"),
    ],
)
def test_a_redirect_is_vetted_like_the_first_url(server, resolver, location, named):
    url = f"http://media.test:{server.port}/redirect?{location}"
    requests_before = len(server.requests)

    with pytest.raises(FetchRefused, match=re.escape(named)) as refused:
        get(url, resolver)

    assert "(redirected from http://media.test:" in str(refused.value)
    assert len(server.requests) == requests_before + 1


def test_http_to_a_public_name_is_refused_before_resolving_or_connecting(server, resolver):
    with pytest.raises(FetchRefused, match="only https URLs are fetched"):
        fetch(
            "http://public.example/video.mp4", max_bytes=100, timeout_seconds=1, accept=("video/",), resolver=resolver
        )

    assert resolver.calls == []


def test_loopback_needs_the_allowance(tls_server, resolver, trusting):
    with pytest.raises(FetchRefused, match=re.escape("media.test resolves to a loopback address")):
        fetch(
            f"https://media.test:{tls_server.port}/video.mp4",
            max_bytes=10**7,
            timeout_seconds=1,
            accept=("video/",),
            resolver=resolver,
            ssl_context=trusting,
        )

    assert resolver.calls == ["media.test"]


@pytest.mark.parametrize("route", ["video.mp4", "stream", "chunked"])
def test_a_body_over_max_bytes_is_refused_and_leaves_no_file(server, resolver, tmp_path, route):
    with pytest.raises(FetchRefused, match=f"limit of {len(VIDEO) - 1}"):
        get(f"http://media.test:{server.port}/{route}", resolver, max_bytes=len(VIDEO) - 1, directory=tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_a_content_length_over_max_bytes_is_refused_before_reading(server, resolver, tmp_path):
    with pytest.raises(FetchRefused, match="50000000000 bytes, over the limit of 10000000"):
        get(f"http://media.test:{server.port}/huge", resolver, directory=tmp_path)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("route", "accept", "reason"),
    [
        ("page.html", ("video/",), "the response is text/html, not video/*"),
        ("video.mp4", ("image/png", "image/jpeg"), "the response is video/mp4, not image/png or image/jpeg"),
        ("logo.png", lambda kind: kind == "video/mp4", "the response is image/png, not an accepted type"),
        ("untyped", ("video/",), "no Content-Type"),
        ("gzipped", ("video/",), "compressed"),
    ],
)
def test_the_wrong_content_is_refused(server, resolver, route, accept, reason):
    with pytest.raises(FetchRefused, match=reason) as refused:
        get(f"http://media.test:{server.port}/{route}", resolver, accept=accept)

    assert "secret" not in str(refused.value)
    assert refused.value.permanent


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("code", "phrase", "retryable"),
    [
        (404, "404 Not Found", False),
        (403, "403 Forbidden", False),
        (410, "410 Gone", False),
        (429, "429 Too Many Requests", True),
        (500, "500 Internal Server Error", True),
        (503, "503 Service Unavailable", True),
    ],
)
def test_non_2xx_answers_fail_and_say_whether_to_retry(server, resolver, code, phrase, retryable):
    url = f"http://media.test:{server.port}/status/{code}"

    with pytest.raises(FetchFailed) as failed:
        get(url, resolver)

    assert str(failed.value) == f"Could not fetch {url}: the server answered {phrase}"
    assert failed.value.retryable is retryable
    assert failed.value.permanent is not retryable


def test_a_slow_server_hits_the_deadline(server, resolver):
    started = time.monotonic()

    with pytest.raises(FetchFailed, match=re.escape("no complete answer within 0.4 s")) as failed:
        get(f"http://media.test:{server.port}/slow", resolver, timeout_seconds=0.4)

    assert time.monotonic() - started < 1.0
    assert failed.value.retryable


@pytest.mark.parametrize("query", ["sized", "unsized"])
def test_a_server_that_trickles_cannot_stretch_the_deadline(server, resolver, tmp_path, query):
    started = time.monotonic()

    with pytest.raises(FetchFailed, match=re.escape("no complete answer within 0.5 s")):
        get(f"http://media.test:{server.port}/drip?{query}", resolver, timeout_seconds=0.5, directory=tmp_path)

    assert time.monotonic() - started < 1.0
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_short_is_retryable(server, resolver):
    with pytest.raises(FetchFailed, match="cut short") as failed:
        get(f"http://media.test:{server.port}/short", resolver)

    assert failed.value.retryable


def test_a_refused_connection_is_retryable(resolver):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(FetchFailed, match="connection was refused") as failed:
        get(f"http://media.test:{port}/video.mp4", resolver)

    assert failed.value.retryable


# ------------------------------------------------------------------ https with a test CA


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for media.test: (CA file, certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taskapi test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "media.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture(scope="module")
def tls_server(test_ca) -> Iterator[MediaServer]:
    _, cert, key = test_ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    running = MediaServer(tls=context)
    yield running
    running.stop()


@pytest.fixture
def trusting(test_ca) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(test_ca[0]))


def test_https_verifies_the_certificate_for_the_name_and_sends_it_as_sni(tls_server, resolver, trusting):
    url = f"https://media.test:{tls_server.port}/video.mp4"

    with get(url, resolver, ssl_context=trusting) as fetched:
        assert fetched.read_bytes() == VIDEO

    assert tls_server.sni_names[-1] == "media.test"
    assert tls_server.requests[-1][1] == f"media.test:{tls_server.port}"


def test_https_refuses_a_certificate_for_another_name(tls_server, resolver, trusting):
    with pytest.raises(FetchFailed, match=re.escape("certificate does not verify for other.test")) as failed:
        get(f"https://other.test:{tls_server.port}/video.mp4", resolver, ssl_context=trusting)

    assert failed.value.permanent


def test_https_refuses_a_certificate_the_system_does_not_trust(tls_server, resolver):
    with pytest.raises(FetchFailed, match=re.escape("certificate does not verify for media.test")) as failed:
        get(f"https://media.test:{tls_server.port}/video.mp4", resolver)

    assert failed.value.permanent


def test_a_redirect_from_https_to_http_is_refused(tls_server, server, resolver, trusting):
    url = f"https://media.test:{tls_server.port}/redirect?http://media.test:{server.port}/video.mp4"
    requests_before = len(server.requests)

    with pytest.raises(FetchRefused, match="a redirect from https to http is not followed"):
        get(url, resolver, ssl_context=trusting)

    assert len(server.requests) == requests_before

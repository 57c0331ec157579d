"""`taskapi webhooks listen` against the app over the fakes: its receiver on 127.0.0.1 gets signed
deliveries (as the service's signing makes them) and forged ones; what it prints, answers and
forwards, and that its temporary endpoint is gone afterwards, however the command ended.

The command waits in the Runtime's sleep: the tests act there (while it listens), then stop it
as Ctrl-C would. Sockets: tests/unit blocks them; these tests allow loopback only."""

from __future__ import annotations

import argparse
import io
import json
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi.testclient import TestClient
from pytest_socket import enable_socket, socket_allow_hosts
from standardwebhooks.webhooks import Webhook

from taskapi import cli as taskapi_cli
from taskapi.cli_support import run_command
from taskapi.client.cli import webhooks
from taskapi.client.cli.runtime import ENV_API_KEY, ENV_URL, Runtime
from taskapi.models.domain import isoformat, utc_now
from taskapi.settings import Settings, get_settings
from taskapi.webhooks import signing
from taskapi.webhooks.models import EVENT_TYPES, Endpoint, event_id_for
from tests.fakes import Fakes
from tests.unit.client.conftest import BASE_URL
from tests.unit.client.support import Ran

ACCOUNT = "acct_a"


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    enable_socket()
    socket_allow_hosts(["127.0.0.1", "::1"])


def endpoints(fakes: Fakes) -> list[Endpoint]:
    return fakes.webhooks.list_endpoints(ACCOUNT)


@dataclass
class Listening:
    """The command's endpoint while it listens, and a way to send it deliveries."""

    endpoint: Endpoint
    printed: io.StringIO

    def receiver(self) -> str:
        """Where the receiver listens, as the command printed it."""
        return next(line.split()[2] for line in self.printed.getvalue().splitlines() if line.startswith("Listening"))

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def secret(self) -> str:
        return self.endpoint.secrets[0].secret

    def post(self, body: bytes, headers: dict[str, str], url: str | None = None) -> httpx.Response:
        return httpx.post(url or self.url, content=body, headers={"content-type": "application/json", **headers})

    def deliver(self, body: bytes, *, secret: str | None = None, url: str | None = None) -> httpx.Response:
        """POSTed as the service delivers it: signed with the endpoint's secret (or `secret`)."""
        event_id = json.loads(body)["id"]
        return self.post(body, signing.headers([secret or self.secret], event_id, body), url)


def event(kind: str = "task.completed", subject: str = "t1", **data: object) -> bytes:
    created_at = isoformat(utc_now())
    if kind.startswith("task."):
        data = {"task_id": subject, "status": "COMPLETED", **data}
    body = {
        "id": event_id_for(ACCOUNT, subject, 3, kind, created_at),
        "type": kind,
        "created_at": created_at,
        "account_id": ACCOUNT,
        "data": data,
        "sequence": 3,
        "group_id": None,
    }
    return json.dumps(body).encode()


@pytest.fixture
def listen(app_http: TestClient, api_key: str, fakes: Fakes) -> Callable[..., Ran]:
    """`taskapi webhooks listen ARGV`: `during(listening)` runs while it listens, then Ctrl-C
    stops it (unless `during` raised). http= replaces the app as the API's transport."""

    def run(*argv: str, during: Callable[[Listening], object] = lambda _: None, http: object = None) -> Ran:
        stdout = io.StringIO()

        def sleep(_: float) -> None:
            (endpoint,) = endpoints(fakes)
            during(Listening(endpoint, stdout))
            raise KeyboardInterrupt

        runtime = Runtime(
            env={ENV_URL: BASE_URL, ENV_API_KEY: api_key}, stdout=stdout, http=http or app_http, sleep=sleep
        )
        parser = argparse.ArgumentParser(prog="taskapi")
        webhooks.register(parser.add_subparsers(dest="command", required=True), runtime)
        code = run_command(parser, ["webhooks", "listen", *argv])
        return Ran(code, stdout.getvalue())

    return run


# ------------------------------------------------------------------ receiving


def test_prints_each_verified_event_and_deletes_its_endpoint_on_ctrl_c(listen, fakes):
    task_done = event("task.completed", "t1")
    group_done = event("group.completed", "g1", group_id="g1", counts={"COMPLETED": 3, "FAILED": 1}, total=4)
    registered: list[Endpoint] = []
    answers: list[int] = []

    def during(listening: Listening) -> None:
        registered.append(listening.endpoint)
        answers.extend(listening.deliver(body).status_code for body in (task_done, group_done, task_done))

    ran = listen("--events", "task.completed,group.completed", "--group", "g1", during=during)

    assert ran.code == 0
    (endpoint,) = registered
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert (endpoint.events, endpoint.task_source_group_id) == (["task.completed", "group.completed"], "g1")
    assert answers == [204, 204, 204]
    lines = [line.split() for line in ran.out.splitlines() if line[:2].isdigit()]
    task_id, group_id = json.loads(task_done)["id"], json.loads(group_done)["id"]
    assert [line[1:] for line in lines] == [
        ["task.completed", task_id, "task", "t1", "COMPLETED"],
        ["group.completed", group_id, "group", "g1", "COMPLETED", "3,", "FAILED", "1"],
        ["task.completed", task_id, "task", "t1", "COMPLETED", "(again)"],
    ]
    assert f"Webhook endpoint {endpoint.endpoint_id}" in ran.out
    assert endpoint.secrets[0].secret in ran.out, "shown for a receiver behind --forward-to"
    assert f"webhook endpoint {endpoint.endpoint_id} is deleted" in ran.out
    assert endpoints(fakes) == []


def test_a_forged_or_stale_delivery_is_answered_400_with_a_warning(listen, capsys):
    body = event()
    answers: list[int] = []

    def during(listening: Listening) -> None:
        event_id = json.loads(body)["id"]
        stale = signing.headers([listening.secret], event_id, body, now=utc_now().timestamp() - 3600)
        answers.append(listening.deliver(body, secret=signing.new_secret()).status_code)
        answers.append(listening.post(body, stale).status_code)
        answers.append(listening.post(body, {}).status_code)
        tampered = body.replace(b"COMPLETED", b"FAILED")
        answers.append(listening.post(tampered, signing.headers([listening.secret], event_id, body)).status_code)

    ran = listen(during=during)

    assert ran.code == 0
    assert answers == [400, 400, 400, 400]
    assert json.loads(body)["id"] not in ran.out
    warnings = [line for line in capsys.readouterr().err.splitlines() if "refused a delivery" in line]
    assert len(warnings) == 4
    assert "no signature matches the secret" in warnings[0]
    assert "too far from the current time" in warnings[1]


def test_json_prints_the_bodies_alone_on_stdout(listen, capsys):
    bodies = [event("task.failed", "t1", status="FAILED"), event("upload.completed", "up_1", upload_id="up_1")]

    def during(listening: Listening) -> None:
        for body in bodies:
            assert listening.deliver(body).status_code == 204

    ran = listen("--json", during=during)

    assert ran.code == 0
    assert [json.loads(line) for line in ran.out.splitlines()] == [json.loads(b) for b in bodies]
    assert "Listening on http://127.0.0.1:" in capsys.readouterr().err


def test_upload_events_name_the_upload_and_its_status(listen):
    body = event("upload.failed", "up_9", upload_id="up_9", status="FAILED")

    ran = listen(during=lambda listening: listening.deliver(body))

    assert f"upload.failed     {json.loads(body)['id']}  upload up_9  FAILED" in ran.out


# ------------------------------------------------------------------ forwarding


class Target(ThreadingHTTPServer):
    """Where --forward-to points: records each POST and answers the scripted statuses in turn."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                target.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = target.answers.pop(0) if target.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"handled")

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def target() -> Iterator[Target]:
    running = Target()
    yield running
    running.shutdown()
    running.server_close()


def test_forwards_each_verified_delivery_and_answers_with_the_forwards_status(listen, target):
    target.answers += [202, 500]
    first, second = event("task.completed", "t1"), event("task.completed", "t2")
    answers: list[httpx.Response] = []
    secrets: list[str] = []

    def during(listening: Listening) -> None:
        secrets.append(listening.secret)
        answers.append(listening.deliver(first))
        answers.append(listening.deliver(second))
        answers.append(listening.deliver(first, secret=signing.new_secret()))

    ran = listen("--forward-to", target.url(), during=during)

    assert ran.code == 0
    assert [(a.status_code, a.content) for a in answers] == [
        (202, b"handled"),
        (500, b"handled"),
        (400, b"invalid signature"),
    ]
    assert [body for _, _, body in target.received] == [first, second], "the forged one is not forwarded"
    path, headers, _ = target.received[0]
    assert path == "/hooks"
    assert headers["content-type"] == "application/json"
    assert Webhook(secrets[0]).verify(first, headers)["id"] == json.loads(first)["id"], "signed as received"
    assert "  -> 202" in ran.out
    assert "  -> 500" in ran.out


def test_a_forward_that_cannot_connect_is_answered_502(listen, target, capsys):
    gone = target.url()
    target.shutdown()
    target.server_close()
    answers: list[int] = []

    ran = listen("--forward-to", gone, during=lambda listening: answers.append(listening.deliver(event()).status_code))

    assert ran.code == 0
    assert answers == [502]
    assert f"{gone} could not be reached" in capsys.readouterr().err


# ------------------------------------------------------------------ the endpoint is deleted


def test_an_error_while_listening_deletes_the_endpoint_and_goes_on(listen, fakes):
    def during(listening: Listening) -> None:
        raise RuntimeError("the terminal went away")

    with pytest.raises(RuntimeError, match="the terminal went away"):
        listen(during=during)

    assert endpoints(fakes) == []


def test_a_registration_whose_answer_was_lost_leaves_no_endpoint(listen, fakes, app_http, capsys):
    """The create landed but its answer did not arrive: the command finds its endpoint by its
    description and deletes it."""
    seen: list[str] = []

    def lose_the_answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        response = app_http.request(request.method, str(request.url), headers=request.headers, content=request.content)
        if request.method == "POST" and request.url.path == "/api/webhooks":
            assert response.status_code == 201
            assert len(endpoints(fakes)) == 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)

    http = httpx.Client(transport=httpx.MockTransport(lose_the_answer))

    ran = listen(http=http)

    assert ran.code == 1
    assert "cannot register the webhook endpoint" in capsys.readouterr().err
    assert seen[0] == "POST /api/webhooks"
    assert seen[-1].startswith("DELETE /api/webhooks/we_")
    assert endpoints(fakes) == []


def test_sigterm_stops_it_like_ctrl_c(listen, fakes):
    def during(listening: Listening) -> None:
        signal.raise_signal(signal.SIGTERM)

    ran = listen(during=during)

    assert ran.code == 0
    assert "is deleted" in ran.out
    assert endpoints(fakes) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is put back"


def test_an_endpoint_already_deleted_by_hand_is_fine(listen, fakes):
    def during(listening: Listening) -> None:
        fakes.webhooks.delete_endpoint(ACCOUNT, listening.endpoint.endpoint_id)

    ran = listen(during=during)

    assert ran.code == 0
    assert "is deleted" in ran.out


# ------------------------------------------------------------------ outside the local stack


def test_in_aws_a_loopback_url_is_refused_with_what_to_do(listen, fakes, app_http, capsys):
    app_http.app.dependency_overrides[get_settings] = lambda: Settings(environment="aws")  # type: ignore[attr-defined]

    ran = listen(during=lambda _: pytest.fail("it must not listen"))

    assert ran.code == 1
    error = capsys.readouterr().err
    assert "the API needs a public https URL" in error
    assert "--public-url https://" in error
    assert endpoints(fakes) == []


def test_in_aws_public_url_is_registered_while_the_receiver_listens_locally(listen, fakes, app_http):
    app_http.app.dependency_overrides[get_settings] = lambda: Settings(environment="aws")  # type: ignore[attr-defined]
    public = "https://quiet-fox.trycloudflare.com/hooks"
    body = event()
    answers: list[int] = []

    def during(listening: Listening) -> None:
        assert listening.url == public
        answers.append(listening.deliver(body, url=listening.receiver()).status_code)

    ran = listen("--public-url", public, during=during)

    assert ran.code == 0
    assert answers == [204]
    assert json.loads(body)["id"] in ran.out
    assert f"(registered as {public})" in ran.out
    assert endpoints(fakes) == []


# ------------------------------------------------------------------ the taskapi command


def test_taskapi_has_the_command_and_checks_its_arguments(capsys):
    parser = taskapi_cli.build_parser()

    args = parser.parse_args(["webhooks", "listen", "--events", "all", "--port", "8765"])

    assert args.events == list(EVENT_TYPES)
    assert "task.progress" in args.events
    assert args.port == 8765
    assert taskapi_cli.main(["webhooks", "listen", "--events", "task.done"]) == 2
    assert "expected all, or one or more of task.queued" in capsys.readouterr().err
    assert taskapi_cli.main(["webhooks", "listen", "--public-url", "http://example.com/hooks"]) == 2


def test_a_port_in_use_is_refused_before_anything_is_registered(listen, fakes, target, capsys):
    ran = listen("--port", str(target.server_address[1]), during=lambda _: pytest.fail("it must not listen"))

    assert ran.code == 2
    assert f"cannot listen on 127.0.0.1:{target.server_address[1]}" in capsys.readouterr().err
    assert endpoints(fakes) == []

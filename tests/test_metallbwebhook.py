"""The wait for MetalLB's webhook: kubeconfig parsing, the dry-run request, the bounded retry loop,
and the real thing against an HTTPS server on 127.0.0.1 that checks the client certificate."""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import yaml

from krc.commands import metallbwebhook
from krc.render import addon_values
from krc.commands.metallbwebhook import ApiServer, Request, Response, WaitError

ROOT = Path(__file__).resolve().parent.parent
POOL = addon_values.ip_address_pool(addon_values.parse_pool_range("172.30.255.200-172.30.255.250"))
NOT_READY = json.dumps(
    {
        "kind": "Status",
        "status": "Failure",
        "code": 500,
        "message": 'Internal error occurred: failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io": '
        'failed to call webhook: Post "https://metallb-webhook-service.metallb-system.svc:443/validate-metallb-io-'
        'v1beta1-ipaddresspool?timeout=10s": tls: failed to verify certificate: x509: certificate signed by unknown '
        "authority",
    }
).encode()
ADMITTED = json.dumps(POOL).encode()


def kubeconfig(
    server: str, ca_pem: str | None, cert_pem: str | None, key_pem: str | None, token: str | None = None
) -> str:
    """A kubeconfig shaped like `kind get kubeconfig` prints it."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    cluster = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = b64(ca_pem)
    user: dict[str, str] = {}
    if cert_pem and key_pem:
        user = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    if token:
        user["token"] = token
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "kind-dev",
            "clusters": [
                {"name": "other", "cluster": {"server": "https://10.0.0.1"}},
                {"name": "kind-dev", "cluster": cluster},
            ],
            "contexts": [{"name": "kind-dev", "context": {"cluster": "kind-dev", "user": "kind-dev"}}],
            "users": [{"name": "kind-dev", "user": user}],
        }
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*answers: Response | OSError):
    """A transport that gives ``answers`` in order, then repeats the last one."""
    sent: list[Request] = []

    def send(request: Request) -> Response:
        sent.append(request)
        answer = answers[min(len(sent), len(answers)) - 1]
        if isinstance(answer, OSError):
            raise answer
        return answer

    send.sent = sent  # type: ignore[attr-defined]
    return send


# --- kubeconfig and request ---------------------------------------------------------------------------


def test_kubeconfig_of_the_current_context_is_read():
    api = metallbwebhook.parse_kubeconfig(kubeconfig("https://127.0.0.1:40321/", "CA", "CERT", "KEY"))
    assert api == ApiServer(server="https://127.0.0.1:40321", ca_pem="CA", cert_pem="CERT", key_pem="KEY")


def test_kubeconfig_with_a_token_and_no_client_certificate():
    api = metallbwebhook.parse_kubeconfig(kubeconfig("https://127.0.0.1:1", None, None, None, token="t0k"))
    assert (api.token, api.cert_pem, api.ca_pem) == ("t0k", None, None)
    request = metallbwebhook.dry_run_request(api, POOL)
    assert request.headers["Authorization"] == "Bearer t0k"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("current-context: nope\ncontexts: []\n", "no context 'nope'", id="no-context"),
        pytest.param(
            "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: [{name: k, cluster: {}}]\n",
            "no API server",
            id="no-server",
        ),
        pytest.param("a: [", "not YAML", id="not-yaml"),
    ],
)
def test_bad_kubeconfig_is_a_wait_error(text, message):
    with pytest.raises(WaitError, match=message):
        metallbwebhook.parse_kubeconfig(text)


def test_dry_run_request_creates_the_pool_without_storing_it():
    request = metallbwebhook.dry_run_request(ApiServer(server="https://127.0.0.1:6443"), POOL)
    assert request.method == "POST"
    assert request.url == (
        "https://127.0.0.1:6443/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools"
        "?dryRun=All&fieldManager=kind-registry-cache"
    )
    assert json.loads(request.body) == POOL
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        pytest.param(201, ADMITTED, "ok", id="admitted"),
        pytest.param(409, b'{"message":"ipaddresspools.metallb.io \\"kind\\" already exists"}', "ok", id="exists"),
        pytest.param(500, NOT_READY, "retry", id="failed-calling-webhook"),
        pytest.param(503, b"", "retry", id="unavailable"),
        pytest.param(404, b'{"message":"the server could not find the requested resource"}', "retry", id="no-crd-yet"),
        pytest.param(429, b"", "retry", id="throttled"),
        pytest.param(
            403,
            b'{"message":"admission webhook \\"ipaddresspoolvalidationwebhook.metallb.io\\" denied the request: overlaps"}',
            "fail",
            id="denied",
        ),
        pytest.param(422, b'{"message":"spec.addresses: Invalid value"}', "fail", id="invalid"),
        pytest.param(401, b'{"message":"Unauthorized"}', "fail", id="unauthorized"),
    ],
)
def test_classify(status, body, verdict):
    assert metallbwebhook.classify(Response(status, body))[0] == verdict


# --- the retry loop -----------------------------------------------------------------------------------


def test_the_wait_ends_when_the_webhook_admits_the_pool():
    clock = FakeClock()
    transport = scripted(
        OSError("connection refused"), Response(500, NOT_READY), Response(500, NOT_READY), Response(201, ADMITTED)
    )
    took = metallbwebhook.wait_for_webhook(
        Request("POST", "https://x", b"{}", {}), transport, timeout=60, poll=2, clock=clock, sleep=clock.sleep
    )
    assert len(transport.sent) == 4
    assert clock.sleeps == [2, 2, 2]
    assert took == 6


def test_the_wait_fails_naming_the_metallb_webhook_when_it_never_answers():
    clock = FakeClock()
    transport = scripted(Response(500, NOT_READY))
    with pytest.raises(WaitError) as info:
        metallbwebhook.wait_for_webhook(
            Request("POST", "https://x", b"{}", {}), transport, timeout=30, poll=2, clock=clock, sleep=clock.sleep
        )
    message = str(info.value)
    assert "MetalLB's validating webhook ipaddresspoolvalidationwebhook.metallb.io" in message
    assert "metallb-system/metallb-webhook-service" in message
    assert "within 30 s" in message
    assert "certificate signed by unknown authority" in message, "the last answer is shown"
    assert clock.now <= 30, "bounded"
    assert len(transport.sent) == 16, "one try at 0, 2, ..., 30 s"


def test_a_refusal_that_waiting_cannot_fix_ends_the_wait_at_once():
    clock = FakeClock()
    denied = Response(403, b'{"message":"admission webhook \\"x\\" denied the request: overlaps pool other"}')
    with pytest.raises(WaitError, match="denied the request: overlaps pool other"):
        metallbwebhook.wait_for_webhook(
            Request("POST", "https://x", b"{}", {}), scripted(denied), timeout=300, clock=clock, sleep=clock.sleep
        )
    assert clock.sleeps == []


# --- against a real HTTPS server on 127.0.0.1 -----------------------------------------------------------


class FakeApiServer:
    """An HTTPS server on loopback that requires the kubeconfig's client certificate and answers
    "failed calling webhook" to the first ``failures`` dry runs (``None``: forever), then admits."""

    def __init__(self, ca: trustme.CA, failures: int | None) -> None:
        self.failures = failures
        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                peer = self.connection.getpeercert()
                subject = dict(item[0] for item in peer["subject"])
                outer.requests.append((self.path, subject.get("commonName", ""), body))
                ready = outer.failures is not None and len(outer.requests) > outer.failures
                status, answer = (201, ADMITTED) if ready else (500, NOT_READY)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_kubeconfig(ca) -> str:
    client = ca.issue_cert("kubernetes-admin", common_name="kubernetes-admin")
    return kubeconfig(
        "https://127.0.0.1:0",  # replaced per server
        ca.cert_pem.bytes().decode(),
        client.cert_chain_pems[0].bytes().decode(),
        client.private_key_pem.bytes().decode(),
    )


@pytest.fixture
def api_server(request, ca) -> Iterator[FakeApiServer]:
    server = FakeApiServer(ca, failures=request.param)
    yield server
    server.close()


def _run_module(stdin: str, timeout: float = 30) -> subprocess.CompletedProcess:
    # Exactly what the Command resource runs: the program's interpreter, from the project root.
    return subprocess.run(
        [sys.executable, "-m", "krc.commands.metallbwebhook"],
        input=stdin,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"},
    )


@pytest.mark.parametrize("api_server", [2], indirect=True)
def test_module_waits_over_tls_with_the_client_certificate_until_admitted(api_server, client_kubeconfig):
    config = client_kubeconfig.replace("https://127.0.0.1:0", api_server.url)
    result = _run_module(json.dumps({"kubeconfig": config, "manifest": POOL, "timeout": 20, "poll": 0.2}))
    assert result.returncode == 0, result.stderr
    assert "admitted the IPAddressPool" in result.stdout
    assert len(api_server.requests) == 3
    path, client, body = api_server.requests[-1]
    assert (
        path
        == "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools?dryRun=All&fieldManager=kind-registry-cache"
    )
    assert client == "kubernetes-admin"
    assert body == POOL
    key = yaml.safe_load(config)["users"][0]["user"]["client-key-data"]
    assert key not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr


@pytest.mark.parametrize("api_server", [None], indirect=True)
def test_module_fails_with_a_message_naming_the_metallb_webhook(api_server, client_kubeconfig):
    config = client_kubeconfig.replace("https://127.0.0.1:0", api_server.url)
    result = _run_module(json.dumps({"kubeconfig": config, "manifest": POOL, "timeout": 1, "poll": 0.2}))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "kind-registry-cache: MetalLB's validating webhook ipaddresspoolvalidationwebhook.metallb.io"
    )
    assert "within 1 s" in result.stderr
    assert "PRIVATE KEY" not in result.stderr and "client-key-data" not in result.stderr
    assert len(api_server.requests) >= 2, "it retried before giving up"


def test_module_refuses_garbage_without_echoing_it():
    result = _run_module('{"kubeconfig": "secret-value-123", "manifest": {}}')
    assert result.returncode == 1
    assert "secret-value-123" not in result.stdout + result.stderr
    assert result.stderr.startswith("kind-registry-cache:")


def test_client_key_leaves_no_file_behind_without_memfd(ca, tmp_path, monkeypatch):
    # Off Linux the key goes through a private temporary folder, removed before the request.
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    client = ca.issue_cert("kubernetes-admin")
    context = ssl.create_default_context()
    metallbwebhook._load_client_certificate(  # noqa: SLF001 - the part that touches files
        context, client.cert_chain_pems[0].bytes().decode(), client.private_key_pem.bytes().decode()
    )
    assert list(tmp_path.iterdir()) == []


def test_client_key_goes_through_memory_on_linux(ca, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("tempfile.TemporaryDirectory", None)  # would fail if used
    client = ca.issue_cert("kubernetes-admin")
    context = ssl.create_default_context()
    metallbwebhook._load_client_certificate(  # noqa: SLF001
        context, client.cert_chain_pems[0].bytes().decode(), client.private_key_pem.bytes().decode()
    )
    assert list(tmp_path.iterdir()) == []

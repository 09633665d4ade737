"""Wait until MetalLB's validating webhook accepts an IPAddressPool: ``python -m krc.commands.metallbwebhook``.

Why: the MetalLB controller reports Ready on a plain ping (metallb v0.16.1 internal/k8s/k8s.go:
``mgr.AddReadyzCheck("readyz", healthz.Ping)``), while its webhooks are registered only once the
cert rotator has written the serving certificate and the ``caBundle`` of
``metallb-webhook-configuration`` (k8s.go: ``enableWebhook`` runs after ``<-startListeners``, which
``enableCertRotation`` hands to the rotator as ``IsReady``; internal/k8s/webhook.go). The chart's
webhooks use ``failurePolicy: Fail`` (charts/metallb/templates/webhooks.yaml, ``crds.validationFailurePolicy``),
so in that gap the API server refuses an IPAddressPool with ``failed calling webhook
"ipaddresspoolvalidationwebhook.metallb.io"`` (metallb #1540, #1597), and pulumi-kubernetes retries a
create only on NotFound/NoMatch. The Helm release being ready therefore does not mean the pool can be
created: this waits, with a bound, until a server-side dry-run create of the pool is admitted.

A dry run (``?dryRun=All``) goes through admission, webhooks included, and stores nothing. On stdin, one
JSON object: ``kubeconfig`` (the cluster's, secret: read from stdin, never logged, never left in a file),
``manifest`` (the IPAddressPool), ``timeout`` and optionally ``poll`` seconds. Uses only the standard library: the user's
machine has Python and the project's venv, not kubectl.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

#: The webhook the chart registers for IPAddressPools (charts/metallb/templates/webhooks.yaml, v0.16.1).
WEBHOOK_NAME = "ipaddresspoolvalidationwebhook.metallb.io"
#: The Service in front of the controller's webhook server (same file).
WEBHOOK_SERVICE = "metallb-webhook-service"

DEFAULT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 2.0
#: Per request: a webhook call the API server gives up on takes up to its own 10 s timeout.
REQUEST_TIMEOUT_SECONDS = 30.0


class WaitError(Exception):
    """The webhook never admitted the pool, or the API server refused it for another reason."""


@dataclass(frozen=True)
class ApiServer:
    """Where and how to reach the API server, read from a kubeconfig."""

    server: str
    ca_pem: str | None = None
    insecure: bool = False
    cert_pem: str | None = None
    key_pem: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


#: Sends one request; raises ``OSError`` (``urllib.error.URLError`` included) when nothing answers.
Transport = Callable[[Request], Response]


def _pem(entry: Mapping[str, Any], data_key: str, file_key: str) -> str | None:
    if entry.get(data_key):
        return base64.b64decode(entry[data_key]).decode()
    if entry.get(file_key):
        with open(os.path.expanduser(entry[file_key]), encoding="utf-8") as handle:
            return handle.read()
    return None


def parse_kubeconfig(text: str) -> ApiServer:
    """The current context's server and credentials (kind writes ``*-data`` fields; file paths work too).

    :raises WaitError: when the kubeconfig has no usable current context.
    """
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise WaitError(f"the cluster's kubeconfig is not YAML ({error.__class__.__name__})") from None
    if not isinstance(config, Mapping):
        raise WaitError("the cluster's kubeconfig is empty")

    def named(section: str, name: str | None) -> Mapping[str, Any]:
        items = config.get(section) or []
        for item in items:
            if isinstance(item, Mapping) and (name is None or item.get("name") == name):
                return item
        raise WaitError(f"the cluster's kubeconfig has no {section[:-1]} {name!r}")

    context = named("contexts", config.get("current-context")).get("context") or {}
    cluster = named("clusters", context.get("cluster")).get("cluster") or {}
    user: Mapping[str, Any] = {}
    if context.get("user"):
        user = named("users", context["user"]).get("user") or {}
    if not cluster.get("server"):
        raise WaitError("the cluster's kubeconfig names no API server")
    return ApiServer(
        server=str(cluster["server"]).rstrip("/"),
        ca_pem=_pem(cluster, "certificate-authority-data", "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_pem=_pem(user, "client-certificate-data", "client-certificate"),
        key_pem=_pem(user, "client-key-data", "client-key"),
        token=user.get("token"),
    )


def dry_run_request(api: ApiServer, manifest: Mapping[str, Any]) -> Request:
    """A server-side dry-run create of a namespaced custom resource such as the IPAddressPool."""
    group, _, version = str(manifest["apiVersion"]).partition("/")
    namespace = manifest["metadata"]["namespace"]
    plural = str(manifest["kind"]).lower() + "s"
    url = (
        f"{api.server}/apis/{group}/{version}/namespaces/{urllib.parse.quote(namespace)}/{plural}"
        f"?{urllib.parse.urlencode({'dryRun': 'All', 'fieldManager': 'kind-registry-cache'})}"
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api.token:
        headers["Authorization"] = f"Bearer {api.token}"
    return Request("POST", url, json.dumps(manifest).encode(), headers)


def _message(response: Response) -> str:
    try:
        status = json.loads(response.body)
    except ValueError:
        return response.body.decode(errors="replace")[:500]
    return str(status.get("message", "")) if isinstance(status, Mapping) else ""


def classify(response: Response) -> tuple[str, str]:
    """``("ok" | "retry" | "fail", what the API server said)`` for one dry-run answer.

    Admitted (2xx) or AlreadyExists (409, which storage reports after admission has passed) means the
    webhook answers. A webhook that cannot be called makes the API server answer 500 "failed calling
    webhook"; 404 (CRD not served yet), 429 and other 5xx are passing states too. Any other 4xx (the
    webhook or the schema refused the pool, or the credentials were refused) will not change by waiting.
    """
    text = _message(response)
    if 200 <= response.status < 300 or response.status == 409:
        return "ok", text
    if "failed calling webhook" in text or response.status in (404, 429) or response.status >= 500:
        return "retry", text
    return "fail", text


def wait_for_webhook(
    request: Request,
    transport: Transport,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Send ``request`` until it is admitted; return the seconds it took.

    :raises WaitError: naming the MetalLB webhook, when it did not answer within ``timeout`` seconds
        (with the last answer) or when the API server refused the pool for good.
    """
    start = clock()
    last = "no answer yet"
    while True:
        try:
            response = transport(request)
        except OSError as error:
            last = f"API server not reachable: {getattr(error, 'reason', error)}"
        else:
            verdict, text = classify(response)
            if verdict == "ok":
                return clock() - start
            if verdict == "fail":
                raise WaitError(
                    f"the API server refused a dry-run IPAddressPool (HTTP {response.status}): {text}. "
                    f"MetalLB's webhook {WEBHOOK_NAME} validates it; fix addons.metallb.range or the stack's values"
                )
            last = f"HTTP {response.status}: {text}"
        elapsed = clock() - start
        if elapsed + poll > timeout:
            raise WaitError(
                f"MetalLB's validating webhook {WEBHOOK_NAME} (service metallb-system/{WEBHOOK_SERVICE}) did not "
                f"admit a dry-run IPAddressPool within {timeout:.0f} s; last answer: {last}. The controller serves "
                "it once its certificate rotation is done: see "
                "`kubectl -n metallb-system logs deployment/metallb-controller`, then run `pulumi up` again"
            )
        sleep(poll)


def _load_client_certificate(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # ssl loads a client key only from a path. On Linux an anonymous memory file has one
    # (/proc/self/fd/N) and never touches a disk; elsewhere a private temporary folder is used and
    # removed before this returns, so no copy of the key is left behind.
    pem = (cert_pem.rstrip("\n") + "\n" + key_pem).encode()
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("kubeconfig-client", 0)
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="krc-") as folder:  # created 0700
        path = os.path.join(folder, "client.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        context.load_cert_chain(path)


def ssl_context(api: ApiServer) -> ssl.SSLContext:
    """TLS as the kubeconfig says: its CA (else the system's), its client certificate if any."""
    context = ssl.create_default_context(cadata=api.ca_pem) if api.ca_pem else ssl.create_default_context()
    if api.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if api.cert_pem and api.key_pem:
        _load_client_certificate(context, api.cert_pem, api.key_pem)
    return context


def urllib_transport(context: ssl.SSLContext, timeout: float = REQUEST_TIMEOUT_SECONDS) -> Transport:
    """Sends requests with urllib over ``context``; an HTTP error status is an answer, not an exception."""
    # No proxy: the API server of a kind cluster is on this machine (or the Docker host).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    def send(request: Request) -> Response:
        prepared = urllib.request.Request(
            request.url, data=request.body, headers=dict(request.headers), method=request.method
        )
        try:
            with opener.open(prepared, timeout=timeout) as answer:
                return Response(answer.status, answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read())

    return send


def main(stdin: str) -> int:
    try:
        job = json.loads(stdin)
        api = parse_kubeconfig(job["kubeconfig"])
        request = dry_run_request(api, job["manifest"])
        took = wait_for_webhook(
            request,
            urllib_transport(ssl_context(api)),
            timeout=float(job.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
            poll=float(job.get("poll", POLL_SECONDS)),
        )
    except WaitError as error:
        print(f"kind-registry-cache: {error}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError, ssl.SSLError) as error:
        # Never echo the input: it holds the kubeconfig.
        print(f"kind-registry-cache: cannot wait for MetalLB's webhook: {error.__class__.__name__}", file=sys.stderr)
        return 1
    print(f"MetalLB's webhook {WEBHOOK_NAME} admitted the IPAddressPool after {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.stdin.read()))

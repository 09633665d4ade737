"""A fake upstream registry that behaves like the real ones, in front of a real (plain) registry.

Run inside the upstream container's network namespace (``nsenter -t <pid> -n python fakeupstream.py ...``, see
upstreams.py), it listens where clients expect the registry (``:5000``) and forwards to the registry itself on
``127.0.0.1:<backend>``, adding what real upstreams do and a plain registry does not:

- **Bearer token auth** as Docker Hub, ghcr.io and quay.io answer: ``401`` with
  ``WWW-Authenticate: Bearer realm=…,service=…[,scope=repository:<name>:pull]``, a token endpoint (``GET
  <realm>?service=…&scope=…``) handing out tokens anonymously and to basic-auth logins (``401`` on a wrong one),
  and every API request checked against the token's scopes. ``--auth basic`` asks for HTTP basic auth instead.
- **Docker Hub's rate limit**: ``ratelimit-limit: <n>;w=21600``, ``ratelimit-remaining: <left>;w=21600`` and
  ``docker-ratelimit-source`` on manifest GET and HEAD answers (docs.docker.com "Docker Hub pull usage and
  limits", docker/docs content/manuals/docker-hub/usage/pulls.md), and ``429`` ``TOOMANYREQUESTS`` on a manifest
  GET once none is left. Counted as Docker defines a pull: a GET of an image manifest (a multi-arch image counts
  once per architecture fetched, the index GET itself not); a HEAD is a version check and never counts. Anonymous
  requests share one allowance (one machine's IP), a login has its own.
- **Faults on demand**, through a control socket: an error status for chosen requests, blobs cut short or with
  bytes that do not match their digest, refused connections (the listener closed), every open connection cut.
  Blackholing the address, a name that no longer resolves and a slow link are done from outside (upstreams.py).

Every request is logged in the Apache combined format distribution uses, with the client's real address, so the
tests read this log as they read a registry's. Standard library only: it runs with the host's Python.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

#: Docker Hub's window: 6 hours, as its headers spell it (``;w=21600``).
WINDOW_SECONDS = 21600
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
_API_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags)/(?P<reference>[^/]+)$")
#: Hop-by-hop headers (RFC 9110 7.6.1) and what this front sets itself.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
                  "proxy-authenticate", "host", "authorization", "content-length"}
CHUNK = 256 * 1024


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


class State:
    """Settings, tokens, the rate-limit counters, the faults and the open connections, shared by all threads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.users = dict(u.split(":", 1) for u in args.user)
        #: token -> (subject, repositories it may pull, expiry)
        self.tokens: dict[str, tuple[str, frozenset[str], float]] = {}
        #: bucket ("anonymous" or a username) -> pulls allowed per window; a bucket not here is not limited
        self.limits: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.faults: dict = {}
        self.connections: set[socket.socket] = set()
        self.log = open(args.log, "a", buffering=1)

    # faults

    def take_fault(self, name: str, match) -> dict | None:
        """The fault ``name`` if it is set and ``match(fault)``; one of its ``times`` is used up."""
        with self.lock:
            fault = self.faults.get(name)
            if not fault or not match(fault):
                return None
            times = fault.get("times")
            if times is not None:
                if times <= 0:
                    return None
                fault["times"] = times - 1
            return dict(fault)

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def write_log(self, line: str) -> None:
        with self.lock:
            self.log.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "krc-fake-upstream"
    state: State  # set on the subclass made per process

    # plumbing

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # every request is logged once, by _log, in the registry's format

    def handle(self) -> None:
        with self.state.lock:
            self.state.connections.add(self.connection)
        self.user = "-"
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            pass
        finally:
            with self.state.lock:
                self.state.connections.discard(self.connection)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._sent = 0
        self._status = 0
        self.user = "-"
        try:
            self.route()
        finally:
            self._log()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def _log(self) -> None:
        when = datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
        agent = (self.headers.get("User-Agent") or "").replace('"', "'")
        self.state.write_log(f'{self.client_address[0]} - {self.user} [{when}] "{self.command} {self.path} '
                             f'HTTP/1.1" {self._status} {self._sent} "" "{agent}"')

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self._sent = len(body)

    # routing

    def route(self) -> None:
        args = self.state.args
        path, _, query = self.path.partition("?")
        if path == args.token_path and (args.auth == "token"):
            return self.token(query)
        match = _API_PATH.match(path)
        kind = match["kind"] if match else "other"
        fault = self.state.take_fault(
            "status", lambda f: f.get("match", "all") in ("all", kind)
            and self.command in f.get("methods", ("GET", "HEAD")))
        if fault:
            self.state.count(f"fault_status_{fault['code']}")
            return self.reply(fault["code"], _error_body("UNAVAILABLE", "fake upstream: injected failure"))
        subject = self.authenticate(match["name"] if match else None)
        if subject is None:
            return
        if path in ("/v2/", "/v2"):
            return self.reply(200, b"{}")
        limit_headers: dict[str, str] = {}
        if kind == "manifests":
            limit_headers = self.rate_limit_headers(subject, counted=0)
            self.state.count(f"manifest_{self.command.lower()}")
            if self.command == "GET" and limit_headers and self.remaining(subject) <= 0:
                self.state.count("too_many_requests")
                # The body Docker documents (docs.docker.com, Docker Hub pull usage and limits), as a registry error.
                return self.reply(429, _error_body(
                    "TOOMANYREQUESTS", "You have reached your pull rate limit. You may increase the limit by "
                    "authenticating and upgrading: https://www.docker.com/increase-rate-limits"), limit_headers)
        self.forward(kind, subject)

    # auth

    def authenticate(self, name: str | None) -> str | None:
        """The subject the request is made as; None after answering 401."""
        args, header = self.state.args, self.headers.get("Authorization", "")
        if args.auth == "none":
            return "anonymous"
        if args.auth == "basic":
            user = self._basic_login(header)
            if user:
                return user
            return self._unauthorized(f'Basic realm="{args.service}"')
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        with self.state.lock:
            grant = self.state.tokens.get(token)
        if grant and grant[2] > time.time() and (name is None or name in grant[1]):
            self.user = grant[0] if grant[0] != "anonymous" else "-"
            return grant[0]
        challenge = f'Bearer realm="{self.realm()}",service="{args.service}"'
        if name is not None:
            challenge += f',scope="repository:{name}:pull"'
            if grant:
                challenge += ',error="insufficient_scope"'
        return self._unauthorized(challenge)

    def _basic_login(self, header: str) -> str | None:
        if header[:6].lower() != "basic ":
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.state.users.get(user) == password and user else None

    def _unauthorized(self, challenge: str) -> None:
        self.reply(401, _error_body("UNAUTHORIZED", "authentication required"), {"WWW-Authenticate": challenge})
        return None

    def realm(self) -> str:
        """Where tokens are handed out: ``--realm``, else this host's own ``/token`` (as ghcr.io and quay.io do)."""
        if self.state.args.realm:
            return self.state.args.realm
        return f"http://{self.headers.get('Host', 'localhost')}{self.state.args.token_path}"

    def token(self, query: str) -> None:
        args, params = self.state.args, parse_qs(query)
        if params.get("service", [args.service])[0] != args.service:
            return self.reply(400, json.dumps({"details": "unknown service"}).encode())
        fault = self.state.take_fault("status", lambda f: f.get("match") == "tokens")
        if fault:
            return self.reply(fault["code"], json.dumps({"details": "injected failure"}).encode())
        header = self.headers.get("Authorization", "")
        if header:
            subject = self._basic_login(header)
            if subject is None:
                self.state.count("token_refused")
                return self.reply(401, json.dumps({"details": "incorrect username or password"}).encode())
            self.user = subject
        elif args.anonymous:
            subject = "anonymous"
        else:
            self.state.count("token_refused")
            return self.reply(401, json.dumps({"details": "authentication required"}).encode())
        repositories = set()
        for scope in params.get("scope", []):
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) >= 3 and parts[0] == "repository" and "pull" in parts[-1].split(","):
                    repositories.add(":".join(parts[1:-1]))
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[token] = (subject, frozenset(repositories), time.time() + args.token_seconds)
            self.state.counts["tokens"] += 1
        issued = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.reply(200, json.dumps({"token": token, "access_token": token, "expires_in": args.token_seconds,
                                    "issued_at": issued}).encode())

    # Docker Hub's rate limit

    def source(self, subject: str) -> str:
        return self.client_address[0] if subject == "anonymous" else subject

    def remaining(self, subject: str) -> int:
        with self.state.lock:
            limit = self.state.limits.get(subject)
            return 1 << 30 if limit is None else max(0, limit - self.state.counts[f"pulls:{subject}"])

    def rate_limit_headers(self, subject: str, counted: int) -> dict[str, str]:
        with self.state.lock:
            limit = self.state.limits.get(subject)
            if limit is None:
                return {}
            self.state.counts[f"pulls:{subject}"] += counted
            left = max(0, limit - self.state.counts[f"pulls:{subject}"])
        return {"ratelimit-limit": f"{limit};w={WINDOW_SECONDS}", "ratelimit-remaining": f"{left};w={WINDOW_SECONDS}",
                "docker-ratelimit-source": self.source(subject)}

    # forwarding

    def forward(self, kind: str, subject: str) -> None:
        args = self.state.args
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        backend = http.client.HTTPConnection("127.0.0.1", args.backend, timeout=120)
        try:
            # Header by header: clients send several Accept headers, each one matters.
            backend.putrequest(self.command, self.path, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _NOT_FORWARDED:
                    backend.putheader(key, value)
            if body is not None:
                backend.putheader("Content-Length", str(len(body)))
            backend.endheaders(body)
            response = backend.getresponse()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in _NOT_FORWARDED]
            size = response.getheader("Content-Length")
            data = None
            if size is None and self.command != "HEAD":
                data = response.read()
                size = str(len(data))
            if kind == "manifests":
                content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
                pull = self.command == "GET" and response.status == 200 and content_type not in INDEX_TYPES
                if self.command == "GET" and response.status == 200:
                    self.state.count("index_get" if content_type in INDEX_TYPES else "image_manifest_get")
                    if pull:
                        self.state.count(f"docker_pulls:{subject}")
                out += list(self.rate_limit_headers(subject, counted=1 if pull else 0).items())
            cut = corrupt = None
            if kind == "blobs" and self.command == "GET" and response.status == 200:
                cut = self.state.take_fault("truncate_blobs", lambda f: True)
                corrupt = self.state.take_fault("corrupt_blobs", lambda f: True)
            self._status = response.status
            self.send_response(response.status)
            for key, value in out:
                self.send_header(key, value)
            if size is not None:
                self.send_header("Content-Length", size)
            self.end_headers()
            if self.command == "HEAD":
                return
            if data is not None:
                self.wfile.write(data)
                self._sent = len(data)
                return
            self._stream(response, int(size), cut, corrupt)
        finally:
            backend.close()

    def _stream(self, response: http.client.HTTPResponse, size: int, cut: dict | None, corrupt: dict | None) -> None:
        """The body, cut short (half of it, then the connection closed) or with one byte flipped mid-way."""
        stop = size // 2 if cut else size
        flip = size // 2 if corrupt else -1
        while self._sent < stop:
            chunk = response.read(min(CHUNK, stop - self._sent))
            if not chunk:
                break
            if self._sent <= flip < self._sent + len(chunk):
                at = flip - self._sent
                chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1:]
                self.state.count("corrupted_blobs")
            self.wfile.write(chunk)
            self._sent += len(chunk)
        if cut:
            self.state.count("truncated_blobs")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class Listener:
    """One listening socket and its accept loop; closing it makes connects fail with "connection refused"."""

    def __init__(self, port: int, handler: type[Handler]) -> None:
        self.port, self.handler = port, handler
        self.sock: socket.socket | None = None

    def open(self) -> None:
        if self.sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", self.port))
        sock.listen(256)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def close(self) -> None:
        if self.sock is None:
            return
        sock, self.sock = self.sock, None
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        sock.close()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, address = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, address), daemon=True).start()

    def _serve(self, conn: socket.socket, address) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.handler(conn, address, None)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def _control(state: State, listeners: list[Listener], path: str) -> None:
    """One JSON command per connection on a unix socket; the answer is one JSON line."""
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rw") as stream:
            try:
                command = json.loads(stream.readline())
                stream.write(json.dumps(_apply(state, listeners, command)) + "\n")
            except Exception as error:  # noqa: BLE001 - reported to the caller, the server stays up
                stream.write(json.dumps({"error": repr(error)}) + "\n")


def _apply(state: State, listeners: list[Listener], command: dict) -> dict:
    op = command["op"]
    if op == "faults":
        with state.lock:
            state.faults = command.get("faults") or {}
    elif op == "refuse":
        for listener in listeners:
            listener.close() if command["on"] else listener.open()
    elif op == "cut":
        with state.lock:
            connections = list(state.connections)
        for conn in connections:
            try:
                # Abortive: closed with linger 0, the socket sends a reset and drops what it has not sent yet
                # (a plain FIN would first deliver everything already queued in the kernel).
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)  # wakes the handler; its socket closes right after
            except OSError:
                pass
    elif op == "limits":
        with state.lock:
            state.limits = {k: int(v) for k, v in (command.get("limits") or {}).items()}
            for key in [k for k in state.counts if k.startswith("pulls:")]:
                del state.counts[key]
    elif op != "stats":
        raise ValueError(f"unknown op {op!r}")
    with state.lock:
        return {"ok": True, "counts": dict(state.counts), "limits": dict(state.limits)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000, help="where clients reach the registry")
    parser.add_argument("--backend", type=int, required=True, help="the real registry's port on 127.0.0.1")
    parser.add_argument("--auth", choices=("none", "token", "basic"), default="token")
    parser.add_argument("--service", default="registry.fake", help="the token service name")
    parser.add_argument("--realm", default="", help="token realm URL (default: http://<Host>/token)")
    parser.add_argument("--token-port", type=int, default=0, help="also serve tokens on this port")
    parser.add_argument("--token-path", default="/token")
    parser.add_argument("--token-seconds", type=int, default=300, help="token lifetime (Docker Hub: 300)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD", help="a login (repeatable)")
    parser.add_argument("--no-anonymous", dest="anonymous", action="store_false",
                        help="refuse anonymous tokens (a private upstream)")
    parser.add_argument("--limit", action="append", default=[], metavar="BUCKET=N",
                        help="pulls per window for 'anonymous' or a username (repeatable)")
    parser.add_argument("--log", required=True, help="access log file (appended)")
    parser.add_argument("--control", required=True, help="unix socket for faults and counters")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = State(args)
    state.limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.limit)}
    handler = type("BoundHandler", (Handler,), {"state": state})
    listeners = [Listener(args.port, handler)] + ([Listener(args.token_port, handler)] if args.token_port else [])
    for listener in listeners:
        listener.open()
    threading.Thread(target=_control, args=(state, listeners, args.control), daemon=True).start()
    while not os.path.exists(args.control):
        time.sleep(0.01)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())

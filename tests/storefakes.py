"""Fakes for the artifact store's tests, all on loopback: a Helm chart repository (index.yaml + archives), a release
server (kind, CRD files), and an OCI registry that serves charts behind an anonymous token, over https with a
test CA (trustme). Charts are packaged here from a Chart.yaml and one template, with their own index."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import ssl
import tarfile
import threading
from dataclasses import dataclass, field

import trustme
import yaml

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"


def package_chart(name: str, version: str, note: str = "") -> bytes:
    """A chart archive as ``helm package`` lays it out: ``<name>/Chart.yaml`` and ``<name>/templates/``."""
    files = {
        f"{name}/Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version, "type": "application"}),
        f"{name}/templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
            f"data:\n  note: {json.dumps(note or name)}\n"
        ),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None


class Server:
    """A threaded HTTP(S) server on 127.0.0.1 whose routes are a dict: path -> (status, headers, body)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[Request] = []
        #: path -> the Authorization header it needs (else 401 with ``challenge``)
        self.protected: dict[str, str] = {}
        self.challenge = ""
        #: paths that refuse any Authorization header (a CDN behind a registry's redirect)
        self.no_auth: set[str] = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                auth = self.headers.get("Authorization")
                server.requests.append(Request("GET", self.path, auth))
                needed = server.protected.get(path)
                if path in server.no_auth and auth:
                    self.send_error(400, "only one auth mechanism allowed")
                    return
                if needed is not None and auth != needed:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", server.challenge)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, headers, body = server.routes.get(path, (404, {}, b"not found"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.routes[path] = (status, headers or {}, body)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


@dataclass
class ChartRepo:
    """A Helm chart repository: ``index.yaml`` listing each packaged chart with its sha256 digest."""

    server: Server
    prefix: str = "/charts"
    archives: dict[tuple[str, str], bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.server.base}{self.prefix}/"

    def add(self, name: str, version: str, note: str = "", listed_digest: str | None = None) -> bytes:
        """Package and publish a chart; ``listed_digest`` makes the index list another digest than the file's."""
        data = package_chart(name, version, note)
        self.archives[(name, version)] = data
        self.server.serve(f"{self.prefix}/{name}-{version}.tgz", data)
        self._index(listed_digest={(name, version): listed_digest} if listed_digest else {})
        return data

    def _index(self, listed_digest: dict[tuple[str, str], str]) -> None:
        entries: dict[str, list[dict]] = {}
        for (name, version), data in sorted(self.archives.items()):
            entries.setdefault(name, []).append({
                "apiVersion": "v2", "name": name, "version": version, "urls": [f"{name}-{version}.tgz"],
                "digest": listed_digest.get((name, version), sha256(data)), "created": "2026-01-01T00:00:00Z",
            })
        index = {"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"}
        self.server.serve(f"{self.prefix}/index.yaml", yaml.safe_dump(index).encode())


class Tls:
    """A test CA and a certificate for 127.0.0.1; ``ca_file`` is what SSL_CERT_FILE points at."""

    def __init__(self, folder) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1")
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server_context)
        self.client_context = ssl.create_default_context()
        self.ca.configure_trust(self.client_context)
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))


@dataclass
class OciRegistry:
    """Charts pushed as Helm does (a manifest with a config and one chart layer), pulled with an anonymous bearer
    token; blobs answer with a redirect to a "CDN" path that refuses any Authorization header."""

    server: Server
    token: str = "anonymous-pull-token"

    def push(self, repository: str, name: str, version: str, note: str = "") -> tuple[bytes, str]:
        data = package_chart(name, version, note)
        config = json.dumps({"name": name, "version": version}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": HELM_CONFIG, "digest": f"sha256:{sha256(config)}", "size": len(config)},
            "layers": [{"mediaType": CHART_LAYER, "digest": f"sha256:{sha256(data)}", "size": len(data)}],
        }
        body = json.dumps(manifest).encode()
        path = f"/v2/{repository}/{name}"
        tag = version.replace("+", "_")
        auth = f"Bearer {self.token}"
        self.server.challenge = (
            f'Bearer realm="{self.server.base}/token",service="fake-registry",scope="repository:{repository}/{name}:pull"'
        )
        self.server.serve("/token", json.dumps({"token": self.token}).encode())
        self.server.serve(f"{path}/manifests/{tag}", body, headers={"Content-Type": manifest["mediaType"]})
        self.server.protected[f"{path}/manifests/{tag}"] = auth
        blob = f"{path}/blobs/sha256:{sha256(data)}"
        cdn = f"/cdn/{sha256(data)}"
        self.server.serve(blob, b"", status=307, headers={"Location": f"{self.server.base}{cdn}"})
        self.server.protected[blob] = auth
        self.server.serve(cdn, data)
        self.server.no_auth.add(cdn)
        return data, f"sha256:{sha256(body)}"


def gateway_files(version: str = "v1.6.1") -> dict[str, bytes]:
    """Stand-ins for a Gateway API release's standard-channel files: the objects ``gateway.CRD_OBJECTS`` names,
    with the release's annotations and a small schema (the real files are not part of this repository)."""
    from krc.render import gateway

    files: dict[str, bytes] = {}
    for file, objects in gateway.CRD_OBJECTS[version].items():
        docs = []
        for kind, name in objects:
            metadata = {"name": name, "annotations": {
                "gateway.networking.k8s.io/bundle-version": version, "gateway.networking.k8s.io/channel": "standard"}}
            if kind == gateway.CRD:
                plural = name.split(".")[0]
                spec = {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                        "names": {"plural": plural, "kind": plural.title()},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}
                api = "apiextensions.k8s.io/v1"
            else:
                spec = {"policyName": name} if kind.endswith("Binding") else {"matchConstraints": {}}
                api = "admissionregistration.k8s.io/v1"
            docs.append({"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec})
        files[file] = ("---\n" + yaml.safe_dump_all(docs)).encode()
    return files


def pin_gateway_files(monkeypatch, files: dict[str, bytes], version: str = "v1.6.1") -> None:
    """Pin the stand-ins' digests in place of the real release's (krc/versions.py)."""
    from krc import versions

    for file, data in files.items():
        monkeypatch.setitem(versions.GATEWAY_API_CRD_SHA256[version], file, sha256(data))


def fill_gateway_store(home, files: dict[str, bytes], version: str = "v1.6.1"):
    """Put the files where `up` keeps them (the store's ``gateway-api/<version>``); the folder."""
    from krc.preflight import store

    folder = store.crd_dir(str(home), version)
    folder.mkdir(parents=True, exist_ok=True)
    for file, data in files.items():
        (folder / file).write_bytes(data)
    return folder


def store_after_up(rec, name: str = "store-fetch") -> None:
    """The artifact store and the stack's record as the recorded store step leaves them on a successful `up`:
    stand-in chart archives with their records. A pinned file (kind, CRDs) is left as the test put it: a stand-in
    cannot have the real pin's digest, so one the test did not pin and place stays missing.

    Writes only under the temporary folder: the program must have run with a sandbox HOME."""
    import os
    import tempfile

    from krc.preflight import store

    plan = store.StorePlan.from_json(rec.named(name).inputs["stdin"])
    assert plan.record.startswith(tempfile.gettempdir() + os.sep), f"not a sandbox HOME: {plan.record}"
    for artifact in plan.artifacts:
        if artifact.kind == store.CHART:
            data = package_chart(artifact.chart, artifact.version)
            os.makedirs(os.path.dirname(artifact.path), exist_ok=True)
            with open(artifact.path, "wb") as file:
                file.write(data)
            with open(artifact.record_path, "w") as file:
                json.dump({"sha256": sha256(data), "url": f"{artifact.url}/{artifact.chart}-{artifact.version}.tgz"}, file)
    os.makedirs(os.path.dirname(plan.record), exist_ok=True)
    with open(plan.record, "w") as file:
        file.write(plan.to_json())

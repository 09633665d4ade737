"""What is left of Docker Hub's pull allowance, read as Docker documents it, without spending a pull (no Pulumi here).

docs.docker.com, "Docker Hub pull usage and limits" (docker/docs content/manuals/docker-hub/usage/pulls.md):
get a token for ``repository:ratelimitpreview/test:pull`` from the registry's token realm (anonymously, or with
a login), then ``HEAD /v2/ratelimitpreview/test/manifests/latest``: the answer carries
``ratelimit-limit: 100;w=21600`` and ``ratelimit-remaining: 20;w=21600`` (pulls per window of seconds) and
``docker-ratelimit-source``. A HEAD is a version check and does not count; a GET would. No ``ratelimit``
headers means no limit applies (a paid plan, or an exempt image or address).

Anonymous pulls are counted per IPv4 address (or IPv6 /64): read anonymously from this machine, the numbers
are those of the address the caches pull from (behind the same NAT as the host, as on a laptop or Docker
Desktop). A login has its own allowance: the reader uses one only when given in ``KRC_DOCKER_HUB_USERNAME`` /
``KRC_DOCKER_HUB_PASSWORD`` (never on the command line), and sends it to the token realm only when the realm is
on the registry's host or domain, as distribution does (registry/proxy/proxyauth.go ``realmAllowed``).

Standard library HTTP on purpose: two requests, one header parsed; the project's only HTTP client dependency is
a test one.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

#: Docker Hub's registry endpoint (containerd and the docker.io cache pull from it).
HUB_URL = "https://registry-1.docker.io"
#: The image Docker's documentation checks the limit with.
CHECK_REPOSITORY = "ratelimitpreview/test"
CHECK_TAG = "latest"
URL_ENV = "KRC_DOCKER_HUB_URL"
USERNAME_ENV = "KRC_DOCKER_HUB_USERNAME"
PASSWORD_ENV = "KRC_DOCKER_HUB_PASSWORD"
#: Seconds per request: an offline machine must not hold up `cachectl stats` or a preview.
TIMEOUT = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


#: ``http(method, url, headers) -> Reply``; raises OSError when nothing answers. Tests pass a fake.
Http = Callable[[str, str, Mapping[str, str]], Reply]


def urllib_http(method: str, url: str, headers: Mapping[str, str]) -> Reply:
    """One request with urllib; an HTTP error status is a reply, not an exception; redirects are followed."""
    request = urllib.request.Request(url, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) URLs only
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@dataclass(frozen=True)
class Quota:
    """Docker Hub's answer, or why there is none."""

    #: pulls allowed per window; None: no limit reported (or not read: see ``error``)
    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None
    #: ``docker-ratelimit-source``: the address (or account) the pulls are counted for
    source: str | None = None
    #: whether the numbers are a login's (else this machine's address's)
    login: bool = False
    error: str | None = None

    @property
    def limited(self) -> bool:
        return self.limit is not None and self.remaining is not None

    def as_output(self) -> dict:
        return {re.sub(r"_(\w)", lambda m: m[1].upper(), k): v for k, v in asdict(self).items()}

    @classmethod
    def from_output(cls, data: Mapping) -> Quota:
        return cls(limit=data.get("limit"), remaining=data.get("remaining"), window_seconds=data.get("windowSeconds"),
                   source=data.get("source"), login=bool(data.get("login")), error=data.get("error"))

    def describe(self) -> str:
        """One line for people: ``87 of 100 pulls left per 6 h for 203.0.113.7 (anonymous)``."""
        if self.error:
            return f"not read: {self.error}"
        whose = "this login" if self.login else "this machine's address, anonymous"
        if not self.limited:
            return f"no limit reported for {whose}"
        window = f"{self.window_seconds / 3600:g} h" if self.window_seconds else "window"
        return f"{self.remaining} of {self.limit} pulls left per {window} for {self.source or whose} ({whose})"


def parse_limit(value: str | None) -> tuple[int | None, int | None]:
    """``"100;w=21600"`` -> ``(100, 21600)``; anything else -> ``(None, None)``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+)\s*)?", value or "")
    if not match:
        return None, None
    return int(match[1]), int(match[2]) if match[2] else None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ``("bearer", {"realm": …, "service": …})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _registrable(host: str) -> str:
    """The last two labels (``auth.docker.io`` -> ``docker.io``): enough for the realms this reads."""
    return ".".join(host.lower().split(".")[-2:])


def realm_allowed(registry_url: str, realm: str) -> bool:
    """Whether a login may go to ``realm``: on the registry's own host, or the same domain (not for IPs, localhost)."""
    registry, target = urllib.parse.urlsplit(registry_url), urllib.parse.urlsplit(realm)
    if not target.hostname or not registry.hostname:
        return False
    if registry.netloc.lower() == target.netloc.lower():
        return True
    hosts = (registry.hostname, target.hostname)
    if any(h == "localhost" or _is_address(h) for h in hosts) or "." not in hosts[0]:
        return False
    return _registrable(hosts[0]) == _registrable(hosts[1])


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def read(url: str = HUB_URL, username: str | None = None, password: str | None = None, http: Http = urllib_http,
         repository: str = CHECK_REPOSITORY, tag: str = CHECK_TAG) -> Quota:
    """Docker Hub's allowance as its manifest HEAD reports it (no pull spent).

    :param url: the registry (Docker Hub, or a stand-in with the same API).
    :param username: with ``password``, read the login's allowance instead of this machine's.
    """
    url = url.rstrip("/")
    login = bool(username and password)
    try:
        ping = http("GET", f"{url}/v2/", {})
        headers: dict[str, str] = {}
        if ping.status == 401:
            scheme, params = parse_challenge(ping.headers.get("www-authenticate", ""))
            if scheme != "bearer" or "realm" not in params:
                return Quota(login=login, error=f"{url} asks for {scheme or 'an unknown'} auth, not a token")
            query = {"scope": f"repository:{repository}:pull"}
            if "service" in params:
                query["service"] = params["service"]
            token_headers = {}
            if login and realm_allowed(url, params["realm"]):
                basic = base64.b64encode(f"{username}:{password}".encode()).decode()
                token_headers["Authorization"] = f"Basic {basic}"
            separator = "&" if "?" in params["realm"] else "?"
            answer = http("GET", params["realm"] + separator + urllib.parse.urlencode(query), token_headers)
            if answer.status != 200:
                why = "the login was refused" if answer.status == 401 else f"HTTP {answer.status}"
                return Quota(login=login, error=f"no token from {params['realm']}: {why}")
            data = json.loads(answer.body or b"{}")
            token = data.get("token") or data.get("access_token")
            if not token:
                return Quota(login=login, error=f"no token in the answer of {params['realm']}")
            headers["Authorization"] = f"Bearer {token}"
        # HEAD, never GET: Docker counts a manifest GET as a pull, a HEAD is a version check.
        head = http("HEAD", f"{url}/v2/{repository}/manifests/{tag}", {
            **headers, "Accept": "application/vnd.oci.image.index.v1+json, "
                                 "application/vnd.docker.distribution.manifest.list.v2+json, "
                                 "application/vnd.docker.distribution.manifest.v2+json"})
    except (OSError, ValueError) as error:
        return Quota(login=login, error=f"{url} cannot be reached ({error})")
    if head.status not in (200, 429):
        return Quota(login=login, error=f"HEAD {repository}:{tag} answered HTTP {head.status}")
    limit, window = parse_limit(head.headers.get("ratelimit-limit"))
    remaining, _ = parse_limit(head.headers.get("ratelimit-remaining"))
    return Quota(limit=limit, remaining=remaining, window_seconds=window,
                 source=head.headers.get("docker-ratelimit-source"), login=login)


def read_from_environment(url: str | None = None, http: Http = urllib_http) -> Quota:
    """:func:`read` with the URL and the optional login from the environment (:data:`URL_ENV`, ...)."""
    return read(url or os.environ.get(URL_ENV) or HUB_URL, os.environ.get(USERNAME_ENV) or None,
                os.environ.get(PASSWORD_ENV) or None, http=http)


def warm_up_warning(pulls: int, quota: Quota) -> str | None:
    """A warning when a cold warm-up needing ``pulls`` Docker Hub pulls would not fit in what is left."""
    if pulls <= 0 or not quota.limited or quota.remaining is None or pulls <= quota.remaining:
        return None
    fix = ("wait for the window to move on" if quota.login else
           "log the docker.io cache in (credentials for docker.io, see docs/configuration.md) or wait for the "
           "window to move on")
    return (f"a cold warm-up pulls {pulls} image(s) from Docker Hub, and {quota.describe()}: the pulls past "
            f"that fail with 429 toomanyrequests (docs/troubleshooting.md); {fix}")

"""Reading Docker Hub's pull allowance as Docker documents it (a token, then a manifest HEAD), and the warm-up's warning."""

from __future__ import annotations

import base64

import pytest

from krc.commands import hubquota
from krc.commands.hubquota import Quota, Reply


def fake_hub(realm: str = "https://auth.docker.io/token", head_headers: dict | None = None, token_status: int = 200,
             users: dict | None = None):
    """A registry with a Bearer challenge; records every request."""
    calls: list[tuple[str, str, dict]] = []
    head = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "20;w=21600",
            "docker-ratelimit-source": "192.0.2.1"} if head_headers is None else head_headers

    def http(method, url, headers):
        calls.append((method, url, dict(headers)))
        if url.endswith("/v2/"):
            return Reply(401, {"www-authenticate": f'Bearer realm="{realm}",service="registry.docker.io"'}, b"")
        if url.startswith(realm):
            auth = headers.get("Authorization", "")
            if users is not None and auth:
                user, _, password = base64.b64decode(auth.split()[1]).decode().partition(":")
                if users.get(user) != password:
                    return Reply(401, {}, b'{"details": "incorrect username or password"}')
            return Reply(token_status, {}, b'{"token": "tok", "expires_in": 300}')
        return Reply(200, head, b"")

    http.calls = calls
    return http


def test_reads_the_documented_headers_with_a_head_never_a_get():
    http = fake_hub()
    quota = hubquota.read(http=http)
    assert quota == Quota(limit=100, remaining=20, window_seconds=21600, source="192.0.2.1", login=False)
    methods = [(m, u) for m, u, _ in http.calls]
    assert methods == [
        ("GET", "https://registry-1.docker.io/v2/"),
        ("GET", "https://auth.docker.io/token?scope=repository%3Aratelimitpreview%2Ftest%3Apull"
                "&service=registry.docker.io"),
        ("HEAD", "https://registry-1.docker.io/v2/ratelimitpreview/test/manifests/latest"),
    ]
    assert http.calls[-1][2]["Authorization"] == "Bearer tok"
    assert "Authorization" not in http.calls[1][2], "anonymous: no login sent"


def test_a_login_goes_to_a_realm_of_the_same_domain_only():
    http = fake_hub(users={"me": "pw"})
    assert hubquota.read(username="me", password="pw", http=http).login
    assert http.calls[1][2]["Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()
    elsewhere = fake_hub(realm="https://tokens.example.com/token")
    hubquota.read(username="me", password="pw", http=elsewhere)
    assert "Authorization" not in elsewhere.calls[1][2]


@pytest.mark.parametrize(
    ("registry", "realm", "allowed"),
    [
        ("https://registry-1.docker.io", "https://auth.docker.io/token", True),
        ("https://ghcr.io", "https://ghcr.io/token", True),
        ("http://up-docker-io:5000", "http://up-docker-io:5000/token", True),
        ("http://up-docker-io:5000", "http://up-docker-io-auth:8080/token", False),
        ("https://registry-1.docker.io", "https://evil.example/token", False),
        ("http://10.0.0.1:5000", "http://10.0.0.2:5000/token", False),
    ],
)
def test_realm_allowed(registry, realm, allowed):
    assert hubquota.realm_allowed(registry, realm) is allowed


def test_a_refused_login_is_said_not_guessed():
    quota = hubquota.read(username="me", password="wrong", http=fake_hub(users={"me": "pw"}))
    assert quota.error and "login was refused" in quota.error and quota.remaining is None


def test_no_headers_means_no_limit():
    quota = hubquota.read(http=fake_hub(head_headers={}))
    assert (quota.limited, quota.error) == (False, None)
    assert quota.describe() == "no limit reported for this machine's address, anonymous"


def test_offline_is_an_answer_not_a_crash():
    def offline(method, url, headers):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    quota = hubquota.read(http=offline)
    assert quota.error.startswith("https://registry-1.docker.io cannot be reached")
    assert quota.describe().startswith("not read: ")


@pytest.mark.parametrize(("text", "parsed"), [("100;w=21600", (100, 21600)), ("0;w=21600", (0, 21600)),
                                              ("42", (42, None)), ("", (None, None)), ("x;w=1", (None, None))])
def test_parse_limit(text, parsed):
    assert hubquota.parse_limit(text) == parsed


def test_the_login_comes_from_the_environment_only(monkeypatch):
    http = fake_hub(users={"me": "pw"})
    monkeypatch.setenv(hubquota.USERNAME_ENV, "me")
    monkeypatch.setenv(hubquota.PASSWORD_ENV, "pw")
    monkeypatch.setenv(hubquota.URL_ENV, "https://registry-1.docker.io")
    assert hubquota.read_from_environment(http=http).login


@pytest.mark.parametrize(
    ("pulls", "quota", "warns"),
    [
        (3, Quota(limit=100, remaining=20, window_seconds=21600), False),
        (21, Quota(limit=100, remaining=20, window_seconds=21600), True),
        (21, Quota(), False),  # no limit reported
        (21, Quota(error="offline"), False),
        (0, Quota(limit=100, remaining=0, window_seconds=21600), False),
    ],
)
def test_warm_up_warning(pulls, quota, warns):
    warning = hubquota.warm_up_warning(pulls, quota)
    assert (warning is not None) is warns
    if warns:
        assert "21 image(s)" in warning and "20 of 100 pulls left per 6 h" in warning and "429" in warning
        assert "log the docker.io cache in" in warning

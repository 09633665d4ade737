"""``cachectl``: numbers from both registry generations' metrics, finding caches by label, and purging only what was asked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from krc.commands import cachectl, cachemetrics, cachereport, caches, hubquota
from krc.commands.cachemetrics import Counts
from krc.commands.caches import CacheRef
from krc.commands.dockercli import Result

# distribution v3 (registry/proxy/proxymetrics.go): counters by type.
V3_METRICS = """\
# HELP registry_proxy_requests_total The number of total incoming proxy request received
# TYPE registry_proxy_requests_total counter
registry_proxy_requests_total{type="blob"} 10
registry_proxy_requests_total{type="manifest"} 4
registry_proxy_hits_total{type="blob"} 7
registry_proxy_hits_total{type="manifest"} 2
registry_proxy_misses_total{type="blob"} 3
registry_proxy_misses_total{type="manifest"} 2
registry_proxy_pulled_bytes_total{type="blob"} 3000
registry_proxy_pulled_bytes_total{type="manifest"} 200
registry_proxy_pushed_bytes_total{type="blob"} 10000
registry_proxy_pushed_bytes_total{type="manifest"} 400
"""

# distribution 2.8 as measured here: one node pulled one image cold through the cache (4 blobs, 2 manifests).
V28_METRICS = """\
registry_http_requests_total{code="200",handler="blob",method="get"} 4
registry_http_requests_total{code="200",handler="manifest",method="get"} 2
registry_http_requests_total{code="200",handler="manifest",method="head"} 1
registry_http_requests_total{code="404",handler="manifest",method="get"} 1
registry_http_response_size_bytes_sum{handler="blob"} 3.421381e+06
registry_http_response_size_bytes_sum{handler="manifest"} 2759
"""
V28_VARS = {"registry": {"proxy": {
    "blobs": {"Requests": 8, "Hits": 8, "Misses": 0, "BytesPulled": 0, "BytesPushed": 6842762},
    "manifests": {"Requests": 3, "Hits": 3, "Misses": 2, "BytesPulled": 1718, "BytesPushed": 2666},
}}}


@pytest.mark.parametrize(
    ("metrics", "debug_vars", "mode", "expected"),
    [
        pytest.param(V3_METRICS, None, "proxy", Counts(9, 5, 7200, 3200, "registry_proxy_* metrics"), id="v3"),
        pytest.param(
            V28_METRICS, V28_VARS, "proxy",
            # blobs: 8 copies counted - 4 served = 4 stored by a second fetch (misses), 2 x 3421381 bytes upstream;
            # manifests: 2 misses (1718 bytes pulled), 1 hit (948 bytes beyond what was pulled).
            Counts(1, 6, 948, 2 * 3421381 + 1718, "registry 2.8 /debug/vars and HTTP metrics"),
            id="2.8-cold",
        ),
        pytest.param(
            V28_METRICS.replace("} 4\n", "} 8\n", 1).replace("3.421381e+06", "6842762"),
            {"registry": {"proxy": {"blobs": {"Requests": 12, "BytesPushed": 10264143}, "manifests": {}}}},
            "proxy",
            # 8 served, 4 of them stored (the cold ones): 4 hits from cache.
            Counts(4, 4, 3421381, 6842762, "registry 2.8 /debug/vars and HTTP metrics"),
            id="2.8-cold-then-warm",
        ),
        pytest.param(V28_METRICS, V28_VARS, "offline", Counts(7, 0, 3421381 + 2759, 0, "HTTP metrics (offline mode)"), id="offline"),
        pytest.param("go_goroutines 12\n", None, "proxy", None, id="no-registry-metrics"),
    ],
)
def test_counts(metrics, debug_vars, mode, expected):
    assert cachemetrics.counts(metrics, debug_vars, mode) == expected


def test_parse_prometheus_keeps_exposed_sample_names_and_unescapes_labels():
    text = (
        "# TYPE registry_proxy_requests_total counter\n"
        'registry_proxy_requests_total{type="blob"} 10\n'
        "# TYPE registry_http_response_size_bytes histogram\n"
        'registry_http_response_size_bytes_bucket{handler="blob",le="+Inf"} 4\n'
        'registry_http_response_size_bytes_sum{handler="blob"} 3.421381e+06\n'
        'registry_http_response_size_bytes_count{handler="blob"} 4\n'
        'odd{path="a\\"b"} 1\n'
    )
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in cachemetrics.parse_prometheus(text)}
    assert samples[("registry_proxy_requests_total", (("type", "blob"),))] == 10
    assert samples[("registry_http_response_size_bytes_sum", (("handler", "blob"),))] == 3421381
    assert samples[("registry_http_response_size_bytes_count", (("handler", "blob"),))] == 4
    assert samples[("odd", (("path", 'a"b'),))] == 1


def test_parse_prometheus_leaves_out_lines_it_cannot_read():
    # What the probe captures when the registry's debug port answers oddly: an error line among the metrics.
    text = 'registry_proxy_requests_total{type="blob"} 10\nwget: server returned error: HTTP/1.1 500\ngo_goroutines 12\n'
    assert [(s.name, s.value) for s in cachemetrics.parse_prometheus(text)] == [
        ("registry_proxy_requests_total", 10.0),
        ("go_goroutines", 12.0),
    ]
    assert cachemetrics.parse_prometheus("wget: can't connect to remote host (127.0.0.1): Connection refused") == []


# --- a fake engine -------------------------------------------------------------------------------


@dataclass
class FakeContainer:
    state: str
    image: str
    owner: str
    host: str
    volume: str


@dataclass
class FakeEngine:
    """``docker ps``/``volume ls`` by label, exec of the stats probe, throwaway containers, restart, volume rm."""

    containers: dict[str, FakeContainer] = field(default_factory=dict)
    #: volume -> (owner, host, KiB used)
    volumes: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    metrics: str = V3_METRICS
    calls: list[list[str]] = field(default_factory=list)

    def add(self, owner: str, host: str, state: str | None = "running", kib: int = 2048) -> None:
        name = f"kcr-{owner.split('/')[-1]}-{host.replace('.', '-')}"
        self.volumes[name] = (owner, host, kib)
        if state:
            self.containers[name] = FakeContainer(state, "registry:3", owner, host, name)

    def __call__(self, args: Sequence[str]) -> Result:
        args = list(args)
        self.calls.append(args)
        if args[0] in ("ps", "volume") and args[1] in ("-a", "ls"):
            label = args[args.index("--filter") + 1].removeprefix("label=")
            wanted = label.split("=", 1)[1] if "=" in label else None
            sep = caches._FIELD
            if args[0] == "ps":
                rows = [sep.join([n, c.state, c.image, c.owner, c.host]) for n, c in self.containers.items()
                        if wanted in (None, c.owner)]
            else:
                rows = [sep.join([n, o, h]) for n, (o, h, _) in self.volumes.items() if wanted in (None, o)]
            return Result(0, "".join(r + "\n" for r in rows).encode(), "")
        if args[0] == "exec":
            container = self.containers[args[1]]
            assert container.state == "running"
            if "du -sk" in args[-1] and "metrics" in args[-1]:
                return Result(0, self._probe(container.volume, with_metrics=True).encode(), "")
            if args[-1].startswith("cd /var/lib/registry && rm -rf"):
                owner, host, _ = self.volumes[container.volume]
                self.volumes[container.volume] = (owner, host, 0)
                return Result(0, b"", "")
        if args[0] == "run":
            volume = next(a for a in args if a.endswith(":/var/lib/registry") or a.endswith(":/var/lib/registry:ro"))
            name = volume.split(":")[0]
            if args[-1].startswith("cd /var/lib/registry && rm -rf"):
                owner, host, _ = self.volumes[name]
                self.volumes[name] = (owner, host, 0)
                return Result(0, b"", "")
            return Result(0, self._probe(name, with_metrics=False).encode(), "")
        if args[0] == "restart":
            return Result(0, b"", "")
        if args[:2] == ["volume", "rm"]:
            if any(c.volume == args[2] for c in self.containers.values()):
                return Result(1, b"", "Error: volume is in use\n")
            del self.volumes[args[2]]
            return Result(0, b"", "")
        raise AssertionError(f"unexpected docker call {args}")

    def _probe(self, volume: str, with_metrics: bool) -> str:
        section = "--- kind-registry-cache:"
        text = f"{section}login\nno\n{section}metrics\n{self.metrics}{section}vars\n{{}}\n" if with_metrics else ""
        return text + f"{section}disk\n{self.volumes[volume][2]}\n{section}blobs\n7\n"


DEV, CI = "kind-registry-cache/dev", "kind-registry-cache/ci"


@pytest.fixture
def engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add(DEV, "docker.io")
    engine.add(DEV, "quay.io", state="exited")
    engine.add(DEV, "ghcr.io", state=None)  # after `pulumi destroy`: the volume alone
    engine.add(CI, "docker.io")
    return engine


def test_find_joins_containers_and_volumes_per_stack_and_upstream(engine):
    refs = caches.find(engine, DEV)
    assert [(r.host, r.container, r.state, r.volume) for r in refs] == [
        ("docker.io", "kcr-dev-docker-io", "running", "kcr-dev-docker-io"),
        ("ghcr.io", None, None, "kcr-dev-ghcr-io"),
        ("quay.io", "kcr-dev-quay-io", "exited", "kcr-dev-quay-io"),
    ]
    assert {r.owner for r in caches.find(engine)} == {DEV, CI}


def test_stats_of_a_running_cache_read_its_counters_and_disk(engine):
    (ref,) = [r for r in caches.find(engine, DEV) if r.host == "docker.io"]
    stats = cachereport.collect(engine, ref)
    assert (stats.hits, stats.misses, stats.bytes_from_cache, stats.bytes_from_upstream) == (9, 5, 7200, 3200)
    assert (stats.disk_bytes, stats.stored_blobs, stats.login) == (2048 * 1024, 7, False)


@pytest.mark.parametrize("host", ["quay.io", "ghcr.io"], ids=["stopped-container", "volume-only"])
def test_stats_without_a_running_cache_still_measure_the_volume_read_only_offline(engine, host):
    (ref,) = [r for r in caches.find(engine, DEV) if r.host == host]
    stats = cachereport.collect(engine, ref, image="registry:3")
    assert stats.disk_bytes == 2048 * 1024 and stats.hits is None
    assert stats.notes == ["counters need a running cache container"]
    run = engine.calls[-1]
    assert run[:6] == ["run", "--rm", "--pull", "never", "--network", "none"]
    assert f"{ref.volume}:/var/lib/registry:ro" in run


def test_running_only_stats_start_no_container(engine):
    (ref,) = [r for r in caches.find(engine, DEV) if r.host == "quay.io"]
    before = len(engine.calls)
    stats = cachereport.collect(engine, ref, image="registry:3", running_only=True)
    assert stats.disk_bytes is None
    assert "disk use not read: the cache is not running" in stats.notes
    assert not [call for call in engine.calls[before:] if call[:1] == ["run"]]


@pytest.fixture(autouse=True)
def hub_from_its_defaults(monkeypatch):
    """No Docker Hub URL or login from the environment running the tests."""
    for name in (hubquota.URL_ENV, hubquota.USERNAME_ENV, hubquota.PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)


def hub(limit: int | None = 100, remaining: int = 87):
    """Docker Hub as hubquota.read talks to it: a challenge, an anonymous token, the HEAD with its headers."""
    calls = []

    def http(method, url, headers):
        calls.append((method, url))
        if url.endswith("/v2/"):
            return hubquota.Reply(401, {"www-authenticate": 'Bearer realm="https://auth.docker.io/token",'
                                                              'service="registry.docker.io"'}, b"")
        if url.startswith("https://auth.docker.io/token?"):
            return hubquota.Reply(200, {}, b'{"token": "t"}')
        assert (method, headers["Authorization"]) == ("HEAD", "Bearer t")
        limits = {"ratelimit-limit": f"{limit};w=21600", "ratelimit-remaining": f"{remaining};w=21600",
                  "docker-ratelimit-source": "203.0.113.7"} if limit else {}
        return hubquota.Reply(200, limits, b"")

    http.calls = calls
    return http


def test_stats_json_is_camel_case_per_stack_and_upstream(engine, capsys):
    assert cachectl.main(["stats", "--stack", "dev", "--json"], runner=engine, http=hub()) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {DEV}
    assert data[DEV]["docker.io"] == {
        "host": "docker.io", "container": "kcr-dev-docker-io", "volume": "kcr-dev-docker-io", "state": "running",
        "login": False, "hits": 9, "misses": 5, "bytesFromCache": 7200, "bytesFromUpstream": 3200,
        "diskBytes": 2097152, "storedBlobs": 7, "source": "registry_proxy_* metrics", "notes": [],
        "dockerHub": {"limit": 100, "remaining": 87, "windowSeconds": 21600, "source": "203.0.113.7",
                      "login": False, "error": None},
    }
    assert "dockerHub" not in data[DEV]["quay.io"]
    assert cachereport.parse_output(json.dumps(data), DEV) == data[DEV]
    assert cachereport.parse_output("apiVersion: v1\n", DEV) == {}


def test_stats_table(capsys):
    engine = FakeEngine()
    engine.add(DEV, "docker.io")
    engine.add(DEV, "ghcr.io", state=None, kib=1536)
    assert cachectl.main(["stats"], runner=engine, http=hub()) == 0
    assert capsys.readouterr().out == (
        "stack kind-registry-cache/dev\n"
        "  upstream   cache              state         login  hits  misses  from cache  from upstream     disk\n"
        "  docker.io  kcr-dev-docker-io  running       no        9       5     7.0 KiB        3.1 KiB  2.0 MiB\n"
        "  ghcr.io    kcr-dev-ghcr-io    no container  -         -       -           -              -  1.5 MiB\n"
        "  docker.io: Docker Hub allowance: 87 of 100 pulls left per 6 h for 203.0.113.7 (this machine's address, "
        "anonymous)\n"
        "  ghcr.io: counters need a running cache container\n"
        "hits and misses count requests since each cache container started (from registry_proxy_* metrics)\n"
    )


def test_stats_ask_docker_hub_once_with_a_head_and_not_at_all_with_no_hub(engine, capsys):
    http = hub()
    assert cachectl.main(["stats"], runner=engine, http=http) == 0  # two stacks with a docker.io cache
    assert [method for method, _ in http.calls] == ["GET", "GET", "HEAD"]
    assert http.calls[-1][1] == "https://registry-1.docker.io/v2/ratelimitpreview/test/manifests/latest"
    capsys.readouterr()
    http = hub()
    assert cachectl.main(["stats", "--no-hub"], runner=engine, http=http) == 0
    assert http.calls == [] and "Docker Hub" not in capsys.readouterr().out


def test_quota_json(capsys):
    assert cachectl.main(["quota", "--json"], runner=FakeEngine(), http=hub(remaining=3)) == 0
    assert json.loads(capsys.readouterr().out) == {
        "limit": 100, "remaining": 3, "windowSeconds": 21600, "source": "203.0.113.7", "login": False, "error": None}


def test_stats_with_no_caches_says_so(capsys):
    assert cachectl.main(["stats"], runner=FakeEngine(), http=hub()) == 0
    assert capsys.readouterr().out.startswith("no caches found")


# --- purge ---------------------------------------------------------------------------------------


def test_purge_one_upstream_empties_only_that_cache_and_restarts_it(engine):
    assert cachectl.main(["purge", "--stack", "dev", "--upstream", "docker.io"], runner=engine) == 0
    assert engine.volumes["kcr-dev-docker-io"][2] == 0
    assert engine.volumes["kcr-ci-docker-io"][2] == 2048, "another stack's cache is never touched"
    assert engine.volumes["kcr-dev-quay-io"][2] == 2048
    assert ["restart", "kcr-dev-docker-io"] in engine.calls


def test_purge_all_of_a_stack(engine, capsys):
    assert cachectl.main(["purge", "--stack", "dev", "--all"], runner=engine) == 0
    # Running: emptied in place; stopped: emptied by a throwaway container (Pulumi's volume stays);
    # no container: the volume is removed.
    assert engine.volumes["kcr-dev-docker-io"][2] == 0
    assert engine.volumes["kcr-dev-quay-io"][2] == 0
    assert "kcr-dev-ghcr-io" not in engine.volumes
    assert engine.volumes["kcr-ci-docker-io"][2] == 2048
    out = capsys.readouterr().out
    assert "kind-registry-cache/dev ghcr.io: removed volume kcr-dev-ghcr-io" in out
    assert "kind-registry-cache/dev quay.io: emptied kcr-dev-quay-io (its container kcr-dev-quay-io is exited)" in out


def test_purge_dry_run_changes_nothing(engine, capsys):
    before = dict(engine.volumes)
    assert cachectl.main(["purge", "--stack", "dev", "--all", "--dry-run"], runner=engine) == 0
    assert engine.volumes == before
    assert capsys.readouterr().out.count("would run: docker") == 3


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["purge", "--all"], "caches of several stacks are here (kind-registry-cache/ci, kind-registry-cache/dev); say which with --stack", id="several-stacks"),
        pytest.param(["purge", "--stack", "dev", "--upstream", "gcr.io"], "kind-registry-cache/dev has no cache for gcr.io; it has docker.io, ghcr.io, quay.io", id="unknown-upstream"),
    ],
)
def test_purge_refuses_when_unsure_and_says_how(engine, capsys, argv, says):
    before = dict(engine.volumes)
    assert cachectl.main(argv, runner=engine) == 2
    assert says in capsys.readouterr().err
    assert engine.volumes == before


def test_purge_without_a_stack_takes_the_only_one(capsys):
    engine = FakeEngine()
    engine.add(DEV, "docker.io", state=None)
    assert cachectl.main(["purge", "--all"], runner=engine) == 0
    assert engine.volumes == {}


def test_purge_needs_upstream_or_all():
    with pytest.raises(SystemExit):
        cachectl.main(["purge", "--stack", "dev"], runner=FakeEngine())


def test_owner_of_a_stack_name():
    assert caches.owner_of("dev") == DEV
    assert caches.owner_of("other-project/dev") == "other-project/dev"


def test_a_docker_failure_is_one_line_and_exit_1(capsys):
    def broken(args):
        return Result(1, b"", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n")

    assert cachectl.main(["stats"], runner=broken, http=hub()) == 1
    assert "Cannot connect to the Docker daemon" in capsys.readouterr().err


def test_ref_running():
    assert CacheRef("o", "h", container="c", state="running").running
    assert not CacheRef("o", "h", volume="v").running

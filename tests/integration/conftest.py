"""Fixtures of the integration tier: one private Docker engine per session, a clean engine per test."""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import docker
import pytest

from krc.commands.hubquota import URL_ENV as HUB_URL_ENV

from .engine import Engine, EngineError, remove_everything, start_engine, stop_engine
from .images import BuiltImages, ImagesError, ensure_images
from .pullloop import REPORT
from .upstreams import stop_fronts

#: The network every test's containers join (created per test, removed after it).
TEST_NETWORK = "krc-test"

#: The images this session built (at most one), for the line the terminal summary prints.
_built: list[BuiltImages] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs real dockerd/registry/containerd (needs root and tests/integration/setup.sh)")


@pytest.fixture(scope="session", autouse=True)
def no_real_docker_hub() -> Iterator[None]:
    """`cachectl stats` asks Docker Hub what is left of its allowance: in this tier it asks the fake docker.io when a
    test says so (--hub-url), else a port on this machine where nothing listens, never the real Docker Hub."""
    before = os.environ.get(HUB_URL_ENV)
    os.environ[HUB_URL_ENV] = before or "http://127.0.0.1:9"
    yield
    if before is None:
        os.environ.pop(HUB_URL_ENV, None)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """The private dockerd, started once for the session and stopped at its end.

    Fails (never skips) when the engine cannot start: this tier must run wherever it is collected.
    """
    try:
        engine = start_engine()
    except EngineError as error:
        pytest.fail(f"private Docker engine did not start: {error}\n"
                    "(run tests/integration/setup.sh as root to install dockerd)", pytrace=False)
    yield engine
    stop_engine(engine)


@pytest.fixture(scope="session")
def built_images(docker_engine: Engine) -> BuiltImages:
    """The registry:3 stand-in and the node image, built once (and kept across sessions by tag).

    Fails (never skips) when the real binaries the setup builds from their Go modules are missing or changed
    since, or the upstream configs in ../shared/reference are missing; warns loudly on the no-Go fallback.
    """
    try:
        built = ensure_images(docker_engine.client)
    except ImagesError as error:
        pytest.fail(str(error), pytrace=False)
    if built.fallback:
        warnings.warn(built.summary, stacklevel=1)
    _built.append(built)
    return built


def pytest_terminal_summary(terminalreporter) -> None:
    """One line saying which registry and containerd the integration tier ran (printed with -q and without -s)."""
    for built in _built[:1]:
        terminalreporter.write_line(built.summary)
    for line in REPORT:  # what pulls took while the fake upstreams misbehaved (test_upstream_faults.py)
        terminalreporter.write_line(line)


@pytest.fixture
def docker_client(docker_engine: Engine) -> Iterator[docker.DockerClient]:
    """The engine's client; everything the test created (containers, networks, volumes, fake upstreams' fronts)
    is removed after it."""
    yield docker_engine.client
    stop_fronts()
    remove_everything(docker_engine.client)


@pytest.fixture
def test_network(docker_client: docker.DockerClient) -> str:
    """A private bridge network for this test's containers; its name."""
    docker_client.networks.create(TEST_NETWORK, driver="bridge", labels={"io.krc-tests.integration": "true"})
    return TEST_NETWORK

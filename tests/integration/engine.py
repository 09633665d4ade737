"""A private Docker engine for the integration tier: start it, talk to it, stop it."""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

__all__ = ["DEFAULT_ROOT", "Engine", "EngineError", "remove_everything", "start_engine", "stop_engine"]

# Kept between runs so the generated images (images.py) survive: a rerun only starts the daemon.
DEFAULT_ROOT = Path(os.environ.get("KRC_DOCKERD_DIR", "/tmp/krc-dockerd"))


class EngineError(RuntimeError):
    """The private engine could not be started or stopped."""


@dataclass
class Engine:
    """A running private dockerd and a Docker SDK client connected to it."""

    root: Path
    process: subprocess.Popen
    client: docker.DockerClient
    _lock: IO[bytes] = field(repr=False)
    #: forwarding sysctls this engine turned off, with the values to put back on stop
    _forwarding: dict[Path, str] = field(default_factory=dict, repr=False)
    _dns: "NxdomainResponder | None" = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.root / "dockerd.log"


#: The subnet of the network the program-driven tests create (tests/integration/stack.py). Sessions that run at
#: the same time on one machine (two developers' engines, a benchmark) must each set their own.
TEST_SUBNET = os.environ.get("KRC_TEST_SUBNET", "172.28.0.0/24")
#: Its gateway: the host's own address on that network.
TEST_DNS = str(ipaddress.ip_network(TEST_SUBNET).network_address + 1)

_IP_FREEBIND = 15  # Linux: bind to TEST_DNS before the test network's bridge has that address


class NxdomainResponder:
    """A DNS server on TEST_DNS:53 that answers every query "no such name" at once.

    On a real machine Docker's embedded DNS forwards a name it does not know (a stopped cache's) to the
    host's resolver and gets NXDOMAIN back quickly, so containerd moves on to the next host. Here the
    host's resolver is off limits, and an unanswered forward makes every such lookup wait for a timeout.
    """

    def __init__(self, address: str | None = None, port: int = 53) -> None:
        address = address or TEST_DNS
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
        self.sock.bind((address, port))
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="krc-nxdomain", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if len(query) < 12:
                continue
            # Same id and question; QR=1, opcode and RD copied, RA=1, RCODE=3 (NXDOMAIN); no answers.
            flags = 0x8000 | (query[2] & 0x79) << 8 | 0x80 | 3
            self.sock.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\0\0\0\0\0\0" + query[12:], peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def _daemon_args(root: Path) -> list[str]:
    args = [
        "dockerd",
        # An empty config file: the host's /etc/docker/daemon.json must not leak in.
        f"--config-file={root / 'daemon.json'}",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        # No iptables rules, masquerading or forwarding: containers reach each other on the bridges the tests
        # create, the host reaches published ports through docker-proxy, and nothing is routed off this machine.
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        # No default docker0 bridge: tests use only networks they create.
        "--bridge=none",
        # Docker's embedded DNS forwards names it does not know (a stopped container's, a real registry's)
        # to this nameserver, from inside the container. TEST_DNS is the host's own address on the stack
        # tests' network, where nothing listens on port 53: the host answers "port unreachable", so such a
        # lookup fails at once (as NXDOMAIN would on a real machine) instead of timing out, and never
        # leaves the machine. (dockerd drops a loopback --dns and falls back to public resolvers.)
        f"--dns={TEST_DNS}",
    ]
    pool = os.environ.get("KRC_DOCKERD_ADDRESS_POOL")
    if pool:
        # Networks created without a subnet take theirs from here: engines of sessions running at the same time
        # on one machine must not hand out the same subnet (the host would route one engine's traffic to the other).
        args.append(f"--default-address-pool=base={pool},size=24")
    driver = os.environ.get("KRC_DOCKERD_STORAGE_DRIVER")
    if driver:  # otherwise dockerd picks (overlay2 here, vfs where overlay is unavailable)
        args.append(f"--storage-driver={driver}")
    return args


FORWARDING_SYSCTLS = (Path("/proc/sys/net/ipv4/ip_forward"), Path("/proc/sys/net/ipv6/conf/all/forwarding"))


def _forwarding_off() -> dict[Path, str]:
    """Turn off IP forwarding on this machine; return what was changed and its old value.

    Without forwarding a packet a container sends beyond its bridges (Docker's embedded DNS forwarding an
    unknown name, a mistyped upstream URL) stops at this machine: tests can only ever reach test containers
    and the host. Containers on the same network still talk over the bridge, and published ports still
    work. Set KRC_KEEP_IP_FORWARD=1 to leave the sysctls alone (e.g. a developer machine whose own
    Docker needs forwarding while the tests run).
    """
    if os.environ.get("KRC_KEEP_IP_FORWARD") == "1":
        return {}
    changed = {}
    for path in FORWARDING_SYSCTLS:
        try:
            old = path.read_text().strip()
        except FileNotFoundError:
            continue
        if old != "0":
            path.write_text("0")
            changed[path] = old
    return changed


def _restore(values: dict[Path, str]) -> None:
    for path, old in values.items():
        path.write_text(old)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return not _pid_alive(pid)


def _kill_stale_daemon(root: Path) -> None:
    """End a dockerd left behind by an interrupted run of this tier (we hold the lock, so it is ours)."""
    pidfile = root / "dockerd.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return
    if not cmdline or not cmdline[0].endswith(b"dockerd") or f"--data-root={root / 'data'}".encode() not in cmdline:
        return
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, 30):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def remove_everything(client: docker.DockerClient) -> None:
    """Remove all containers (with their anonymous volumes), networks and volumes of the private engine.

    Images are kept: they are the per-tag cache of images.py.
    """
    for container in client.containers.list(all=True):
        container.remove(force=True, v=True)
    for network in client.networks.list():
        if network.name not in ("bridge", "host", "none"):
            network.remove()
    for volume in client.volumes.list():
        volume.remove(force=True)


def start_engine(root: Path = DEFAULT_ROOT, timeout: float = 60.0) -> Engine:
    """Start a private dockerd under ``root`` and return it once it answers.

    Leftover containers, networks and volumes from an earlier run are removed. Raises EngineError with the
    daemon's log when it cannot start, and when another process already holds this engine.

    :param root: directory for the socket, data-root, exec-root, pidfile and log
    :param timeout: seconds to wait for the daemon to answer a ping
    """
    if os.geteuid() != 0:
        raise EngineError("the private dockerd must be started as root")
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / "lock", "wb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise EngineError(f"another test session is using the engine in {root} (lock held)") from None

    _kill_stale_daemon(root)
    (root / "docker.sock").unlink(missing_ok=True)
    (root / "daemon.json").write_text(json.dumps({}))
    log_path = root / "dockerd.log"
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                _daemon_args(root), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            lock.close()
            raise EngineError("dockerd not found: run tests/integration/setup.sh as root first") from None

    client: docker.DockerClient | None = None
    deadline = time.monotonic() + timeout
    while client is None:
        if process.poll() is not None:
            lock.close()
            raise EngineError(f"dockerd exited with {process.returncode}; log {log_path}:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            process.kill()
            lock.close()
            raise EngineError(f"dockerd did not answer within {timeout}s; log {log_path}:\n{_log_tail(log_path)}")
        if (root / "docker.sock").is_socket():
            try:
                # version="auto": Debian's dockerd 20.10 speaks API 1.41, older than the SDK's default.
                client = docker.DockerClient(base_url=f"unix://{root / 'docker.sock'}", version="auto", timeout=120)
            except docker.errors.DockerException:  # listening, but not answering yet
                client = None
        if client is None:
            time.sleep(0.2)

    try:
        dns = NxdomainResponder()
    except OSError:  # another session's engine answers there already
        dns = None
    engine = Engine(root=root, process=process, client=client, _lock=lock, _forwarding=_forwarding_off(), _dns=dns)
    remove_everything(client)
    return engine


def stop_engine(engine: Engine, timeout: float = 30.0) -> None:
    """Remove what the tests left, stop dockerd (and the containerd it manages) and release the lock."""
    try:
        try:
            remove_everything(engine.client)
        finally:
            engine.client.close()
            if engine.process.poll() is None:
                engine.process.send_signal(signal.SIGTERM)
                try:
                    engine.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    engine.process.kill()
                    engine.process.wait(10)
                    raise EngineError(f"dockerd ignored SIGTERM for {timeout}s and was killed") from None
    finally:
        if engine._dns is not None:
            engine._dns.close()
        _restore(engine._forwarding)
        engine._lock.close()

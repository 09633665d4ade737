"""Settings of one registry (CNCF distribution) pull-through cache container (no Pulumi here)."""

from __future__ import annotations

from krc.render import mirrors

#: Where distribution keeps its data; the cache's named volume is mounted here.
DATA_DIR = "/var/lib/registry"

#: The debug server: /metrics (Prometheus, including proxy hits and misses) and /debug/health.
DEBUG_PORT = 5001

#: Label keys every cache container and volume carries, so tools can find a stack's caches.
LABEL_STACK = "kind-registry-cache.stack"
LABEL_UPSTREAM = "kind-registry-cache.upstream"


def environment(remote: str, ttl: str) -> dict[str, str]:
    """The registry's settings as ``REGISTRY_*`` environment variables (credentials excluded).

    :param remote: the upstream registry's root URL.
    :param ttl: how long cached content lives, as a Go duration; ``0`` disables expiry (registry v3).
    """
    return {
        "REGISTRY_HTTP_ADDR": f":{mirrors.CACHE_PORT}",
        "REGISTRY_PROXY_REMOTEURL": remote,
        "REGISTRY_PROXY_TTL": ttl,
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": DATA_DIR,
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_HTTP_DEBUG_ADDR": f":{DEBUG_PORT}",
        "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
        "REGISTRY_LOG_LEVEL": "info",
    }


def credential_environment(username: str, password: str) -> dict[str, str]:
    """The upstream login; the caller keeps these values secret."""
    return {"REGISTRY_PROXY_USERNAME": username, "REGISTRY_PROXY_PASSWORD": password}


def env_list(env: dict[str, str]) -> list[str]:
    """Docker's ``KEY=value`` form, in a stable order so unchanged settings show no diff."""
    return [f"{key}={value}" for key, value in sorted(env.items())]


#: The login helper the entrypoint writes: distribution's ``proxy.exec`` credential helper (the
#: docker-credential-helpers protocol: ``<helper> get``, the server on stdin, ``{"Username","Secret"}`` out).
LOGIN_HELPER = "/tmp/kind-registry-cache-login"

# The cache never restarts and never changes its mode: the registry runs as a pull-through cache from start to
# stop, whatever its upstream does. v3.1.1 already serves what it holds when the upstream fails: a tag from its
# own store when the upstream's answer is an error (registry/proxy/proxytagservice.go Get, lines 23-41),
# manifests and blobs by digest from storage without asking upstream (proxymanifeststore.go Get, lines 41-56;
# proxyblobstore.go ServeBlob, lines 83-92). What it cannot do is start while the upstream cannot be reached:
# with proxy.username/password it GETs the upstream's /v2/ to find its token realms (proxyauth.go
# configureAuth -> getAuthURLs, lines 49-89) and panics on the error (registry/handlers/app.go line 357). With
# proxy.exec instead (proxyregistry.go lines 125-133) it contacts nothing at start and asks the helper for the
# login when a token realm or a basic challenge wants one (proxyauth_exec.go Basic), so the entrypoint writes
# a helper that answers with REGISTRY_PROXY_USERNAME/PASSWORD (empty: anonymous) from the container's own
# environment, which the helper inherits; the values never reach the command line or the log.
ENTRYPOINT = r"""
config=${KRC_REGISTRY_CONFIG:-/etc/distribution/config.yml}
[ -n "${REGISTRY_PROXY_REMOTEURL:-}" ] || exec registry serve "$config"
helper=%(helper)s
cat > "$helper" <<'HELPER'
#!/bin/sh
[ "$1" = get ] || exit 1
cat > /dev/null
quote() { printf '%%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
printf '{"Username":"%%s","Secret":"%%s"}\n' "$(quote "${REGISTRY_PROXY_USERNAME:-}")" "$(quote "${REGISTRY_PROXY_PASSWORD:-}")"
HELPER
chmod 0700 "$helper"
export REGISTRY_PROXY_EXEC_COMMAND="$helper"
exec registry serve "$config"
""" % {"helper": LOGIN_HELPER}

#: Kernel settings of the cache container's own network namespace. A connect() to an upstream that drops
#: packets waits for the kernel to give up on its SYNs, and v3.1.1 dials with Go's default (http.DefaultTransport:
#: 30 s, registry/proxy/proxyregistry.go line 165); no registry setting bounds it. containerd gives a mirror 30 s
#: to answer (v2.3.1 core/remotes/docker/registry.go DefaultHTTPTransport, ResponseHeaderTimeout) and then goes
#: to the upstream itself: a cached tag would fail. Two SYN retransmissions end such a connect in ~3 s on
#: kernels with tcp_syn_linear_timeouts (6.5+, 1 s apart) and ~7 s on older ones, still riding out one lost SYN.
#: A request sent on a kept-alive connection opened before the packets started to drop waits for the kernel to give
#: up retransmitting it: tcp_retries2=3 ends that after about 3 s at the minimum RTO (200 ms doubling: 0.2 + 0.4 +
#: 0.8 + 1.6 s; the Linux default 15 waits ~15 minutes, 5 about 13 s). It counts only while sent data is not
#: acknowledged: the cache's requests, never a download the upstream is slow to send. Measured with the
#: blackholed upstreams of tests/integration/test_upstream_faults.py: with 5, every cache's first tag lookup waited
#: ~14 s (4 pulls in 45 s, median 14.3 s, twice); with 3 a lookup gives up in ~3.2 s (median 0.16 s and 1.66 s).
SYSCTLS = {"net.ipv4.tcp_syn_retries": "1", "net.ipv4.tcp_retries2": "3"}


def entrypoint() -> list[str]:
    """The container entrypoint: :data:`ENTRYPOINT` run by the registry image's own shell."""
    return ["/bin/sh", "-c", ENTRYPOINT.strip() + "\n", "kind-registry-cache"]


def healthcheck_command() -> list[str]:
    """Docker health check: the registry's own health endpoint, with the image's busybox wget."""
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"]

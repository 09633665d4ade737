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


#: Seconds between upstream probes of the entrypoint below.
PROBE_SECONDS = 15

#: Consecutive failed probes before a running proxy gives up on its upstream.
OFFLINE_AFTER = 3

#: Where the entrypoint records its mode (``proxy`` or ``offline``) inside the container.
MODE_FILE = "/tmp/kind-registry-cache.mode"

# A registry in proxy mode GETs its upstream's /v2/ while starting and panics when that fails
# (distribution registry/proxy/proxyauth.go, registry/handlers/app.go), so offline every cache would
# crash-loop although its content is on disk. This entrypoint, run by the stock image's /bin/sh, probes
# the upstream first: any HTTP answer (401 included) means proxy mode; a network failure means serving
# the stored content alone, read-only. It exits when the upstream's state changes, and the container's
# restart policy starts it again in the other mode. Only definite network errors count as offline, so a
# probe that fails for another reason (TLS, an odd answer) keeps today's proxy behaviour.
ENTRYPOINT = r"""
config=${KRC_REGISTRY_CONFIG:-/etc/distribution/config.yml}
remote=${REGISTRY_PROXY_REMOTEURL:-}
interval=${KRC_PROBE_SECONDS:-%(probe)d}
mode_file=%(mode_file)s
log() { echo "kind-registry-cache: $*" >&2; }
[ -n "$remote" ] || exec registry serve "$config"
reachable() {
  out=$(timeout 5 wget -q -O /dev/null "$remote/v2/" 2>&1); rc=$?
  [ "$rc" -eq 0 ] && return 0
  case "$out" in
    *"server returned error"*) return 0 ;;
    *"bad address"*|*"can't connect"*|*"timed out"*|*"unreachable"*|*"refused"*|*"No route"*|*"resolve"*) return 1 ;;
  esac
  case "$rc" in 124|143) return 1 ;; esac
  return 0
}
if reachable; then
  mode=proxy
  log "upstream $remote answers: pull-through cache mode"
else
  mode=offline
  log "upstream $remote cannot be reached: serving cached content read-only until it answers"
  unset REGISTRY_PROXY_REMOTEURL REGISTRY_PROXY_USERNAME REGISTRY_PROXY_PASSWORD REGISTRY_PROXY_TTL
  export REGISTRY_STORAGE_MAINTENANCE_READONLY='{"enabled": true}'
fi
echo "$mode" > "$mode_file"
registry serve "$config" &
pid=$!
sleeper=
trap 'kill -TERM "$pid" $sleeper 2>/dev/null; wait "$pid"; exit 0' TERM INT
failures=0
while kill -0 "$pid" 2>/dev/null; do
  sleep "$interval" & sleeper=$!
  wait "$sleeper"; sleeper=
  if reachable; then
    failures=0
    if [ "$mode" = offline ]; then
      log "upstream $remote answers again: restarting as a pull-through cache"
      kill -TERM "$pid"; wait "$pid"; exit 0
    fi
  else
    failures=$((failures + 1))
    if [ "$mode" = proxy ] && [ "$failures" -ge %(offline_after)d ]; then
      log "upstream $remote has not answered $failures probes: restarting to serve cached content read-only"
      kill -TERM "$pid"; wait "$pid"; exit 0
    fi
  fi
done
wait "$pid"
""" % {"probe": PROBE_SECONDS, "mode_file": MODE_FILE, "offline_after": OFFLINE_AFTER}


def entrypoint() -> list[str]:
    """The container entrypoint: :data:`ENTRYPOINT` run by the registry image's own shell."""
    return ["/bin/sh", "-c", ENTRYPOINT.strip() + "\n", "kind-registry-cache"]


def healthcheck_command() -> list[str]:
    """Docker health check: the registry's own health endpoint, with the image's busybox wget."""
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"]

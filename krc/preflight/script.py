"""The read-only preflight script and what it looks at (no Pulumi here).

The program runs :data:`SCRIPT` through pulumi-command's ``local.run`` invoke. It only reads: ``kind version``,
``docker version``, ``docker network inspect``, ``docker ps -a`` of this stack's caches and cluster nodes and of
every local registry, who holds the local registry's name and host port, and whether the cluster's record and the
certs folder exist. A shell script on purpose: it runs the user's own
``kind`` and ``docker`` CLIs (their contexts, their credentials helpers) exactly as ``pulumi up`` will.
"""

from __future__ import annotations

#: Label on the docker network this program creates, valued ``<project>/<stack>``.
LABEL_OWNER = "kind-registry-cache.owner"

#: Docker label on each cache container: the generation token it was created with (see :func:`generations`).
LABEL_GENERATION = "kind-registry-cache.generation"

#: Docker label kind puts on every node container, valued with the cluster name
#: (kind v0.32.0 pkg/cluster/internal/providers/docker/constants.go: clusterLabelKey; `kind get nodes` filters on it).
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"

# Read-only. What it looks at comes from the environment (see :func:`environment`): KRC_OWNER (this stack's
# cache containers carry it as a label), KRC_CLUSTER (the kind cluster name), KRC_CLUSTER_RECORD (the file the
# cluster's create script writes), KRC_CERTS_DIR (the hosts.toml folder mounted into the nodes); for this stack's
# own local registry KRC_LOCAL_REGISTRY_NAME and KRC_LOCAL_REGISTRY_PORT (who else has that name or port: running
# containers publishing it, a process on this machine listening on it, probed by KRC_PYTHON with PORT_PROBE).
SCRIPT = r"""
if command -v kind >/dev/null 2>&1; then
  echo "kind=$(kind version 2>&1 | head -n 1)"
  echo "kind_path=$(command -v kind)"
else
  echo "kind=missing"
fi
if [ -n "${KRC_CLUSTER_RECORD:-}" ] && [ -f "$KRC_CLUSTER_RECORD" ] && [ ! -L "$KRC_CLUSTER_RECORD" ]; then
  echo "cluster_record=$(head -n 1 "$KRC_CLUSTER_RECORD")"
fi
if [ -n "${KRC_CERTS_DIR:-}" ]; then
  if [ -d "$KRC_CERTS_DIR" ]; then echo "certs=present"; else echo "certs=missing"; fi
fi
if ! command -v docker >/dev/null 2>&1; then echo "docker=missing"; exit 0; fi
if out=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "docker=$out"
else
  echo "docker=unreachable"
  echo "docker_error=$(printf '%s' "$out" | tr '\n' ' ')"
  exit 0
fi
echo "context_host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null)"
echo "host_os=$(uname -s 2>/dev/null)"
echo "engine_os=$(docker info --format '{{.OperatingSystem}}' 2>/dev/null | tr '\n' ' ')"
docker network ls -q | while read -r id; do
  echo "network=$(docker network inspect --format '{{json .}}' "$id" 2>/dev/null)"
done
if [ -n "${KRC_OWNER:-}" ]; then
  docker ps -a --filter "label=kind-registry-cache.stack=$KRC_OWNER" \
    --format '{{.Names}} {{.Label "kind-registry-cache.generation"}}' | while read -r line; do echo "cache=$line"; done
fi
if [ -n "${KRC_CLUSTER:-}" ]; then
  docker ps -a --no-trunc --filter "label=io.x-k8s.kind.cluster=$KRC_CLUSTER" \
    --format '{{.ID}} {{.Names}}' | while read -r line; do echo "node=$line"; done
fi
docker ps -a --filter "label=kind-registry-cache.role=local-registry" \
  --format '{{.Names}}|{{.State}}|{{.Label "kind-registry-cache.stack"}}|{{.Label "kind-registry-cache.port"}}|{{.Label "kind-registry-cache.generation"}}|{{.Networks}}' \
  | while read -r line; do echo "local_registry=$line"; done
if [ -n "${KRC_LOCAL_REGISTRY_NAME:-}" ]; then
  if out=$(docker container inspect "$KRC_LOCAL_REGISTRY_NAME" --format \
      '{{.State.Status}}|{{index .Config.Labels "kind-registry-cache.stack"}}|{{index .Config.Labels "kind-registry-cache.role"}}' 2>/dev/null); then
    echo "registry_container=$out"
  fi
  if out=$(docker volume inspect "$KRC_LOCAL_REGISTRY_NAME" --format \
      '{{index .Labels "kind-registry-cache.stack"}}|{{index .Labels "kind-registry-cache.role"}}' 2>/dev/null); then
    echo "registry_volume=$out"
  fi
fi
if [ -n "${KRC_LOCAL_REGISTRY_PORT:-}" ]; then
  port=$KRC_LOCAL_REGISTRY_PORT
  docker ps --format '{{.Names}}|{{.Label "kind-registry-cache.stack"}}|{{.Label "kind-registry-cache.role"}}|{{.Ports}}' \
    | while read -r line; do case "$line" in *"->"*) echo "published=$line" ;; esac; done
  if [ -n "${KRC_PYTHON:-}" ]; then
    echo "port_probe=$("$KRC_PYTHON" -c "$PORT_PROBE" "$port" 2>/dev/null)"
  fi
  holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1)
  [ -n "$holder" ] || holder=$(lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | awk 'NR == 2 { print $1 " (pid " $2 ")"; exit }')
  echo "port_process=$holder"
fi
exit 0
"""

# Who listens on the local registry's port on this machine: a TCP connect to 127.0.0.1 and ::1 (only looks; no
# bind, whose meaning differs between Linux and macOS). Prints "free" or "listening <addresses>".
PORT_PROBE = r"""
import socket, sys
found = []
for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            probe.connect((address, int(sys.argv[1])))
            found.append(address)
    except OSError:
        pass
print("listening " + " ".join(found) if found else "free")
"""


def environment(
    owner: str, cluster: str, cluster_record: str, certs_dir: str,
    local_registry: tuple[str, int] | None = None, python: str = "",
) -> dict[str, str]:
    """What :data:`SCRIPT` looks at (besides kind, Docker and the networks).

    :param local_registry: this stack's own local registry, ``(container name, host port)``: whether that name
        and that port are taken, and by what (every local registry on the engine is listed either way).
    :param python: the interpreter that runs :data:`PORT_PROBE` (the program's own).
    """
    found = {
        "KRC_OWNER": owner,
        "KRC_CLUSTER": cluster,
        "KRC_CLUSTER_RECORD": cluster_record,
        "KRC_CERTS_DIR": certs_dir,
    }
    if local_registry is not None:
        found |= {
            "KRC_LOCAL_REGISTRY_NAME": local_registry[0],
            "KRC_LOCAL_REGISTRY_PORT": str(local_registry[1]),
            "KRC_PYTHON": python,
            "PORT_PROBE": PORT_PROBE,
        }
    return found

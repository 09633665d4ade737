"""The read-only preflight script and what it looks at (no Pulumi here).

The program runs :data:`SCRIPT` through pulumi-command's ``local.run`` invoke. It only reads: ``kind version``,
``docker version``, ``docker network inspect``, ``docker ps -a`` of this stack's caches and cluster nodes, and
whether the cluster's record and the certs folder exist. A shell script on purpose: it runs the user's own
``kind`` and ``docker`` CLIs (their contexts, their credentials helpers) exactly as ``pulumi up`` will.
"""

from __future__ import annotations

from krc.render import kindconfig

#: Label on the docker network this program creates, valued ``<project>/<stack>``.
LABEL_OWNER = "kind-registry-cache.owner"

#: Docker label on each cache container: the generation token it was created with (see :func:`generations`).
LABEL_GENERATION = "kind-registry-cache.generation"

#: Docker label kind puts on every node container, valued with the cluster name (krc.render.kindconfig).
KIND_CLUSTER_LABEL = kindconfig.KIND_CLUSTER_LABEL

# Read-only. What it looks at comes from the environment (see :func:`environment`): KRC_OWNER (this stack's
# cache containers carry it as a label), KRC_CLUSTER (the kind cluster name), KRC_CLUSTER_RECORD (the file the
# cluster's create script writes), KRC_CERTS_DIR (the hosts.toml folder mounted into the nodes).
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
# Every container and volume by name, with the labels that say whose it is: the names this stack would take.
docker ps -a --no-trunc \
  --format '{{.ID}}|{{.Names}}|{{.Label "kind-registry-cache.stack"}}|{{.Label "io.x-k8s.kind.cluster"}}' \
  | while read -r line; do echo "container=$line"; done
docker volume ls --format '{{.Name}}|{{.Label "kind-registry-cache.stack"}}' | while read -r line; do echo "volume=$line"; done
exit 0
"""


def environment(owner: str, cluster: str, cluster_record: str, certs_dir: str) -> dict[str, str]:
    """What :data:`SCRIPT` looks at (besides kind, Docker and the networks)."""
    return {
        "KRC_OWNER": owner,
        "KRC_CLUSTER": cluster,
        "KRC_CLUSTER_RECORD": cluster_record,
        "KRC_CERTS_DIR": certs_dir,
    }

"""The certs folder's create/update and delete scripts: what the program writes on the host and removes there.

Which folders may be used and who owns one is the configuration model's (:mod:`krc.config.certsdir`);
these scripts check the same owner file again when they run (no Pulumi here).

Ownership by construction:

- The folder is ours only when it holds :data:`OWNER_FILE` naming this stack (``owner=<project>/<stack>``).
  The create script writes that file into a folder it has just made, and refuses a folder that exists
  without it, or with another stack's: two stacks never share one certs folder.
- The create/update script prints ``owned <host>`` for each ``<host>/hosts.toml`` it wrote; pulumi-command
  keeps that stdout in the stack's state and hands it to the next update as ``PULUMI_COMMAND_STDOUT``
  (pulumi-command 1.2 ``local.Command.update``/``delete`` docs), so an update removes exactly the files
  an earlier run recorded, never a folder it only finds there.
- The delete script lists the exact files of the last create/update (its text is stored in the state
  with them). Files go with ``rm`` of that exact path, folders only with ``rmdir`` (which refuses a
  non-empty folder); nothing is removed through a symbolic link and nothing with ``rm -r``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from krc.config.certsdir import LEGACY_MARKER, OWNER_FILE, SYSTEM_FOLDERS, owner_line

_HOST_DIR = re.compile(r"[a-z0-9][a-z0-9.:-]*", re.ASCII)


def _hosts(files: Mapping[str, str]) -> list[str]:
    hosts = sorted({path.split("/", 1)[0] for path in files})
    for host in hosts:
        if _HOST_DIR.fullmatch(host) is None or f"{host}/hosts.toml" not in files:
            raise ValueError(f"not a certs.d entry: {host!r}")  # settings validate hosts; a bug otherwise
    if set(files) != {f"{host}/hosts.toml" for host in hosts}:
        raise ValueError("only <host>/hosts.toml files belong in certs.d")
    return hosts


_PRELUDE_TEXT = r"""set -eu
umask 022
fail() { printf 'kind-registry-cache: %s\n' "$*" >&2; exit 1; }
mine() { [ -f "$owner_file" ] && [ ! -L "$owner_file" ] && [ "$(cat "$owner_file")" = "$owner_line" ]; }
# Remove <host>/hosts.toml and then its folder if that is empty: never through a symbolic link.
remove_host() {
  case "$1" in ''|.*|*[!a-z0-9.:-]*) return 0 ;; esac
  d="$dir/$1"
  if [ -L "$d" ] || [ ! -d "$d" ]; then return 0; fi
  for f in "$d/hosts.toml" "$d/hosts.toml.tmp"; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then rm -f "$f"; fi
  done
  rmdir "$d" 2>/dev/null || printf 'kind-registry-cache: kept %s: it holds files this program did not write\n' "$d" >&2
}
me=$(id -u)
my_group=$(id -g)
# Prints why the existing folder $1 is not to be trusted and succeeds, or fails when it is trusted: its owner
# must be you ($2 = folder: the certs folder itself) or root or you (above it), and no one else may write it
# (group-writable only by your own group; a sticky folder such as /tmp is fine above it).
distrust() {
  set -f
  set -- "$1" "$2" $(ls -ldn -- "$1")
  set +f
  mode=$3 uid=$5 gid=$6
  if [ "$2" = folder ] && [ "$uid" != "$me" ]; then echo "$1 is owned by user id $uid, not by you (user id $me)"; return 0; fi
  if [ "$uid" != 0 ] && [ "$uid" != "$me" ]; then echo "$1 is owned by user id $uid (neither root nor you)"; return 0; fi
  if [ "$2" != folder ]; then case "$mode" in ?????????[tT]*) return 1 ;; esac; fi
  case "$mode" in ????????w*) echo "$1 is writable by every user ($mode)"; return 0 ;; esac
  case "$mode" in ?????w*) if [ "$gid" != "$my_group" ]; then echo "$1 is writable by group id $gid ($mode)"; return 0; fi ;; esac
  return 1
}
# Prints why $dir is not safe to write or remove in, as it resolves now, and succeeds; fails when it is safe.
# The program checked the same before (krc.config.certsdir); a symbolic link or an owner may have changed since.
unsafe() {
  p=$dir
  while [ ! -e "$p" ] && [ ! -L "$p" ]; do p=$(dirname -- "$p"); done
  if [ ! -d "$p" ]; then echo "$p is not a folder"; return 0; fi
  real=$(cd -P -- "$p" && pwd -P) || { echo "cannot resolve $p"; return 0; }
  full=$real${dir#"$p"}
  home_real=$(cd -P -- "${HOME:-/nonexistent}" 2>/dev/null && pwd -P) || home_real=/nonexistent
  case "$full/" in
    "$home_real"/?*) ;;
    *)
      case "$(printf '%s/' "$full" | tr '[:upper:]' '[:lower:]')" in
        @SYSTEM@) echo "$dir resolves to $full, inside a system folder"; return 0 ;;
      esac ;;
  esac
  a=$real
  if [ "$p" = "$dir" ]; then
    why=$(distrust "$a" folder) && { echo "$why"; return 0; }
    a=$(dirname -- "$a")
  fi
  while :; do
    why=$(distrust "$a" above) && { echo "$why"; return 0; }
    [ "$a" = / ] && return 1
    a=$(dirname -- "$a")
  done
}
"""

_PRELUDE = _PRELUDE_TEXT.replace("@SYSTEM@", "|".join(f"{folder.lower()}/*" for folder in SYSTEM_FOLDERS))


def _header(certs_dir: str, owner: str) -> list[str]:
    return [
        f"dir={shlex.quote(certs_dir)}",
        f'owner_file="$dir"/{OWNER_FILE}',
        f"owner_line={shlex.quote(owner_line(owner))}",
    ]


def write_script(certs_dir: str, owner: str, files: Mapping[str, str], *, legacy_ok: bool = False) -> str:
    """A POSIX sh script (create and update) that makes this stack's ``certs_dir`` hold exactly ``files``.

    Files are replaced in place (written to a temporary name, renamed inside the same folder): the
    folder is bind-mounted into every node, so replacing the folder would leave nodes looking at the
    old one. Hosts recorded by the previous run (``PULUMI_COMMAND_STDOUT``) and no longer wanted are removed.

    :param owner: ``<project>/<stack>``, written to and checked against :data:`OWNER_FILE`.
    :param legacy_ok: adopt a folder holding only the marker earlier versions wrote.
    """
    hosts = _hosts(files)
    lines = [*_header(certs_dir, owner), _PRELUDE.rstrip("\n")]
    lines += [
        'if [ -L "$dir" ]; then fail "$dir is a symbolic link; set certsDir to a folder of its own"; fi',
        'if why=$(unsafe); then fail "$why; another user could replace what the nodes mount: set certsDir to a folder of your own"; fi',
        'if [ -e "$dir" ]; then',
        '  [ -d "$dir" ] || fail "$dir exists and is not a folder; set certsDir to a folder that does not exist yet"',
    ]
    if legacy_ok:
        lines += [
            f'  if ! mine && [ ! -e "$owner_file" ] && [ -f "$dir"/{LEGACY_MARKER} ] && [ ! -L "$dir"/{LEGACY_MARKER} ]; then',
            "    (set -C; printf '%s\\n' \"$owner_line\" > \"$owner_file\")",
            f'    rm -f "$dir"/{LEGACY_MARKER}',
            "  fi",
        ]
    lines += [
        '  mine || fail "$dir was not created by this stack (no matching $owner_file); set certsDir to a folder that does not exist yet"',
        "else",
        '  mkdir -p "$dir"',
        "  (set -C; printf '%s\\n' \"$owner_line\" > \"$owner_file\")",
        "fi",
        f"keep={shlex.quote(' ' + ' '.join(hosts) + ' ')}",
        "printf '%s\\n' \"${PULUMI_COMMAND_STDOUT:-}\" | while read -r word host rest; do",
        '  [ "$word" = owned ] || continue',
        '  case "$keep" in *" $host "*) continue ;; esac',
        '  remove_host "$host"',
        "done",
    ]
    for host in hosts:
        target = f'"$dir"/{shlex.quote(host)}'
        lines += [
            f"d={target}",
            'if [ -L "$d" ]; then fail "$d is a symbolic link; remove it"; fi',
            '[ -d "$d" ] || mkdir "$d"',
            'if [ -L "$d/hosts.toml" ] || [ -L "$d/hosts.toml.tmp" ]; then fail "$d holds a symbolic link; remove it"; fi',
            f"printf '%s' {shlex.quote(files[f'{host}/hosts.toml'])} > \"$d/hosts.toml.tmp\"",
            'mv -f "$d/hosts.toml.tmp" "$d/hosts.toml"',
            f"echo owned {shlex.quote(host)}",
        ]
    return "\n".join(lines) + "\n"


def remove_script(certs_dir: str, owner: str, hosts: Sequence[str]) -> str:
    """A POSIX sh script that removes what :func:`write_script` wrote for ``hosts``, and the folder if then empty.

    It does nothing to a folder that is not this stack's, and keeps the folder (and its owner file,
    so the stack can use it again) when anything it did not write is left in it.
    """
    lines = [*_header(certs_dir, owner), _PRELUDE.rstrip("\n")]
    lines += [
        'if [ -L "$dir" ] || [ ! -d "$dir" ]; then exit 0; fi',
        'if why=$(unsafe); then echo "kind-registry-cache: left $dir alone: $why" >&2; exit 0; fi',
        'if ! mine; then echo "kind-registry-cache: left $dir alone: it is not this stack\'s" >&2; exit 0; fi',
    ]
    lines += [f"remove_host {shlex.quote(host)}" for host in sorted(hosts)]
    lines += [
        "left=",
        'for p in "$dir"/* "$dir"/.[!.]* "$dir"/..?*; do',
        '  if [ -e "$p" ] || [ -L "$p" ]; then [ "$p" = "$owner_file" ] || left="$left $p"; fi',
        "done",
        'if [ -z "$left" ]; then',
        '  rm -f "$owner_file"',
        '  rmdir "$dir"',
        "else",
        '  printf \'kind-registry-cache: kept %s: it holds files this program did not write:%s\\n\' "$dir" "$left" >&2',
        "fi",
    ]
    return "\n".join(lines) + "\n"

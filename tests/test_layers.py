"""Imports only go downwards (docs: the target layout of issue #13), read from every module's source with ``ast``.

    krc.versions <- krc.config <- krc.render <- krc.preflight <- krc.commands
    components and program may import any krc.* and pulumi; program never components; components never program;
    nothing in krc imports pulumi, components or program.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("krc", "components", "program")

#: krc layers, lowest first: a layer may import its own and lower ones only.
KRC_LAYERS = ("krc.versions", "krc.config", "krc.render", "krc.preflight", "krc.commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, source: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports (function-level imports included), relative ones resolved; for
    ``from a import b`` both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    return next((layer for layer in KRC_LAYERS if within(module, layer)), None)


def violations(name: str, imported: set[str]) -> list[str]:
    """What ``name`` may not import, by the rules above."""
    bad: list[str] = []
    # A bare top-level package (``from components import settings`` names ``components`` and ``components.settings``)
    # is its near-empty __init__; what counts is the module named with it.
    for target in sorted(imported - set(PACKAGES)):
        if within(name, "krc"):
            if target.split(".")[0] == "pulumi" or target.startswith("pulumi_"):
                bad.append(f"{name} imports {target}: krc is Pulumi-free")
            elif (within(target, "components") or within(target, "program")):
                bad.append(f"{name} imports {target}: krc imports neither components nor program")
            elif within(target, "krc"):
                own, other = layer_of(name), layer_of(target)
                if own is not None and other is not None and KRC_LAYERS.index(other) > KRC_LAYERS.index(own):
                    bad.append(f"{name} imports {target}: {own} may not import the higher layer {other}")
        elif within(name, "program"):
            if within(target, "components"):
                bad.append(f"{name} imports {target}: program may not import components")
        elif within(name, "components"):
            if within(target, "program"):
                bad.append(f"{name} imports {target}: components may not import program")
    return bad


def project_modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def test_every_package_is_scanned():
    names = {n for n, _ in project_modules()}
    assert {"krc.versions", "krc.render.kindconfig", "krc.preflight", "krc.commands.cachectl"} <= names
    assert {"components.cluster_addons", "program.config", "program.prerequisites"} <= names


@pytest.mark.parametrize(("name", "path"), project_modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_only_go_downwards(name, path):
    imported = imports_of(name, path.read_text(), is_package=path.name == "__init__.py")
    assert violations(name, imported) == []


def test_krc_versions_imports_no_krc():
    imported = imports_of("krc.versions", (ROOT / "krc" / "versions.py").read_text())
    assert [m for m in imported if within(m, "krc")] == []


def test_components_hold_only_component_resources_named_after_their_file():
    """One ComponentResource per module of components/, in a file named after it (KindNetwork -> kind_network.py)."""
    for path in sorted((ROOT / "components").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        classes = [
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)
        ]
        assert len(classes) == 1, f"{path.name}: {classes}"
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in classes[0]).lstrip("_")
        assert path.stem == snake, f"{path.name} holds {classes[0]}"


# The checker itself: each rule catches a violation, so a passing run means something.
@pytest.mark.parametrize(
    ("name", "source", "is_package", "message"),
    [
        ("krc.render.mirrors", "import pulumi\n", False, "krc is Pulumi-free"),
        ("krc.render.mirrors", "import pulumi_docker as docker\n", False, "krc is Pulumi-free"),
        ("krc.render.mirrors", "from components import registry_caches\n", False, "krc imports neither"),
        ("krc.render.mirrors", "from components.settings import CacheSettings\n", False, "krc imports neither"),
        ("krc.preflight.decide", "from program.config import StackConfig\n", False, "krc imports neither"),
        ("krc.versions", "from krc.render import mirrors\n", False, "higher layer krc.render"),
        ("krc.config.models", "from krc.render import mirrors\n", False, "higher layer krc.render"),
        ("krc.render.kindconfig", "from krc import preflight\n", False, "higher layer krc.preflight"),
        ("krc.render.kindconfig", "from ..preflight import decide\n", False, "higher layer krc.preflight"),
        ("krc.render.addon_values", "from ...commands import cachectl\n", True, "higher layer krc.commands"),
        ("krc.preflight.decide", "def f():\n    from krc.commands import kind\n", False, "higher layer krc.commands"),
        ("program.prerequisites", "from components.kind_cluster import KindCluster\n", False, "program may not"),
        ("program.config", "from components import settings\n", False, "program may not"),
        ("components.kind_cluster", "from program import config\n", False, "components may not import program"),
        ("components.kind_cluster", "import program.prerequisites\n", False, "components may not import program"),
    ],
)
def test_the_checker_catches(name, source, is_package, message):
    found = violations(name, imports_of(name, source, is_package))
    assert found and all(message in v for v in found), found


def test_the_checker_allows_downward_imports():
    for name, source in [
        ("krc.commands.warmup", "from krc.render.warmup import Plan\nfrom krc import preflight, versions\n"),
        ("krc.preflight.decide", "from krc.render import gateway\nfrom krc import versions\n"),
        ("krc.render.warmup", "from krc.config import CacheSettings\nfrom krc.config.imageref import parse_reference\n"),
        ("krc.config.warmup", "from krc import versions\nfrom .imageref import parse_reference\n"),
        ("components.cluster_addons", "import pulumi\nfrom krc.commands import metallbwebhook\n"),
        ("program.config", "import pulumi\nfrom krc.preflight import kindrelease\n"),
    ]:
        assert violations(name, imports_of(name, source)) == [], name

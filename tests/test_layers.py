"""The folder layout is the dependency order: readiness (the Django-free core)
<- accounts <- devices <- checklist <- desk. No module may import a layer
above its own, not even inside a function, and nobody reaches for a model by
name (``apps.get_model``) to hide such an import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("readiness", "accounts", "devices", "checklist", "desk")
# config wires everything together and may import any layer.
MODULES = sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py") if "migrations" not in p.parts)


def _imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the module's own package
                found.append((node.lineno, package))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def upward_imports(path: Path) -> list[str]:
    layer = path.relative_to(ROOT).parts[0]
    rank = LAYERS.index(layer)
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(tree, layer)
        if name.split(".")[0] in LAYERS and LAYERS.index(name.split(".")[0]) > rank
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "get_model":
            problems.append(f"{path.relative_to(ROOT)}:{node.lineno} looks a model up by name")
    return problems


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path):
    assert upward_imports(path) == []


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    # A deliberate mistake must be caught, or the test above proves nothing.
    fake = ROOT / "accounts" / "_layer_probe.py"
    fake.write_text("def f():\n    from checklist.models import CalendarFeed\n    return CalendarFeed\n")
    try:
        assert upward_imports(fake) == ["accounts/_layer_probe.py:2 imports checklist.models"]
    finally:
        fake.unlink()


def test_the_core_imports_no_django():
    for path in (ROOT / "readiness").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [name for _, name in _imports(tree, "readiness")]
        assert not [n for n in names if n.split(".")[0] == "django"], path


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "settings").glob("*.py")), ids=lambda p: p.name)
def test_only_base_settings_read_the_environment(path):
    if path.name == "base.py":
        return
    tree = ast.parse(path.read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | {
        node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
    }
    assert not names & {"environ", "getenv", "env_bool", "env_list"}, path.name

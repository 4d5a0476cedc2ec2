"""The import rule of docs/architecture.md, checked on the source (no imports are executed).

1. No module imports another module's private (`_name`) name, by `from m import _x` or by
   `m._x` on an imported module: a private name is a module's own business; what two modules
   share is public, in the module that owns it.
2. Layers: a module may import its own layer and the layers below it, never one above. Data
   flows one way (format -> ir -> ops -> backends -> fusion/planner -> runtime -> interpreter ->
   tools), and an upward import is how the engine grew cycles before (explain <-> interpreter,
   the OpenCL backend reaching into the runtime).
3. A backend does not import a sibling backend: what two backends share lives in
   `tflite_jit.backends` itself (base, request, registry).

Imports inside functions count too: a lazy import still couples the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> import name (pyproject's package-dir)
PACKAGES = {"tflite_jit": "tflite_jit", "backends": "tflite_jit.backends", "ops": "tflite_jit.ops"}

#: module prefix -> layer; the longest matching prefix wins. Lower layers may not import higher.
LAYERS: dict[str, int] = {
    "tflite_jit.format.schema_data": 0,  # the schema's facts, and readers of them alone
    "tflite_jit.format.schema": 0,
    "tflite_jit.format.flat": 0,
    "tflite_jit.ir": 1,  # dataclasses, validate, graph analysis
    "tflite_jit.format": 2,  # reader, writer
    "tflite_jit.ops": 3,  # one definition per op
    "tflite_jit.format.builder": 4,  # the authoring API creates outputs from ops' shape rules
    "tflite_jit.backends": 5,
    "tflite_jit.fusion": 6,
    "tflite_jit.planner": 6,
    "tflite_jit.runtime": 7,
    "tflite_jit": 8,  # the engine's API: interpreter, delegates, explain, custom ops, quantizer
    "tflite_jit.tools": 9,  # the CLI and its helpers
    "tflite_jit.support": 9,  # tflite_support's drop-in (metadata, writers), beside the tools
}

#: a backend folder: tflite_jit.backends.<name>.*
BACKEND_PREFIX = "tflite_jit.backends."
SHARED_BACKEND_MODULES = {"base", "request", "registry"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """import name -> (file, is_package)"""
    out = {}
    for folder, pkg in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = list(rel.parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = (path, is_pkg)
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _backend_of(module: str) -> str | None:
    if not module.startswith(BACKEND_PREFIX):
        return None
    name = module[len(BACKEND_PREFIX):].split(".")[0]
    return None if name in SHARED_BACKEND_MODULES else name


def _tree(module: str) -> ast.Module:
    path, _ = MODULES[module]
    return ast.parse(path.read_text(), str(path))


def _module_of(target: str) -> str:
    """The module an import target lives in: a target that is no module of ours (a name imported
    by `import pkg.mod.name`) resolves to its parent when that is one."""
    if target not in MODULES and target.rsplit(".", 1)[0] in MODULES:
        return target.rsplit(".", 1)[0]
    return target


def _assert_none(found: list[str], what: str) -> None:
    assert not found, f"{what}:\n  " + "\n  ".join(found)


def _imports(module: str) -> list[tuple[int, str, str | None]]:
    """(line, target module, imported name or None) for every import of our own modules."""
    is_pkg = MODULES[module][1]
    tree = _tree(module)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("tflite_jit"):
                    out.append((node.lineno, a.name, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if not src.startswith("tflite_jit"):
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                if sub in MODULES:  # `from pkg import module`
                    out.append((node.lineno, sub, None))
                else:
                    out.append((node.lineno, src, a.name))
    return out


def _private_attribute_uses(module: str) -> list[tuple[int, str, str]]:
    """`alias._name` where alias is one of our modules imported here."""
    tree = _tree(module)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("tflite_jit"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and aliases[node.value.id] != module):
            out.append((node.lineno, aliases[node.value.id], node.attr))
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_module(target: str, module: str) -> bool:
    """`target` has a private component (`pkg._mod`) whose package does not contain `module`."""
    parts = target.split(".")
    for i, p in enumerate(parts):
        if _is_private(p) and not module.startswith(".".join(parts[:i]) + "."):
            return True
    return False


def test_no_cross_module_private_imports() -> None:
    found = []
    for module in MODULES:
        for line, target, name in _imports(module):
            if target != module and ((name and _is_private(name)) or _private_module(target, module)):
                found.append(f"{module}:{line} imports {target}{'.' + name if name else ''}")
        for line, target, name in _private_attribute_uses(module):
            found.append(f"{module}:{line} uses {target}.{name}")
    _assert_none(found, "private names used across modules")


def test_layers_import_downwards() -> None:
    found = []
    for module in MODULES:
        own = _layer(module)
        for line, target, _ in _imports(module):
            target = _module_of(target)
            if target == "tflite_jit" or module.startswith(target + "."):
                continue  # a package's own __init__ (import-time side effect, not a dependency)
            if _layer(target) > own:
                found.append(f"{module}:{line} (layer {own}) imports {target} (layer {_layer(target)})")
    _assert_none(found, "imports from a higher layer")


def test_backends_do_not_import_each_other() -> None:
    found = []
    for module in MODULES:
        mine = _backend_of(module)
        if mine is None:
            continue
        for line, target, _ in _imports(module):
            theirs = _backend_of(target)
            if theirs is not None and theirs != mine:
                found.append(f"{module}:{line} imports {target}")
    _assert_none(found, "a backend imports a sibling backend")


@pytest.mark.parametrize("module", ["tflite_jit.ops.nn", "tflite_jit.interpreter"])
def test_checker_sees_modules(module: str) -> None:
    """The checks above pass vacuously if the scan finds nothing; make sure it does."""
    assert module in MODULES and _imports(module)


def _cycles() -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), package __init__ edges left out."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        deps = set()
        for _, target, _ in _imports(module):
            target = _module_of(target)
            if target in MODULES and target != module and not MODULES[target][1]:
                deps.add(target)
        graph[module] = deps
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles() -> None:
    """Modules that import each other (even lazily) cannot be understood or tested apart."""
    cycles = _cycles()
    _assert_none([" <-> ".join(c) for c in cycles], "modules importing each other")

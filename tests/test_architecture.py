"""The folders are the architecture (docs/architecture.md): these checks keep them honest.

Every import inside src/backdrop, at module level or inside a function, is read with ast.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "backdrop"
# Top to bottom: a module may import from its own layer or from layers below it.
LAYERS = [{"cli", "__main__"}, {"serve"}, {"live", "offline"}, {"engine"}, {"io"}, {"platform"},
          {"config", "errors", "__init__"}]
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("backdrop",) + parts).removesuffix(".__init__")


def _imports(path: Path):
    """(backdrop module imported, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "backdrop" and not node.module.startswith("backdrop."):
                continue
            for alias in node.names:   # `from backdrop.cli import offline` imports a module
                sub = f"{node.module}.{alias.name}"
                yield (sub if sub in MODULES else node.module), id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; use absolute backdrop.* imports")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("backdrop"):
                    yield alias.name, id(node) in top


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"backdrop.{package} is in no layer of the architecture")


def test_every_package_has_a_layer():
    for module in MODULES:
        _layer(_package(module))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_only(module):
    mine = _package(module)
    for target, _ in _imports(MODULES[module]):
        theirs = _package(target)
        assert _layer(theirs) >= _layer(mine), f"{module} imports {target}, a layer above it"
        if {mine, theirs} == {"live", "offline"}:
            raise AssertionError(f"{module} imports {target}: live and offline stay apart")


def test_only_io_and_live_touch_platform():
    for module, path in MODULES.items():
        if _package(module) in ("platform", "io", "live"):
            continue
        for target, _ in _imports(path):
            assert _package(target) != "platform", f"{module} imports {target}"


def test_no_import_cycles():
    """Between modules, counting imports inside functions too (cli.py and offline.py used to
    import each other)."""
    graph = {m: {t for t, _ in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    # A package's __init__ re-exporting its own module is not a cycle worth breaking.
    for m in graph:
        if MODULES[m].name == "__init__.py":
            graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = trail[trail.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by what it owns"


def test_the_architecture_note_names_every_package():
    note = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module in MODULES:
        if MODULES[module].name == "__init__.py" and module != "backdrop":
            assert f"`{module.split('.')[-1]}/`" in note, f"{module} is not described"
        elif module.count(".") == 2:   # backdrop.package.module
            assert f"{module.split('.')[-1]}.py" in note, f"{module} is not described"

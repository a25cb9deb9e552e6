"""The package layout: imports run one way, no module imports itself round a cycle, and no module
takes another's private names.

    briefing_core    settings, errors, text/offset/span helpers, the embedder seam, the store
      ^    ^
    ingest  eval     ingest stands on the core; eval stands on the core and runs the asker it is handed
      ^      ^
    service.engine   retrieval, answering, the chain, the offline answerer (stands on core and ingest)
      ^      |
    service.shell    HTTP API, limits, chat page, CLI (stands on all of the above, and hands eval an asker)

    train            builds the answer scorer from human-written questions (stands on the engine,
                     ingest and the core; nothing imports it)

Every .py file under the five packages is parsed (nothing is imported), and every import statement
counts, at module level or inside a function, a class or an `if TYPE_CHECKING:` block.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("briefing_core", "ingest", "service", "eval", "train")

# Each layer and the layers it may import. A module outside every layer fails the test too: a new
# package or a module dropped straight into service/ must be given its place here first.
LAYERS: dict[str, frozenset[str]] = {
    "briefing_core": frozenset({"briefing_core"}),
    "ingest": frozenset({"briefing_core", "ingest"}),
    "eval": frozenset({"briefing_core", "eval"}),
    "service.engine": frozenset({"briefing_core", "ingest", "service.engine"}),
    "service.shell": frozenset({"briefing_core", "ingest", "service.engine", "service.shell", "eval"}),
    "train": frozenset({"briefing_core", "ingest", "service.engine", "train"}),
}
# Package markers that belong to no layer and import nothing.
NEUTRAL = frozenset({"service"})
# Imports of modules the project no longer has, on purpose: bench/answer_cpu.py measures commits of
# either layout and imports BriefingQA and Settings from where an older commit has them.
OLD_LAYOUT_IMPORTS = frozenset({
    ("bench/answer_cpu.py", "service.chain"),
    ("bench/answer_cpu.py", "service.settings"),
})


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    names: tuple[str, ...]
    where: str  # path:line

    def __str__(self) -> str:
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.where}: {self.source} -> {self.target}{names}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            out[module_name(path, root)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names: the longest project-module prefix of `name`."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


_NO_MODULE = "which is no module of the project"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_edges(
    modules: dict[str, Path], root: Path = ROOT, sources: dict[str, Path] | None = None
) -> tuple[list[Edge], list[str], list[str]]:
    """Every import of one project module by another; every private name taken across modules
    (`from m import _x`, or `m._x` on a module bound by `import m` / `from pkg import m`); and every
    import of a module the project does not have (a module moved away, still named by its old path in
    a function's import, fails only when that function runs). `sources`: read these files' imports
    instead of the project modules' own (tests, benchmarks)."""
    edges: list[Edge] = []
    private: list[str] = []
    missing: list[str] = []
    for source, path in (modules if sources is None else sources).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        bound: dict[str, str] = {}  # local name -> project module it is bound to
        for node in ast.walk(tree):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _resolve(alias.name, modules)
                    if target is None:
                        continue
                    if alias.name not in modules:
                        missing.append(f"{where}: {source} imports {alias.name}, {_NO_MODULE}")
                    edges.append(Edge(source, target, (), where))
                    if alias.asname:
                        bound[alias.asname] = target
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = source.split(".") if is_package else source.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names: list[str] = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:  # `from package import module`
                        edges.append(Edge(source, full, (), where))
                        bound[alias.asname or alias.name] = full
                    else:
                        names.append(alias.name)
                target = _resolve(base, modules)
                if names and target is not None and base not in modules:
                    missing.append(f"{where}: {source} imports from {base}, {_NO_MODULE}")
                if names and target is not None:
                    edges.append(Edge(source, target, tuple(names), where))
                    if target != source:
                        private += [
                            f"{where}: {source} imports {n} from {target}" for n in names if _is_private(n)
                        ]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and _is_private(node.attr) and bound[node.value.id] != source):
                where = f"{path.relative_to(root)}:{node.lineno}"
                private.append(f"{where}: {source} uses {bound[node.value.id]}.{node.attr}")
    return [e for e in edges if e.source != e.target], private, missing


def layer_of(module: str) -> str | None:
    best = None
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def layer_violations(modules: dict[str, Path], edges: list[Edge]) -> list[str]:
    problems = []
    for module in modules:
        if layer_of(module) is None and module not in NEUTRAL:
            problems.append(f"{module}: in no layer (give it a place in LAYERS)")
    for edge in edges:
        if edge.source in NEUTRAL or edge.target in NEUTRAL:
            if edge.source in NEUTRAL:
                problems.append(f"{edge}: a package marker imports nothing")
            continue
        source_layer, target_layer = layer_of(edge.source), layer_of(edge.target)
        if source_layer is None or target_layer is None:
            continue
        if target_layer not in LAYERS[source_layer]:
            problems.append(f"{edge}: {source_layer} may not import {target_layer}")
    return problems


def cycles(modules: dict[str, Path], edges: list[Edge]) -> list[list[Edge]]:
    """One cycle through each strongly connected group of modules (Tarjan), as the edges that form it."""
    graph: dict[str, list[Edge]] = {m: [] for m in modules}
    for edge in edges:
        graph[edge.source].append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # recursive; the graph is a few dozen modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            if e.target not in index:
                visit(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    found = []
    for group in groups:
        start = min(group)
        # Shortest path back to `start` inside the group (breadth first).
        paths: dict[str, list[Edge]] = {start: []}
        queue = [start]
        cycle: list[Edge] | None = None
        while queue and cycle is None:
            v = queue.pop(0)
            for e in sorted(graph[v], key=lambda e: e.target):
                if e.target not in group:
                    continue
                if e.target == start:
                    cycle = paths[v] + [e]
                    break
                if e.target not in paths:
                    paths[e.target] = paths[v] + [e]
                    queue.append(e.target)
        assert cycle is not None
        found.append(cycle)
    return found


def check(root: Path = ROOT) -> list[str]:
    """Every problem with the layout under `root`, one line each; empty when it is sound."""
    modules = project_modules(root)
    edges, private, missing = import_edges(modules, root)
    problems = missing + layer_violations(modules, edges)
    for cycle in cycles(modules, edges):
        chain = " -> ".join([cycle[0].source] + [e.target for e in cycle])
        problems.append(f"import cycle: {chain}\n      " + "\n      ".join(str(e) for e in cycle))
    problems += [f"private name across modules: {p}" for p in private]
    return problems


# ---------------------------------------------------------------------------------------
# The project's own layout
# ---------------------------------------------------------------------------------------


def test_the_packages_are_where_the_layers_expect_them() -> None:
    modules = project_modules()
    for package in PACKAGES:
        assert package in modules, f"{package}/__init__.py is missing"
    assert "service.engine" in modules and "service.shell" in modules
    # service/ itself holds only its two sub-packages.
    assert sorted(p.name for p in (ROOT / "service").glob("*.py")) == ["__init__.py"]


def test_imports_run_one_way_without_cycles_or_private_names() -> None:
    problems = check()
    assert problems == [], "\n" + "\n".join(problems)


def test_tests_and_benchmarks_import_only_modules_the_project_has() -> None:
    """They stand outside the layers, but an old path in one of their imports (often inside a test
    function, or in a benchmark no test runs) breaks only when that code runs."""
    consumers = {}
    for folder in ("tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            consumers[module_name(path)] = path
    _, _, missing = import_edges(project_modules(), sources=consumers)
    missing = [m for m in missing if not any(
        m.startswith(f"{path}:") and f" {module}, which" in m for path, module in OLD_LAYOUT_IMPORTS
    )]
    assert missing == [], "\n" + "\n".join(missing)


def _layout_picture(markdown: str) -> str:
    """The code block that draws the layers: the one holding `briefing_core/   settings`."""
    blocks = markdown.split("```")[1::2]
    pictures = [b for b in blocks if "briefing_core/   settings" in b]
    assert len(pictures) == 1, "one layout picture"
    return pictures[0]


def test_the_readme_and_the_architecture_page_draw_the_same_layout() -> None:
    readme = _layout_picture((ROOT / "README.md").read_text(encoding="utf-8"))
    architecture = _layout_picture((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert readme == architecture
    for layer in LAYERS:
        assert layer.replace(".", "/") + "/" in readme, f"{layer} is not in the picture"
    modules = project_modules()
    for module in modules:  # every engine module is named in the picture
        if module.startswith("service.engine."):
            assert module.rsplit(".", 1)[1] in readme, f"{module} is not in the picture"


# ---------------------------------------------------------------------------------------
# The checker itself catches what it is for
# ---------------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    for sub in ("engine", "shell"):
        (tmp_path / "service" / sub).mkdir(exist_ok=True)
        (tmp_path / "service" / sub / "__init__.py").touch()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_an_upward_import_inside_a_function_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "briefing_core/store.py": "def f():\n    from ingest.pipeline import ingest\n",
        "ingest/pipeline.py": "from briefing_core.store import f\n",
    })
    problems = check(root)
    assert any("briefing_core.store -> ingest.pipeline (ingest): briefing_core may not import ingest" in p
               for p in problems), problems


def test_eval_may_not_import_the_service_and_the_engine_may_not_import_the_shell(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "eval/runner.py": "import service.engine.chain\n",
        "service/engine/chain.py": "from service.shell import deps\n",
        "service/shell/deps.py": "",
        "service/shell/cli.py": "from eval.runner import run\nfrom service.engine.chain import BriefingQA\n",
    })
    problems = "\n".join(check(root))
    assert "eval.runner -> service.engine.chain: eval may not import service.engine" in problems
    assert ("service.engine.chain -> service.shell.deps: service.engine may not import service.shell"
            in problems)
    assert "service.shell.cli" not in problems


def test_a_cycle_between_modules_is_reported_with_its_path(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "service/engine/answering.py": "from .retrieval import Passage\n",
        "service/engine/retrieval.py": "def f():\n    from service.engine import plan\n",
        "service/engine/plan.py": "from service.engine.answering import Result\n",
    })
    problems = check(root)
    assert any(p.startswith("import cycle: service.engine.answering -> service.engine.retrieval -> "
                            "service.engine.plan -> service.engine.answering") for p in problems), problems


def test_a_private_name_taken_from_another_module_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "briefing_core/text.py": "_TOKEN = 1\n__all__ = []\n",
        "ingest/chunking.py": "from briefing_core.text import _TOKEN, __all__\n",
        "ingest/loaders.py": "from briefing_core import text\nx = text._TOKEN\n",
    })
    problems = check(root)
    assert [p for p in problems if "private" in p] == [
        "private name across modules: ingest/chunking.py:1: ingest.chunking imports _TOKEN from "
        "briefing_core.text",
        "private name across modules: ingest/loaders.py:2: ingest.loaders uses briefing_core.text._TOKEN",
    ]


def test_an_import_of_a_module_that_moved_away_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "service/engine/compose.py": "def f():\n    from service.spelling import spelled_alike\n",
        "service/engine/guard.py": "",
        "service/shell/cli.py": "import service.http\nfrom service.engine import guard\n",
    })
    assert check(root) == [
        "service/engine/compose.py:2: service.engine.compose imports from service.spelling, which is no "
        "module of the project",
        "service/shell/cli.py:1: service.shell.cli imports service.http, which is no module of the project",
    ]


def test_a_module_outside_every_layer_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"service/helpers.py": ""})
    assert "service.helpers: in no layer (give it a place in LAYERS)" in check(root)

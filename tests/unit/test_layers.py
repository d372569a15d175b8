"""The layers between processes, checked on the import graph.

The graph comes from grimp (the engine of import-linter), which parses every module with
``ast`` without importing it: imports inside functions count, imports under
``if TYPE_CHECKING:`` do not (a checker's, never run). The rules:

- no import cycle among product modules (``common``, ``webhooks``, ``tasks``, ``relay``);
- each process (``webhooks``, ``tasks``, ``relay``) imports only itself and ``common``, and
  ``common`` only itself: the processes meet through Redis, the queue and ``common``;
- no product module over :data:`MAX_LINES` lines;
- Celery apps are made by :func:`common.celery_app.celery_init_app` only;
- the simulators (``sandbox``) have no import cycle and never reach the product's protocol
  code, directly or through ``common``: a simulator that shares the product's codec cannot
  catch its bugs.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("common", "webhooks", "tasks", "relay")
PROCESSES = ("webhooks", "tasks", "relay")
MAX_LINES = 400
#: What a simulator must not import, even indirectly: the processes' code, and the modules of
#: ``common`` that build or read what goes over a wire (the stream TwiML, the relay tokens).
PROTOCOL = (*PROCESSES, "common.stream_twiml", "common.tokens")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *PRODUCT, "sandbox", exclude_type_checking_imports=True, cache_dir=None
    )


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _edges(graph: grimp.ImportGraph, modules: set[str]) -> dict[str, list[str]]:
    """Direct imports between ``modules`` (a module importing itself aside)."""
    return {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules and i != m)
        for m in sorted(modules)
    }


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _shortest_cycle(edges: dict[str, list[str]], component: list[str]) -> list[str]:
    """A shortest import cycle within the component, as ``[a, b, ..., a]``."""
    members = set(component)
    best: list[str] = []
    for start in component:
        parent: dict[str, str] = {}
        queue, closing = deque([start]), None
        while queue and closing is None:  # breadth first: the first way back is a shortest
            node = queue.popleft()
            for nxt in edges[node]:
                if nxt == start:
                    closing = node
                    break
                if nxt in members and nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        if closing is None:
            continue
        path = [closing]
        while path[-1] != start:
            path.append(parent[path[-1]])
        cycle = [*reversed(path), start]
        if not best or len(cycle) < len(best):
            best = cycle
    return best


def _describe_cycle(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """``a (line 12) -> b (line 40) -> a``: each hop with the line of its import."""
    hops = []
    for importer, imported in itertools.pairwise(cycle):
        lines = sorted(
            d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)
        )
        hops.append(f"{importer} (line {', '.join(map(str, lines))})")
    return " -> ".join([*hops, cycle[-1]])


def _cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[str]:
    edges = _edges(graph, set(modules))
    return [
        _describe_cycle(graph, _shortest_cycle(edges, component))
        for component in _strongly_connected(edges)
    ]


def _modules_of(graph: grimp.ImportGraph, packages: Iterable[str]) -> set[str]:
    return {m for m in graph.modules if _top(m) in packages}


def test_no_import_cycle_among_product_modules(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph, _modules_of(graph, PRODUCT))
    assert not cycles, "import cycles among product modules:\n" + "\n".join(cycles)


def test_each_process_imports_only_itself_and_common(graph: grimp.ImportGraph) -> None:
    crossings = []
    for importer in sorted(_modules_of(graph, PRODUCT)):
        allowed = {"common"} | ({_top(importer)} if _top(importer) in PROCESSES else set())
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if _top(imported) in PRODUCT and _top(imported) not in allowed:
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    crossings.append(
                        f"{importer} (line {detail['line_number']}): {detail['line_contents']}"
                    )
    assert not crossings, "imports across process layers:\n" + "\n".join(crossings)


def test_no_product_module_over_the_line_limit() -> None:
    long = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, f"product modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_celery_apps_are_made_only_by_the_factory() -> None:
    """Every process gets its Celery app from :mod:`common.celery_app` (one broker setup)."""
    made = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "common" / "celery_app.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                func = node.func if isinstance(node, ast.Call) else None
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name == "Celery":
                    made.append(f"{path.relative_to(ROOT)} (line {node.lineno})")
    assert not made, "Celery apps made outside common/celery_app.py:\n" + "\n".join(made)


def test_the_simulators_have_no_import_cycle(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph, _modules_of(graph, ("sandbox",)))
    assert not cycles, "import cycles in sandbox/:\n" + "\n".join(cycles)


def test_the_simulators_never_reach_product_protocol_code(graph: grimp.ImportGraph) -> None:
    reached = []
    for target in PROTOCOL:
        chains = graph.find_shortest_chains(importer="sandbox", imported=target, as_packages=True)
        reached += [" -> ".join(chain) for chain in sorted(chains)]
    assert not reached, "sandbox/ imports product protocol code:\n" + "\n".join(reached)


# -- the checker itself: what it counts, on a package made for the purpose -------------------


@pytest.fixture
def toy_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> grimp.ImportGraph:
    """``toy``: a -> b -> c -> a (c's import inside a function), a -> d only for the type
    checker (both spellings of the guard)."""
    package = tmp_path / "toy"
    package.mkdir()
    files = {
        "__init__.py": "",
        "a.py": """
            import typing
            from typing import TYPE_CHECKING

            from toy import b

            if TYPE_CHECKING:
                from toy import d
            if typing.TYPE_CHECKING:
                import toy.d
        """,
        "b.py": "from toy.c import run\n",
        "c.py": """
            def run():
                from toy import a

                return a
        """,
        "d.py": "from toy import a\n",
    }
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return grimp.build_graph("toy", exclude_type_checking_imports=True, cache_dir=None)


def test_the_checker_counts_function_imports_and_skips_type_checking_ones(
    toy_graph: grimp.ImportGraph,
) -> None:
    assert _cycles(toy_graph, toy_graph.modules) == [
        "toy.a (line 5) -> toy.b (line 1) -> toy.c (line 3) -> toy.a"
    ]
    assert "toy.d" not in toy_graph.find_modules_directly_imported_by("toy.a")

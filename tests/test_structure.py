"""Package structure: data flows one way (no import cycle, no upward import), experiments pass functions in
rather than patching the trainer, and imports inside functions say why."""

import ast
import os
import re

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "devias_jax")


def _module_files() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package (packages by their __init__)."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: str, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (top level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    edges = set()
    for target in targets:
        while target and target not in known:  # `import a.b.c` depends on the deepest known module
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):  # a parent package is not a cycle
            edges.add(target)
    return edges


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_package_import_graph_has_no_cycle():
    files = _module_files()
    graph = {name: _imports(name, path, set(files)) for name, path in files.items()}
    assert graph["devias_jax.data.streams"] >= {"devias_jax.data.sources", "devias_jax.data.tf_setup"}
    assert find_cycles(graph) == []


def unexplained_function_imports(source: str) -> list[int]:
    """Lines of imports inside functions with no comment on the line or the line above (the reason)."""
    lines = source.split("\n")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    line, above = lines[inner.lineno - 1], lines[inner.lineno - 2].strip()
                    if "#" not in line and not above.startswith("#"):
                        found.append(inner.lineno)
    return sorted(set(found))


def test_unexplained_function_import_finder():
    source = ("import os\n\ndef f():\n    import json\n    return json\n\n"
              "def g():\n    import csv  # on use: rarely needed\n    # heavy\n    import abc\n    return csv, abc\n")
    assert unexplained_function_imports(source) == [4]


def test_imports_inside_functions_say_why():
    """Modules import at the top; an import inside a function carries its reason in a comment."""
    problems = {}
    for name, path in sorted(_module_files().items()):
        lines = unexplained_function_imports(open(path, encoding="utf-8").read())
        if lines:
            problems[os.path.relpath(path, ROOT)] = lines
    assert problems == {}


def test_library_never_imports_unittest():
    """Experiments pass functions in (train.build_step(augment=, loss=)); nothing in the library patches."""
    users = sorted(os.path.relpath(path, ROOT) for name, path in _module_files().items()
                   if any(n == "unittest" or n.startswith("unittest.") for n in _all_imports(path)))
    assert users == []


def test_models_do_not_import_the_registry():
    """The registry (methods.py) reads the models; no model module reads it back (no upward import)."""
    files = _module_files()
    graph = {name: _imports(name, path, set(files)) for name, path in files.items()}
    upward = {name: sorted(deps & {"devias_jax.methods", "devias_jax.train"}) for name, deps in graph.items()
              if name.startswith("devias_jax.models")}
    assert all(not deps for deps in upward.values()), upward


def test_no_code_patches_the_trainer():
    patched = re.compile(r"(patch\.object|setattr)\(\s*(train|trainer|train_augment|objectives|methods)\b")
    offenders = []
    for folder in ("devias_jax", "scripts", "tests"):
        for directory, _, files in os.walk(os.path.join(ROOT, folder)):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(directory, file)
                    if patched.search(open(path, encoding="utf-8").read()):
                        offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []


def _all_imports(path: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names

"""Evaluators: each module here defines `Evaluator`, built once per run and run any number of times.

  evaluator = evaluators.get("suites")(config, graphdef, mesh, workdir)   # jitted functions made here
  metrics = evaluator.run(params, step=step)                              # reuses their compilations

`suites` (the paper's seen / unseen multi-view scores), `knn` (paper Table 1 and the reverse-leak
measures), `retrieval` (R@k). Every Evaluator also takes `source=` (the checkpoint its params come
from, recorded in what it writes). A new evaluator is one new module with an `Evaluator` class: main.py
offers it as `--mode=<module name>` (suites is `--mode=eval`; the trainer runs it periodically).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from typing import Any, Protocol


class Evaluator(Protocol):
    def __init__(self, config: Any, graphdef: Any, mesh: Any, workdir: str, *, source: str = "") -> None: ...

    def run(self, params: Any, *, step: int | None = None) -> dict[str, Any]: ...


def names() -> list[str]:
    """The evaluator modules of this package."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__))


def get(name: str) -> type:
    """The Evaluator class of devias_jax/evaluators/<name>.py."""
    if name not in names():
        raise ValueError(f"unknown evaluator {name!r}; expected one of {names()}")
    return importlib.import_module(f"{__name__}.{name}").Evaluator


def summary(name: str) -> str:
    """The first line of devias_jax/evaluators/<name>.py's docstring (what --help shows for its mode),
    read without importing the module."""
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    with open(spec.origin, encoding="utf-8") as handle:
        docstring = ast.get_docstring(ast.parse(handle.read())) or name
    return docstring.split("\n")[0].strip()

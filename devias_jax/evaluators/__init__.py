"""Evaluators: each module here defines `Evaluator`, built once per run and run any number of times.

  evaluator = evaluators.get("suites")(config, graphdef, mesh, workdir)   # jitted functions made here
  metrics = evaluator.run(params, step=step)                              # reuses their compilations

`suites` (the paper's seen / unseen multi-view scores), `knn` (paper Table 1 and the reverse-leak
measures), `retrieval` (R@k). A new evaluator is one new module with an `Evaluator` class; the trainer
runs the ones named in config.eval.evaluators.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Protocol


class Evaluator(Protocol):
    def __init__(self, config: Any, graphdef: Any, mesh: Any, workdir: str) -> None: ...

    def run(self, params: Any, *, step: int | None = None) -> dict[str, Any]: ...


def names() -> list[str]:
    """The evaluator modules of this package."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__))


def get(name: str) -> type:
    """The Evaluator class of devias_jax/evaluators/<name>.py."""
    if name not in names():
        raise ValueError(f"unknown evaluator {name!r}; expected one of {names()}")
    return importlib.import_module(f"{__name__}.{name}").Evaluator

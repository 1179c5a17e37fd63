"""--mode=eval: the workdir's latest checkpoint (else config.init_from) on every suite of config.eval.suites
(devias_jax/evaluators/suites.py) -> <workdir>/eval/report.json and the paper's table."""

from __future__ import annotations

from typing import Any, Mapping

from flax import nnx
from jax.sharding import Mesh

from devias_jax import sharding, weights
from devias_jax.evaluators import suites


def evaluate_suites(config: Any, graphdef: nnx.GraphDef, params: Any, mesh: Mesh, workdir: str,
                    step: int | None = None, extra: Mapping[str, Any] | None = None,
                    teacher: tuple[nnx.GraphDef, Any] | None = None) -> dict[str, Any]:
    """One evaluation of `params` (builds the suites evaluator and runs it once; a caller that evaluates
    repeatedly, like the trainer, keeps the evaluator so that nothing compiles twice)."""
    return suites.Evaluator(config, graphdef, mesh, workdir, teacher=teacher).run(params, step=step, extra=extra)


def evaluate_checkpoint(config: Any, workdir: str) -> dict[str, Any]:
    """--mode=eval: the latest checkpoint in `workdir` (else config.init_from) on every suite."""
    mesh = sharding.run_mesh(config)
    source = weights.run_source(config, workdir)
    graphdef, params, report = weights.load_params(config.model, source, mesh, sharding_config=config.sharding,
                                                   seed=config.seed)
    print(f"evaluating {source}: {report.summary()}", flush=True)
    return evaluate_suites(config, graphdef, params, mesh, workdir)

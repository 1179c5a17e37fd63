"""--mode=eval and every other evaluator mode: the workdir's latest checkpoint (else config.init_from)
through one evaluator of devias_jax/evaluators/ (eval: suites -> <workdir>/eval/report.json and the
paper's table)."""

from __future__ import annotations

from typing import Any, Mapping

from flax import nnx
from jax.sharding import Mesh

from devias_jax import evaluators, weights
from devias_jax.analysis.features import load_trained
from devias_jax.evaluators import suites


def evaluate_suites(config: Any, graphdef: nnx.GraphDef, params: Any, mesh: Mesh, workdir: str,
                    step: int | None = None, extra: Mapping[str, Any] | None = None,
                    teacher: tuple[nnx.GraphDef, Any] | None = None) -> dict[str, Any]:
    """One evaluation of `params` (builds the suites evaluator and runs it once; a caller that evaluates
    repeatedly, like the trainer, keeps the evaluator so that nothing compiles twice)."""
    return suites.Evaluator(config, graphdef, mesh, workdir, teacher=teacher).run(params, step=step, extra=extra)


def run_evaluator(name: str, config: Any, workdir: str) -> dict[str, Any]:
    """main.py --mode=<name>: the workdir's latest checkpoint (else config.init_from), loaded onto the
    run's mesh (analysis.features.load_trained), through devias_jax/evaluators/<name>.py."""
    model = load_trained(config, weights.run_source(config, workdir))
    evaluator = evaluators.get(name)(config, model.graphdef, model.mesh, workdir, source=model.source)
    return evaluator.run(model.params, step=model.step)


def evaluate_checkpoint(config: Any, workdir: str) -> dict[str, Any]:
    """--mode=eval: the latest checkpoint in `workdir` (else config.init_from) on every suite."""
    return run_evaluator("suites", config, workdir)

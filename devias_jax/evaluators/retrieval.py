"""R@k of test clips querying the train gallery -> <workdir>/eval/retrieval.json

For each configured feature against the action and the scene labels (devias_jax/analysis/maths.py);
run() also prints the table."""

from __future__ import annotations

import os
from typing import Any

import jax
from flax import nnx
from jax.sharding import Mesh

from devias_jax import report as report_lib
from devias_jax.analysis import maths
from devias_jax.analysis.features import GalleryAndQueries


class Evaluator:
    """Built once per model graph (its predict function jitted once); run(params) extracts the features
    of config.analysis.retrieval_features and scores them. `source` as in evaluators/knn.py."""

    def __init__(self, config: Any, graphdef: nnx.GraphDef, mesh: Mesh, workdir: str, *, source: str = ""):
        self.config, self.workdir = config, workdir
        names = tuple(dict.fromkeys(f.strip() for f in config.analysis.retrieval_features.split(",") if f.strip()))
        self.features = GalleryAndQueries(config, graphdef, mesh, workdir, names, source=source)

    def run(self, params: Any, *, step: int | None = None) -> dict[str, Any]:
        train, test, meta = self.features.extract(params, step)
        table = {**meta, **maths.retrieval_table(train, test, features=self.features.names,
                                                 ks=tuple(self.config.analysis.retrieval_ks))}
        if jax.process_index() == 0:
            path = os.path.join(self.workdir, "eval", "retrieval.json")
            report_lib.write_report(table, path)
            print(maths.format_retrieval_table(table))
            print(f"wrote {path}")
        return table

"""the disentanglement k-NN table (paper Table 1) and reverse-leak measures -> <workdir>/eval/knn.json

The weighted k-NN of the action and scene features against both labels and the reverse-leak measures
(devias_jax/analysis/maths.py), on features of config.analysis's lists; run() also prints them."""

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
    """Built once per model graph (its predict function jitted once); run(params) extracts the gallery
    and query features and scores them. `source`: the checkpoint the params come from (named in
    knn.json; keys the feature cache)."""

    def __init__(self, config: Any, graphdef: nnx.GraphDef, mesh: Mesh, workdir: str, *, source: str = ""):
        self.config, self.workdir = config, workdir
        settings = config.analysis
        self.features = GalleryAndQueries(config, graphdef, mesh, workdir,
                                          (settings.action_feature, settings.scene_feature), source=source)

    def run(self, params: Any, *, step: int | None = None) -> dict[str, Any]:
        config, settings = self.config, self.config.analysis
        train, test, meta = self.features.extract(params, step)
        table = maths.knn_table(train, test, num_actions=config.model.num_actions, num_scenes=config.model.num_scenes,
                                ks=tuple(settings.knn_ks), temperature=settings.knn_temperature,
                                action_feature=settings.action_feature, scene_feature=settings.scene_feature)
        table = {**meta, **table}
        table["leak"] = maths.leak_table(train, test, action_feature=settings.action_feature,
                                         scene_feature=settings.scene_feature)
        if jax.process_index() == 0:
            path = os.path.join(self.workdir, "eval", "knn.json")
            report_lib.write_report(table, path)
            print(maths.format_knn_table(table, config.method))
            print(maths.format_leak_table(table["leak"]))
            print(f"wrote {path}")
        return table

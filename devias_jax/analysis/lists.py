"""Which lists the analysis reads (config.analysis, with its defaults), and how a result names them."""

from __future__ import annotations

import os
from typing import Any, Mapping

from devias_jax.data import annotations


def analysis_lists(config: Any) -> dict[str, str]:
    """The lists the analysis reads: train (gallery) and test (queries) of the k-NN and retrieval, and
    the lists of the plots. Empty config fields: data.train_list, the list of the first (by name)
    evaluation suite in group 'seen'."""
    settings = config.analysis
    train = settings.knn_train_list or config.data.train_list
    test = settings.knn_test_list
    if not test:
        suites = dict(config.eval.get("suites", {}))
        seen = [s.list for _, s in sorted(suites.items()) if s.group == "seen"]
        if not seen:
            raise ValueError("config.analysis.knn_test_list is empty and no evaluation suite is in group "
                             "'seen'; set --config.analysis.knn_test_list=<list>")
        test = seen[0]
    return {"train": train, "test": test, "embedding": settings.embedding_list or test,
            "attention": settings.attention_list or test, "slots": settings.slot_list or test}


def list_meta(config: Any, lists: Mapping[str, str], model: Any) -> dict[str, Any]:
    """The head of a k-NN / retrieval result: method, checkpoint and step, gallery and query lists."""
    return {"method": config.method, "checkpoint": model.source, "step": model.step,
            "train_list": os.path.abspath(annotations.list_path(config, lists["train"])),
            "test_list": os.path.abspath(annotations.list_path(config, lists["test"]))}

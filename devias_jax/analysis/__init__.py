"""Disentanglement analysis (REFERENCE §9), split by job:

  maths.py      k-NN (paper Table 1), reverse-leak measures, retrieval R@k, slot-role counts, 2-D
                embeddings: numpy on host arrays, no model
  features.py   a trained model's per-video features over one list (loaded, extracted, cached)
  lists.py      which lists the analysis reads
  commands.py   scripts/extract_features.py, scripts/visualize.py

The k-NN and retrieval scores run as evaluators (devias_jax/evaluators/knn.py, retrieval.py;
main.py --mode=knn / retrieval through devias_jax/evaluate.run_evaluator). The
names below are the package's public API.
"""

from devias_jax.analysis.commands import PLOTS, run_extract, run_visualize, save_features
from devias_jax.analysis.features import (TrainedModel, cached_features, extract_features, from_model,
                                          load_trained, output_names)
from devias_jax.analysis.lists import analysis_lists
from devias_jax.analysis.maths import (COMBINATIONS, UNKNOWN, cosine_topk, embed_2d, format_knn_table,
                                       format_leak_table, format_retrieval_table, knn_predict, knn_table,
                                       l2_normalize, leak_table, majority_rate, retrieval_recall, retrieval_table,
                                       slot_frequency, variation_cosine, weighted_knn, within_group_agreement)

__all__ = ["COMBINATIONS", "PLOTS", "UNKNOWN", "TrainedModel", "analysis_lists", "cached_features", "cosine_topk",
           "embed_2d", "extract_features", "format_knn_table", "format_leak_table", "format_retrieval_table",
           "from_model", "knn_predict", "knn_table", "l2_normalize", "leak_table", "load_trained", "majority_rate",
           "output_names", "retrieval_recall", "retrieval_table", "run_extract",
           "run_visualize", "save_features", "slot_frequency", "variation_cosine", "weighted_knn",
           "within_group_agreement"]

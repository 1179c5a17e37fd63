"""Disentanglement analysis (REFERENCE §9): per-video features of a trained model, the weighted k-NN sanity
check of paper Table 1, retrieval recall R@k, slot-role statistics, and the commands behind them.

The maths (k-NN, retrieval, slot counts, 2-D embeddings) is plain numpy on host arrays. Feature
extraction reuses evaluate.make_predict_fn / run_predictions: named outputs are averaged over the test
views of each video (or kept per view), padding is dropped and rows come back in list order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import warnings
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

UNKNOWN = -1  # label of a video whose action / scene is not known; left out of every score
# Paper Table 1: (feature, label, kind). 'normal' should be high; 'reverse' near chance.
COMBINATIONS = (("action", "action", "normal"), ("scene", "scene", "normal"),
                ("action", "scene", "reverse"), ("scene", "action", "reverse"))
# Outputs computed on device from the model's own outputs (only the (B, D) result leaves the device):
# name -> (the output it is computed from, how). 'gap': global average pooling of the backbone tokens.
DERIVED_OUTPUTS = {"gap": ("tokens", lambda tokens: tokens.mean(axis=1))}  # (B, N, D) -> (B, D)
_SIMILARITY_CHUNK = 1 << 24  # query rows x gallery size per matrix product (64 MiB of float32)


# ----------------------------------------------------------------------------------------------------
# k-NN and retrieval (numpy)
# ----------------------------------------------------------------------------------------------------


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, D) float32 rows of unit length (zero rows stay zero)."""
    flat = np.asarray(features, np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-12)


def cosine_topk(query: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar gallery rows of every query: similarities and indices (Q, k), most
    similar first (equal similarities: lower gallery index first). k is capped at the gallery size."""
    query, gallery = l2_normalize(query), l2_normalize(gallery)
    k = min(int(k), len(gallery))
    if k < 1:
        raise ValueError(f"k={k}; expected k >= 1 and a non-empty gallery")
    chunk = max(1, _SIMILARITY_CHUNK // max(1, len(gallery)))
    sims, indices = [], []
    for start in range(0, len(query), chunk):
        sim = query[start:start + chunk] @ gallery.T  # (q, G)
        if k < sim.shape[1]:
            candidates = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            # argpartition picks arbitrarily among items tied with the k-th: those rows sort in full
            kth = np.take_along_axis(sim, candidates, axis=1).min(axis=1, keepdims=True)
            tied = (sim >= kth).sum(axis=1) > k
            if tied.any():
                candidates[tied] = np.argsort(-sim[tied], axis=1, kind="stable")[:, :k]
            candidates.sort(axis=1)  # ascending index, so the stable sort below breaks ties by index
        else:
            candidates = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
        candidate_sims = np.take_along_axis(sim, candidates, axis=1)
        order = np.argsort(-candidate_sims, axis=1, kind="stable")
        sims.append(np.take_along_axis(candidate_sims, order, axis=1))
        indices.append(np.take_along_axis(candidates, order, axis=1))
    return np.concatenate(sims), np.concatenate(indices)


def _known(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    keep = labels != UNKNOWN
    if np.any(labels[keep] < 0):
        raise ValueError(f"labels must be >= 0 (or {UNKNOWN} for unknown); got {labels[labels < UNKNOWN][:5]}")
    return np.asarray(features)[keep], labels[keep]


def knn_predict(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray, k: int,
                temperature: float = 0.07, num_classes: int | None = None) -> np.ndarray:
    """DINO-style weighted k-NN: each of the k most cosine-similar train items votes for its class with
    weight exp(similarity / temperature); the class with the largest total wins (ties: lower class).
    Returns the predicted class of every test row (Q,)."""
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}; expected > 0")
    train_labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes if num_classes else train_labels.max() + 1)
    if train_labels.max() >= num_classes:
        raise ValueError(f"train label {train_labels.max()} >= num_classes={num_classes}")
    sims, indices = cosine_topk(test_feats, train_feats, k)  # (Q, k)
    weights = np.exp(sims.astype(np.float64) / temperature)
    votes = np.zeros((len(sims), num_classes))
    np.add.at(votes, (np.arange(len(sims))[:, None], train_labels[indices]), weights)
    return votes.argmax(axis=1)


def weighted_knn(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                 test_labels: np.ndarray, k: int = 20, temperature: float = 0.07,
                 num_classes: int | None = None) -> float:
    """Top-1 accuracy (%) of the weighted k-NN classifier (knn_predict). Items labelled -1 (unknown) are
    left out of the gallery and the queries; NaN when either side is empty."""
    train_feats, train_labels = _known(train_feats, train_labels)
    test_feats, test_labels = _known(test_feats, test_labels)
    if not len(train_labels) or not len(test_labels):
        return float("nan")
    predictions = knn_predict(train_feats, train_labels, test_feats, k, temperature, num_classes)
    return float(100.0 * np.mean(predictions == test_labels))


def majority_rate(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy (%) on the test labels of always answering the most frequent train label."""
    train_labels = np.asarray(train_labels).reshape(-1)
    test_labels = np.asarray(test_labels).reshape(-1)
    train_labels, test_labels = train_labels[train_labels != UNKNOWN], test_labels[test_labels != UNKNOWN]
    if not len(train_labels) or not len(test_labels):
        return float("nan")
    majority = np.bincount(train_labels).argmax()
    return float(100.0 * np.mean(test_labels == majority))


def knn_table(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *, num_actions: int,
              num_scenes: int, ks: Sequence[int] = (10, 20), temperature: float = 0.07,
              action_feature: str = "action_feature", scene_feature: str = "scene_feature") -> dict[str, Any]:
    """Paper Table 1 from extracted features (dicts with the two feature arrays and 'action' / 'scene'
    labels): the four feature -> label combinations at each k, with chance (100 / classes) and the
    majority-class rate (always answering the gallery's most frequent label) beside each."""
    feature_names = {"action": action_feature, "scene": scene_feature}
    classes = {"action": int(num_actions), "scene": int(num_scenes)}
    rows = {}
    for feature, label, kind in COMBINATIONS:
        name = feature_names[feature]
        for side, data in (("train", train), ("test", test)):
            if name not in data:
                raise KeyError(f"the {side} features have no {name!r} (have: {sorted(data)})")
        rows[f"{feature}->{label}"] = {
            "feature": name, "label": label, "kind": kind,
            "accuracy": {str(k): weighted_knn(train[name], train[label], test[name], test[label], k,
                                              temperature, classes[label]) for k in ks},
            "chance": 100.0 / classes[label],
            "majority": majority_rate(train[label], test[label]),
            "gallery": int(np.sum(np.asarray(train[label]) != UNKNOWN)),
            "queries": int(np.sum(np.asarray(test[label]) != UNKNOWN)),
        }
    return {"temperature": float(temperature), "ks": [int(k) for k in ks], "num_train": len(train["action"]),
            "num_test": len(test["action"]), "rows": rows}


def within_group_agreement(train_feats: np.ndarray, train_group: np.ndarray, train_labels: np.ndarray,
                           test_feats: np.ndarray, test_group: np.ndarray, test_labels: np.ndarray) -> dict[str, float]:
    """How much of one factor a feature keeps once the other is fixed: for each query, the gallery item
    most cosine-similar to it among those of the query's group (e.g. its scene) -> % of queries whose
    item has the query's label (e.g. its action), beside the base rate (% of the query's group with the
    query's label, averaged over queries). A scene feature that keeps none of the action stays near the
    base rate. Items or queries with an unknown group or label, and queries whose group has no gallery
    item, are left out; NaN when none is left."""
    train_group, train_labels = (np.asarray(x).astype(np.int64).reshape(-1) for x in (train_group, train_labels))
    test_group, test_labels = (np.asarray(x).astype(np.int64).reshape(-1) for x in (test_group, test_labels))
    keep = (train_group != UNKNOWN) & (train_labels != UNKNOWN)
    gallery, train_group, train_labels = l2_normalize(train_feats)[keep], train_group[keep], train_labels[keep]
    queries = l2_normalize(test_feats)
    hits, base = [], []
    for query, group, label in zip(queries, test_group, test_labels):
        members = np.flatnonzero(train_group == group)
        if group == UNKNOWN or label == UNKNOWN or not len(members):
            continue
        nearest = members[np.argmax(gallery[members] @ query)]  # ties: lower gallery index
        hits.append(train_labels[nearest] == label)
        base.append(np.mean(train_labels[members] == label))
    if not hits:
        return {"agreement": float("nan"), "base_rate": float("nan"), "queries": 0}
    return {"agreement": float(100.0 * np.mean(hits)), "base_rate": float(100.0 * np.mean(base)),
            "queries": len(hits)}


def variation_cosine(first: np.ndarray, second: np.ndarray) -> float:
    """Mean cosine, over items, between two features' deviations from their own means over the items:
    -1 when one feature's clip-to-clip variation is the other's mirrored (what a loss pushing the two
    slots to antipodal can produce), near 0 when they vary independently."""
    first, second = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (first, second))
    if first.shape != second.shape:
        raise ValueError(f"features of shapes {first.shape} and {second.shape}; expected equal")
    first, second = l2_normalize(first - first.mean(0)), l2_normalize(second - second.mean(0))
    return float(np.mean(np.sum(first * second, axis=1)))


def leak_table(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *,
               action_feature: str = "action_feature", scene_feature: str = "scene_feature") -> dict[str, Any]:
    """What each slot keeps of the other factor with its own factor held fixed (within_group_agreement:
    the scene feature within the query's scene -> action, the action feature within its action ->
    scene), and the cosine of the two slots' clip-to-clip variation over the gallery (variation_cosine)."""
    return {
        "scene_feature_within_scene_action": within_group_agreement(
            train[scene_feature], train["scene"], train["action"], test[scene_feature], test["scene"], test["action"]),
        "action_feature_within_action_scene": within_group_agreement(
            train[action_feature], train["action"], train["scene"], test[action_feature], test["action"], test["scene"]),
        "variation_cosine": variation_cosine(train[action_feature], train[scene_feature]),
    }


def format_leak_table(leak: Mapping[str, Any]) -> str:
    """leak_table as the lines `--mode=knn` prints under the k-NN table."""
    lines = ["nearest gallery clip of the query's own scene / action (reverse leak; near the base rate is better):"]
    for key, text in (("scene_feature_within_scene_action", "scene feature, same scene  -> has the query's action"),
                      ("action_feature_within_action_scene", "action feature, same action -> has the query's scene")):
        row = leak[key]
        lines.append(f"  {text}: {_cell(row['agreement'], 5)}% (base rate {_cell(row['base_rate'], 4)}%)")
    lines.append(f"cosine of the two features' clip-to-clip variation (train): {leak['variation_cosine']:+.2f}")
    return "\n".join(lines)


def _cell(value: float, width: int) -> str:
    return f"{'n/a' if value is None or np.isnan(value) else f'{value:.1f}':>{width}}"


def format_knn_table(table: Mapping[str, Any], method: str = "") -> str:
    """Paper Table 1's layout: normal (action->action, scene->scene) then reverse (action->scene,
    scene->action) columns; one row per k, then chance and majority-class rows."""
    order = [f"{f}->{l}" for f, l, _ in COMBINATIONS]
    rows = table["rows"]
    width = 16
    head = (f"weighted k-NN (cosine, T={table['temperature']:g}): {table['num_test']} test videos query "
            f"{table['num_train']} train videos")
    if table.get("train_list"):
        head += f"\n  gallery {table['train_list']}\n  queries {table['test_list']}"
    label = method or "model"
    lines = [head, f"{'':<22}| {'normal (higher is better)':^{2 * width}} | "
                   f"{'reverse (near chance is better)':^{2 * width}}",
             f"{'':<22}| " + " | ".join("".join(f"{name:>{width}}" for name in order[i:i + 2]) for i in (0, 2))]
    for k in table["ks"]:
        cells = [_cell(rows[name]["accuracy"][str(k)], width) for name in order]
        lines.append(f"{f'{label} k={k}':<22}| {''.join(cells[:2])} | {''.join(cells[2:])}")
    for title, key in (("chance (100/classes)", "chance"), ("majority class", "majority")):
        cells = [_cell(rows[name][key], width) for name in order]
        lines.append(f"{title:<22}| {''.join(cells[:2])} | {''.join(cells[2:])}")
    return "\n".join(lines)


def retrieval_recall(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                     gallery_labels: np.ndarray, ks: Sequence[int] = (1, 5, 10, 20, 50)) -> dict[int, float]:
    """R@k (%): the fraction of queries with at least one same-label gallery item among their k most
    cosine-similar gallery items (k capped at the gallery size). Unknown (-1) labels are left out."""
    gallery, gallery_labels = _known(gallery, gallery_labels)
    query, query_labels = _known(query, query_labels)
    if not len(query_labels) or not len(gallery_labels):
        return {int(k): float("nan") for k in ks}
    _, indices = cosine_topk(query, gallery, max(ks))
    hits = gallery_labels[indices] == query_labels[:, None]  # (Q, min(max k, G))
    return {int(k): float(100.0 * np.mean(hits[:, :k].any(axis=1))) for k in ks}


def retrieval_table(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *,
                    features: Sequence[str] = ("action_feature", "scene_feature"),
                    labels: Sequence[str] = ("action", "scene"),
                    ks: Sequence[int] = (1, 5, 10, 20, 50)) -> dict[str, Any]:
    """R@k of test clips querying the train gallery, for every (feature, label) pair."""
    rows = {}
    for feature in features:
        for label in labels:
            rows[f"{feature}/{label}"] = {
                "feature": feature, "label": label,
                "recall": {str(k): v for k, v in retrieval_recall(test[feature], test[label], train[feature],
                                                                  train[label], ks).items()},
                "queries": int(np.sum(np.asarray(test[label]) != UNKNOWN)),
                "gallery": int(np.sum(np.asarray(train[label]) != UNKNOWN)),
            }
    return {"ks": [int(k) for k in ks], "num_train": len(train["action"]), "num_test": len(test["action"]),
            "rows": rows}


def format_retrieval_table(table: Mapping[str, Any]) -> str:
    head = (f"retrieval (cosine): {table['num_test']} test videos query {table['num_train']} train videos")
    if table.get("train_list"):
        head += f"\n  gallery {table['train_list']}\n  queries {table['test_list']}"
    lines = [head, f"{'feature / label':<30}" + "".join(f"{'R@' + k:>8}" for k in map(str, table["ks"]))]
    for name, row in table["rows"].items():
        lines.append(f"{name:<30}" + "".join(_cell(row["recall"][str(k)], 8) for k in table["ks"]))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Slot roles and 2-D embeddings (numpy)
# ----------------------------------------------------------------------------------------------------


def slot_frequency(action_slot: np.ndarray, scene_slot: np.ndarray, num_slots: int) -> dict[str, Any]:
    """How often each slot index is chosen as the action / scene slot (over every clip view given)."""
    action_slot = np.asarray(action_slot).astype(np.int64).reshape(-1)
    scene_slot = np.asarray(scene_slot).astype(np.int64).reshape(-1)
    total = len(action_slot)
    action = np.bincount(action_slot, minlength=num_slots)
    scene = np.bincount(scene_slot, minlength=num_slots)
    return {"views": int(total), "num_slots": int(num_slots),
            "action": action.tolist(), "scene": scene.tolist(),
            "action_fraction": (action / max(total, 1)).tolist(), "scene_fraction": (scene / max(total, 1)).tolist(),
            "same_slot": int(np.sum(action_slot == scene_slot))}


def _import_umap():
    """umap-learn without its optional TensorFlow import (ParametricUMAP, unused here), which would
    otherwise load TensorFlow into a process that has not loaded it."""
    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # makes `import tensorflow` raise ImportError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap
    finally:
        if blocked:
            del sys.modules["tensorflow"]
    return umap


def embed_2d(features: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) by UMAP (cosine neighbours) or t-SNE (on unit-length rows), seeded."""
    x = l2_normalize(features)
    if len(x) < 4:
        raise ValueError(f"a 2-D embedding needs at least 4 videos; got {len(x)}")
    if method == "umap":
        umap = _import_umap()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs=1 with random_state is intended
            reducer = umap.UMAP(n_neighbors=min(15, len(x) - 1), min_dist=0.1, metric="cosine",
                                random_state=seed, n_jobs=1, init="spectral" if len(x) > 16 else "random")
            return np.asarray(reducer.fit_transform(x), np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        # One OpenMP thread: beside XLA's thread pools the parallel gradient runs ~100x slower.
        with threadpool_limits(limits=1):
            return np.asarray(TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
                              .fit_transform(x), np.float32)
    raise ValueError(f"embedding method {method!r}; expected 'umap' or 'tsne'")


# ----------------------------------------------------------------------------------------------------
# Features from a trained model
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainedModel:
    """A model ready for make_predict_fn: graph, replicated parameters, the mesh, where they came from."""
    graphdef: Any
    params: Any
    mesh: Any
    source: str = ""
    step: int | None = None
    predict_fns: dict = dataclasses.field(default_factory=dict)  # (names) -> jitted predict, compiled once
    outputs: tuple[str, ...] = ()  # the model's output names, once known (output_names)

    def predict_fn(self, names: Sequence[str]):
        from devias_jax.evaluate import make_predict_fn

        key = tuple(names)
        if key not in self.predict_fns:
            self.predict_fns[key] = make_predict_fn(self.graphdef, key)
        return self.predict_fns[key]


def _with_derived_outputs(model):
    """Wraps an NNX model so that its outputs also hold DERIVED_OUTPUTS (computed inside the jit)."""
    from flax import nnx

    class WithDerivedOutputs(nnx.Module):
        def __init__(self, inner):
            self.model = inner

        def __call__(self, clips, train: bool = False, rngs=None):
            outputs = dict(self.model(clips, train=train, rngs=rngs))
            for name, (source, derive) in DERIVED_OUTPUTS.items():
                if source in outputs and name not in outputs:
                    outputs[name] = derive(outputs[source])
            return outputs

    return WithDerivedOutputs(model)


def from_model(model, mesh=None, source: str = "", step: int | None = None) -> TrainedModel:
    """An NNX model (e.g. built and trained in this process) -> TrainedModel on `mesh` (default: all devices)."""
    import jax
    from flax import nnx

    from devias_jax import sharding

    mesh = mesh if mesh is not None else sharding.make_mesh()
    graphdef, params = nnx.split(_with_derived_outputs(model), nnx.Param)
    params = jax.device_put(params.to_pure_dict(), sharding.replicated(mesh))
    return TrainedModel(graphdef, params, mesh, source, step)


def checkpoint_source(config: Any, workdir: str) -> str:
    """The latest training checkpoint in `workdir`, else config.init_from; raises when neither exists."""
    from devias_jax.checkpoint import find_training_checkpoint

    state = find_training_checkpoint(workdir) if os.path.isdir(workdir) else None
    if state is not None:
        return os.path.dirname(state)  # <workdir>/checkpoints/<step>
    if config.get("init_from"):
        return config.init_from
    raise FileNotFoundError(f"no training checkpoint in {workdir!r} and no config.init_from to analyse")


def load_trained(config: Any, source: str) -> TrainedModel:
    """Builds config.model and loads `source` (a trainer workdir / checkpoint, a converted directory or a
    PyTorch file) strictly: every parameter must come from it."""
    import jax
    from flax import nnx

    from devias_jax import sharding
    from devias_jax.models import build_model
    from devias_jax.param_rules import path_str
    from devias_jax.weights import param_paths, read_params

    sharding.initialize_distributed(config.distributed)
    mesh = sharding.make_mesh(config.sharding.fsdp, num_devices=config.sharding.num_devices)
    # Shapes only: every parameter comes from the checkpoint, so nothing is initialised.
    abstract = nnx.eval_shape(lambda: build_model(config.model, rngs=nnx.Rngs(config.seed)))
    loaded, report = read_params(source, param_paths(abstract), config.model, strict=True)
    graphdef, state = nnx.split(abstract, nnx.Param)
    params = jax.tree_util.tree_map_with_path(
        lambda keypath, leaf: np.asarray(loaded[path_str(keypath)], leaf.dtype), state.to_pure_dict())
    print(f"analysing {source}: {report.summary()}", flush=True)
    return from_model(nnx.merge(graphdef, params), mesh, source=os.path.abspath(source), step=_step_of(source))


def _step_of(source: str) -> int | None:
    """The training step of a <workdir>/checkpoints/<step>[/state] path, else None."""
    parts = os.path.normpath(os.path.abspath(source)).split(os.sep)
    if parts[-1] == "state":
        parts = parts[:-1]
    if len(parts) > 1 and parts[-1].isdigit() and parts[-2] == "checkpoints":
        return int(parts[-1])
    return None


def _views_as_videos(batches: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """Eval batches (b, V, ...) -> batches of b*V one-view 'videos' (labels, index and validity repeated),
    so that the view-averaging predict function returns every view's own outputs."""
    for batch in batches:
        clips = np.asarray(batch["clips"])
        b, views = clips.shape[:2]
        out = {"clips": clips.reshape((b * views, 1) + clips.shape[2:])}
        for key in ("action", "scene", "index", "valid"):
            out[key] = np.repeat(np.asarray(batch[key]), views)
        yield out


def _list_labels(config: Any, path: str):
    """The list parsed with its scene column whatever config.data.scene_source says (the k-NN needs
    scene labels: teacher pseudo labels written into the list, or the dataset's own)."""
    from devias_jax.data import annotations

    data = config.data
    return annotations.load_list(path, root=data.root, num_actions=data.num_actions,
                                 num_scenes=max(int(data.num_scenes), 1), scene_source="list",
                                 list_format=data.list_format, video_ext=data.video_ext, require_scene=False)


def extract_features(config: Any, model: TrainedModel | str, list_path: str, names: Sequence[str], *,
                     per_view: bool = False, max_videos: int = 0, label: str = "",
                     keep_clips: bool = False) -> dict[str, np.ndarray]:
    """Per-video arrays for one list: every name in `names` (a model output such as 'action_feature',
    'scene_feature', 'slots', 'attention', 'action_slot', or 'gap' = mean of the tokens), averaged over
    the test views (per_view: (N, V, ...) instead), plus 'action', 'scene' (-1 unknown), 'index' (list
    row), 'paths' and 'video_ids' (paths relative to data.root).

    model: a TrainedModel, or a checkpoint (workdir, converted directory, PyTorch file) to load.
    max_videos > 0 reads only the batches holding the first max_videos videos; keep_clips adds the
    decoded input 'clips' uint8 (N, V, T, H, W, 3) (single process only; meant for a few videos).
    """
    import itertools

    import jax

    from devias_jax.data import annotations, streams
    from devias_jax.evaluate import run_predictions

    if isinstance(model, str):
        model = load_trained(config, model)
    path = annotations.list_path(config, list_path)
    missing = sorted(set(names) - set(output_names(config, model)))
    if missing:
        raise KeyError(f"model {config.model.name!r} has no output {missing}; it has "
                       f"{sorted(output_names(config, model))}")
    predict = model.predict_fn(names)
    batch_size = int(config.get("analysis", {}).get("batch_size", 0) or config.eval.batch_size)
    views = config.data.test_temporal_views * config.data.test_spatial_views
    kept: list[Mapping[str, np.ndarray]] = []
    with streams.eval_batches(config, path, batch_size=batch_size // jax.process_count(),
                              process_index=jax.process_index(), process_count=jax.process_count()) as stream:
        batches: Iterable[Mapping[str, np.ndarray]] = stream
        num_batches = len(stream)
        if max_videos > 0:
            num_batches = min(num_batches, -(-int(max_videos) // (batch_size // jax.process_count())))
            batches = itertools.islice(stream, num_batches)
        if keep_clips:
            if jax.process_count() > 1:
                raise ValueError("keep_clips needs a single process")
            batches = _tap(batches, kept)
        if per_view:
            batches = _views_as_videos(batches)
        results = run_predictions(predict, model.params, batches, model.mesh, num_batches,
                                  label=label or os.path.basename(path), timeout_s=config.data.batch_timeout_s,
                                  describe_stuck=stream.describe_stuck)
        unreadable = stream.failures.bad_files()
    if unreadable and jax.process_index() == 0:
        print(f"  {len(unreadable)} video(s) of {os.path.basename(path)} could not be decoded and have no "
              "features: " + ", ".join(sorted(unreadable)[:5]) + (" ..." if len(unreadable) > 5 else ""),
              flush=True)
    out = {name: results[name] for name in names}
    if per_view:
        out = {name: value.reshape((-1, views) + value.shape[1:]) for name, value in out.items()}
        results = {key: results[key][::views] for key in ("action", "scene", "index")}
    index = results["index"].astype(np.int64)
    out["index"] = index
    out["action"] = results["action"].astype(np.int32)
    out["scene"] = results["scene"].astype(np.int32)
    if config.data.get("source", "videos") == "videos":
        parsed = _list_labels(config, path)
        out["action"], out["scene"] = parsed.action[index], parsed.scene[index]
        paths = np.asarray(parsed.paths)[index]
        root = os.path.abspath(os.path.expanduser(config.data.root)) if config.data.root else ""
        out["paths"] = paths
        out["video_ids"] = np.asarray([os.path.relpath(p, root) if root else p for p in paths])
    else:
        out["paths"] = out["video_ids"] = np.asarray([str(i) for i in index])
    if keep_clips:
        clips = np.concatenate([np.asarray(b["clips"]) for b in kept])
        rows = np.concatenate([np.asarray(b["index"]) for b in kept])
        by_row = {int(r): i for i, r in enumerate(rows) if r >= 0}
        out["clips"] = clips[[by_row[int(r)] for r in index]]
    return out


def output_names(config: Any, model: TrainedModel) -> tuple[str, ...]:
    """The outputs extract_features can name for this model (traced on an abstract clip, nothing runs)."""
    import jax
    from flax import nnx

    if not model.outputs:
        size = int(config.model.img_size)
        clips = jax.ShapeDtypeStruct((1, int(config.model.num_frames), size, size, 3), np.float32)
        shapes = jax.eval_shape(lambda params, x: nnx.merge(model.graphdef, params)(x, train=False),
                                model.params, clips)
        model.outputs = tuple(sorted(shapes))
    return model.outputs


def _tap(batches: Iterable[Mapping[str, np.ndarray]], kept: list) -> Iterator[Mapping[str, np.ndarray]]:
    for batch in batches:
        kept.append(batch)
        yield batch


def cached_features(config: Any, model: TrainedModel, list_path: str, names: Sequence[str],
                    cache_dir: str | None) -> dict[str, np.ndarray]:
    """extract_features, stored in cache_dir as .npz keyed by the checkpoint, the list file (path, size,
    mtime), the names, the model and the clip geometry; a later call with the same key reads it back.
    Single-process runs only (other processes may not see the file): with several, it always extracts."""
    import jax

    from devias_jax.data import annotations

    path = annotations.list_path(config, list_path)
    if not cache_dir or jax.process_count() > 1:
        return extract_features(config, model, path, sorted(names))
    stat = os.stat(path)
    data = config.data
    source_mtime = os.stat(model.source).st_mtime_ns if os.path.exists(model.source) else None
    key = json.dumps({"source": model.source, "source_mtime": source_mtime, "step": model.step,
                      "list": os.path.abspath(path),
                      "list_size": stat.st_size, "list_mtime": stat.st_mtime_ns, "names": sorted(names),
                      "root": data.root, "views": [data.test_temporal_views, data.test_spatial_views],
                      "geometry": [config.model.num_frames, config.model.img_size, data.short_side, data.frame_stride],
                      "model": config.model.to_json_best_effort(sort_keys=True)}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    file = os.path.join(cache_dir, f"{os.path.splitext(os.path.basename(path))[0]}-{digest}.npz")
    if os.path.isfile(file):
        with np.load(file, allow_pickle=False) as stored:
            print(f"  features of {os.path.basename(path)} from {file}", flush=True)
            return {name: stored[name] for name in stored.files}
    features = extract_features(config, model, path, sorted(names))
    os.makedirs(cache_dir, exist_ok=True)
    tmp = file + ".tmp.npz"
    np.savez(tmp, **features)
    os.replace(tmp, file)
    return features


# ----------------------------------------------------------------------------------------------------
# Commands (main.py --mode=knn / retrieval; scripts/extract_features.py, scripts/visualize.py)
# ----------------------------------------------------------------------------------------------------


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


def _write_json(payload: Mapping[str, Any], path: str) -> None:
    from devias_jax import report as report_lib

    report_lib.write_report(payload, path)


def _train_test_features(config: Any, workdir: str, names: Sequence[str]):
    from devias_jax.data import annotations

    lists = analysis_lists(config)
    model = load_trained(config, checkpoint_source(config, workdir))
    cache = os.path.join(workdir, "eval", "features") if config.analysis.cache_features else None
    train = cached_features(config, model, lists["train"], names, cache)
    test = cached_features(config, model, lists["test"], names, cache)
    meta = {"method": config.method, "checkpoint": model.source, "step": model.step,
            "train_list": os.path.abspath(annotations.list_path(config, lists["train"])),
            "test_list": os.path.abspath(annotations.list_path(config, lists["test"]))}
    return model, train, test, meta


def run_knn(config: Any, workdir: str) -> dict[str, Any]:
    """--mode=knn: paper Table 1 for the workdir's latest checkpoint -> <workdir>/eval/knn.json, printed."""
    import jax

    settings = config.analysis
    names = (settings.action_feature, settings.scene_feature)
    _, train, test, meta = _train_test_features(config, workdir, names)
    table = knn_table(train, test, num_actions=config.data.num_actions, num_scenes=config.data.num_scenes,
                      ks=tuple(settings.knn_ks), temperature=settings.knn_temperature,
                      action_feature=settings.action_feature, scene_feature=settings.scene_feature)
    table = {**meta, **table}
    if settings.action_feature in test and settings.scene_feature in test:
        table["leak"] = leak_table(train, test, action_feature=settings.action_feature,
                                   scene_feature=settings.scene_feature)
    if jax.process_index() == 0:
        path = os.path.join(workdir, "eval", "knn.json")
        _write_json(table, path)
        print(format_knn_table(table, config.method))
        if "leak" in table:
            print(format_leak_table(table["leak"]))
        print(f"wrote {path}")
    return table


def run_retrieval(config: Any, workdir: str) -> dict[str, Any]:
    """--mode=retrieval: R@k of test clips querying the train gallery -> <workdir>/eval/retrieval.json."""
    import jax

    settings = config.analysis
    features = tuple(dict.fromkeys(f.strip() for f in settings.retrieval_features.split(",") if f.strip()))
    _, train, test, meta = _train_test_features(config, workdir, features)
    table = {**meta, **retrieval_table(train, test, features=features, ks=tuple(settings.retrieval_ks))}
    if jax.process_index() == 0:
        path = os.path.join(workdir, "eval", "retrieval.json")
        _write_json(table, path)
        print(format_retrieval_table(table))
        print(f"wrote {path}")
    return table


def save_features(features: Mapping[str, np.ndarray], output: str, meta: Mapping[str, Any]) -> list[str]:
    """A folder of .npy files (one per array: features, action, scene, index, video_ids, paths) plus
    features.json (the metadata, each array's shape and the video ids in order). Returns the files."""
    os.makedirs(output, exist_ok=True)
    written = []
    for name, value in features.items():
        file = os.path.join(output, f"{name}.npy")
        np.save(file, np.asarray(value))
        written.append(file)
    summary = {**meta, "arrays": {name: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)}
                                  for name, v in features.items()},
               "video_ids": [str(v) for v in features.get("video_ids", [])]}
    file = os.path.join(output, "features.json")
    _write_json(summary, file)
    return written + [file]


def run_extract(config: Any, workdir: str, list_path: str = "", names: Sequence[str] = (), output: str = "",
                per_view: bool = False) -> list[str]:
    """scripts/extract_features.py: named outputs of the latest checkpoint over one list -> .npy files."""
    import jax

    from devias_jax.data import annotations

    lists = analysis_lists(config)
    path = os.path.abspath(annotations.list_path(config, list_path or lists["test"]))
    names = tuple(names) or ("action_feature", "scene_feature")
    model = load_trained(config, checkpoint_source(config, workdir))
    features = extract_features(config, model, path, names, per_view=per_view)
    output = output or os.path.join(workdir, "features", os.path.splitext(os.path.basename(path))[0])
    if jax.process_index() != 0:
        return []
    files = save_features(features, output, {"method": config.method, "checkpoint": model.source,
                                             "step": model.step, "list": path, "names": list(names),
                                             "per_view": per_view})
    print(f"wrote {len(features['index'])} videos x {list(names)} to {output}")
    return files


PLOTS = ("attention", "embedding", "slots")


def run_visualize(config: Any, workdir: str, plots: Sequence[str] = PLOTS, output: str = "") -> list[str]:
    """scripts/visualize.py: attention maps, UMAP / t-SNE of the action and scene features, slot-role
    frequency, as PNG files in <workdir>/plots (or `output`). Returns the files written."""
    import jax

    from devias_jax import visualize
    from devias_jax.data import annotations

    unknown = sorted(set(plots) - set(PLOTS))
    if unknown:
        raise ValueError(f"unknown plots {unknown}; expected some of {list(PLOTS)}")
    settings = config.analysis
    lists = analysis_lists(config)
    model = load_trained(config, checkpoint_source(config, workdir))
    output = output or os.path.join(workdir, "plots")
    written: list[str] = []
    title = f"{config.method}" + (f" step {model.step}" if model.step is not None else "")
    slot_outputs = {"attention", "action_slot", "scene_slot"}
    if set(plots) & {"attention", "slots"} and not slot_outputs <= set(output_names(config, model)):
        print(f"  model {config.model.name!r} has no slots (outputs {sorted(slot_outputs)}); no attention maps "
              "or slot frequency", flush=True)
        plots = [p for p in plots if p not in ("attention", "slots")]
    if "attention" in plots:
        features = extract_features(config, model, lists["attention"], ("attention", "action_slot", "scene_slot"),
                                    per_view=True, max_videos=settings.attention_videos, keep_clips=True,
                                    label="attention")
        view = config.data.test_spatial_views // 2  # the centre crop of the first temporal window
        tubelet = int(config.model.tubelet_size)
        grid = (int(config.model.num_frames) // tubelet, int(config.model.img_size) // int(config.model.patch_size),
                int(config.model.img_size) // int(config.model.patch_size))
        for i in range(min(settings.attention_videos, len(features["index"]))):
            video = features["video_ids"][i]
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.splitext(str(video))[0])
            path = os.path.join(output, f"attention_{i:02d}_{name}.png")
            written.append(visualize.plot_attention_maps(
                features["clips"][i, view], features["attention"][i, view], grid, tubelet,
                int(round(float(features["action_slot"][i, view]))), int(round(float(features["scene_slot"][i, view]))),
                path, max_frames=settings.attention_frames,
                title=f"{title}: {video} (action {features['action'][i]}, scene {features['scene'][i]})"))
    if "embedding" in plots:
        names = (settings.action_feature, settings.scene_feature)
        cache = os.path.join(workdir, "eval", "features") if settings.cache_features else None
        features = cached_features(config, model, lists["embedding"], names, cache)  # shared with --mode=knn
        count = len(features["index"])
        keep = np.arange(count)
        if count > settings.embedding_max_points:
            keep = np.sort(np.random.default_rng(config.seed).choice(count, settings.embedding_max_points,
                                                                    replace=False))
        embeddings = {name: embed_2d(features[name][keep], settings.embedding, config.seed) for name in names}
        path = os.path.join(output, f"{settings.embedding}.png")
        if jax.process_index() == 0:
            written.append(visualize.plot_embeddings(
                embeddings, features["action"][keep], features["scene"][keep], path, method=settings.embedding,
                title=f"{title}: {os.path.basename(annotations.list_path(config, lists['embedding']))}"))
    if "slots" in plots:
        features = extract_features(config, model, lists["slots"], ("action_slot", "scene_slot"), per_view=True,
                                    label="slots")
        frequency = slot_frequency(np.rint(features["action_slot"]), np.rint(features["scene_slot"]),
                                   int(config.model.num_slots))
        frequency["list"] = annotations.list_path(config, lists["slots"])
        if jax.process_index() == 0:
            _write_json(frequency, os.path.join(output, "slot_frequency.json"))
            written.append(visualize.plot_slot_frequency(frequency, os.path.join(output, "slot_frequency.png"),
                                                         title=title))
    for path in written:
        print(f"wrote {path}")
    return written

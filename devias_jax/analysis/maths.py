"""Disentanglement maths on host arrays (REFERENCE §9): the weighted k-NN of paper Table 1, the
reverse-leak measures, retrieval recall R@k, slot-role counts and 2-D embeddings, and their tables.
Plain numpy; nothing here touches a model."""

from __future__ import annotations

import sys
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

UNKNOWN = -1  # label of a video whose action / scene is not known; left out of every score
# Paper Table 1: (feature, label, kind). 'normal' should be high; 'reverse' near chance.
COMBINATIONS = (("action", "action", "normal"), ("scene", "scene", "normal"),
                ("action", "scene", "reverse"), ("scene", "action", "reverse"))
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
            import umap  # on use: umap-learn (and numba) take seconds to import, only the plot needs it
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
        # Imported on use: scikit-learn takes seconds to import and only the t-SNE plot needs it.
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits  # (with scikit-learn, which brings it)

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        # One OpenMP thread: beside XLA's thread pools the parallel gradient runs ~100x slower.
        with threadpool_limits(limits=1):
            return np.asarray(TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
                              .fit_transform(x), np.float32)
    raise ValueError(f"embedding method {method!r}; expected 'umap' or 'tsne'")

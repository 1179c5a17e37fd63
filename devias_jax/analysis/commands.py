"""The analysis commands of scripts/extract_features.py and scripts/visualize.py: the run's checkpoint ->
features -> files. (main.py --mode=knn / retrieval run evaluators: devias_jax/evaluate.run_evaluator.)"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from devias_jax import visualize, weights
from devias_jax import report as report_lib
from devias_jax.analysis import maths
from devias_jax.analysis.features import cached_features, extract_features, load_trained, output_names
from devias_jax.analysis.lists import analysis_lists
from devias_jax.data import annotations


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
    report_lib.write_report(summary, file)
    return written + [file]


def run_extract(config: Any, workdir: str, list_path: str = "", names: Sequence[str] = (), output: str = "",
                per_view: bool = False) -> list[str]:
    """scripts/extract_features.py: named outputs of the latest checkpoint over one list -> .npy files."""
    lists = analysis_lists(config)
    path = os.path.abspath(annotations.list_path(config, list_path or lists["test"]))
    names = tuple(names) or ("action_feature", "scene_feature")
    model = load_trained(config, weights.run_source(config, workdir))
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
    unknown = sorted(set(plots) - set(PLOTS))
    if unknown:
        raise ValueError(f"unknown plots {unknown}; expected some of {list(PLOTS)}")
    settings = config.analysis
    lists = analysis_lists(config)
    model = load_trained(config, weights.run_source(config, workdir))
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
        embeddings = {name: maths.embed_2d(features[name][keep], settings.embedding, config.seed) for name in names}
        path = os.path.join(output, f"{settings.embedding}.png")
        if jax.process_index() == 0:
            written.append(visualize.plot_embeddings(
                embeddings, features["action"][keep], features["scene"][keep], path, method=settings.embedding,
                title=f"{title}: {os.path.basename(annotations.list_path(config, lists['embedding']))}"))
    if "slots" in plots:
        features = extract_features(config, model, lists["slots"], ("action_slot", "scene_slot"), per_view=True,
                                    label="slots")
        frequency = maths.slot_frequency(np.rint(features["action_slot"]), np.rint(features["scene_slot"]),
                                   int(config.model.num_slots))
        frequency["list"] = annotations.list_path(config, lists["slots"])
        if jax.process_index() == 0:
            report_lib.write_report(frequency, os.path.join(output, "slot_frequency.json"))
            written.append(visualize.plot_slot_frequency(frequency, os.path.join(output, "slot_frequency.png"),
                                                         title=title))
    for path in written:
        print(f"wrote {path}")
    return written

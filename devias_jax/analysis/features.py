"""Per-video features of a trained model: loading it (devias_jax/weights.py), running it over one list
with the view-averaging predict function (devias_jax/predict.py), and caching the result on disk.

Named outputs are averaged over the test views of each video (or kept per view), padding is dropped
and rows come back in list order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jax
import numpy as np
from flax import nnx

from devias_jax import predict as predict_lib
from devias_jax import checkpoint, sharding, weights
from devias_jax.analysis.lists import analysis_lists, list_meta
from devias_jax.data import annotations, streams  # TensorFlow itself loads only when a stream starts


@dataclasses.dataclass
class TrainedModel:
    """A model ready for the predict functions: graph, parameters on the mesh, where they came from.
    Its jitted predict functions are made once per set of output names and kept."""
    graphdef: Any
    params: Any
    mesh: Any
    source: str = ""
    step: int | None = None
    predict_fns: dict = dataclasses.field(default_factory=dict)  # (names) -> jitted predict, compiled once
    outputs: tuple[str, ...] = ()  # the model's output names, once known (output_names)

    def predict_fn(self, names: Sequence[str]):
        key = tuple(names)
        if key not in self.predict_fns:
            self.predict_fns[key] = predict_lib.make_predict_fn(self.graphdef, key)
        return self.predict_fns[key]


def from_model(model: nnx.Module, mesh: Any = None, source: str = "", step: int | None = None) -> TrainedModel:
    """An NNX model (e.g. built and trained in this process) -> TrainedModel on `mesh` (default: all devices)."""
    mesh = mesh if mesh is not None else sharding.make_mesh()
    graphdef, params = nnx.split(model, nnx.Param)
    params = jax.device_put(params.to_pure_dict(), sharding.replicated(mesh))
    return TrainedModel(graphdef, params, mesh, source, step)


def load_trained(config: Any, source: str) -> TrainedModel:
    """Builds config.model and loads `source` (a trainer workdir / checkpoint, a converted directory or a
    PyTorch file) strictly, every parameter from it, onto the run's mesh and config.sharding's parameter
    shardings (replicated unless FSDP is configured; devias_jax/weights.py)."""
    mesh = sharding.run_mesh(config)
    graphdef, params, report = weights.load_params(config.model, source, mesh, sharding_config=config.sharding,
                                                   seed=config.seed)
    print(f"weights from {source}: {report.summary()}", flush=True)
    return TrainedModel(graphdef, params, mesh, source=os.path.abspath(source), step=checkpoint.step_of(source))


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
    data = config.data
    return annotations.load_list(path, root=data.root, num_actions=config.model.num_actions,
                                 num_scenes=max(int(config.model.num_scenes), 1), scene_source="list",
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
        results = predict_lib.run_predictions(predict, model.params, batches, model.mesh, num_batches,
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
    """The outputs extract_features can name for this model, derived ones ('gap') included (traced on an
    abstract clip, nothing runs)."""
    if not model.outputs:
        size = int(config.model.img_size)
        clips = jax.ShapeDtypeStruct((1, int(config.model.num_frames), size, size, 3), np.float32)
        shapes = jax.eval_shape(
            lambda params, x: predict_lib.with_derived(nnx.merge(model.graphdef, params)(x, train=False)),
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


class GalleryAndQueries:
    """The features the k-NN and retrieval evaluators score: `names` over config.analysis's train list
    (the gallery) and test list (the queries), with one predict function made here and reused by every
    extract(params). Cached in <workdir>/eval/features (config.analysis.cache_features) when `source`
    names the checkpoint the params come from; never without one (e.g. during training)."""

    def __init__(self, config: Any, graphdef: nnx.GraphDef, mesh: Any, workdir: str, names: Sequence[str], *,
                 source: str = ""):
        self.config, self.names = config, tuple(names)
        self.lists = analysis_lists(config)
        self.model = TrainedModel(graphdef, None, mesh, source=source)
        self.model.predict_fn(sorted(self.names))  # the one predict function every extract reuses
        use_cache = config.analysis.cache_features and source
        self.cache_dir = os.path.join(workdir, "eval", "features") if use_cache else None

    def extract(self, params: Any, step: int | None = None) -> tuple[dict, dict, dict[str, Any]]:
        """(gallery features, query features, the result's head: method, checkpoint, step, lists)."""
        model = dataclasses.replace(self.model, params=params, step=step)  # shares the predict functions
        train = cached_features(self.config, model, self.lists["train"], self.names, self.cache_dir)
        test = cached_features(self.config, model, self.lists["test"], self.names, self.cache_dir)
        return train, test, list_meta(self.config, self.lists, model)

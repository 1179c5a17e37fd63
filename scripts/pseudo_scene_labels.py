"""Pseudo scene labels (REFERENCE §8-§9): a frozen scene teacher over a video list with the test views
(softmax averaged over temporal x spatial views) -> the list with a scene column (the argmax) and the
soft scores.

  python -m scripts.pseudo_scene_labels --config=configs/places365_scene.py \
      --checkpoint=runs/places365_scene --list=/datasets/ucf101/val.txt \
      --output=/datasets/ucf101/val_scene.txt

--config: the teacher's recipe (its `model` when that is a scene_vit, else the recipe's
config.loss.teacher, e.g. configs/ucf101.py); --config.data.* sets the views, stride and decoding.
--checkpoint: a trainer workdir of configs/places365_scene.py, a converted directory or the authors'
PyTorch file (default: config.loss.teacher.checkpoint). List paths resolve under --root (default: the
list's directory). Output: 'path action scene' lines in the list's order (an existing scene column is
replaced; -1 for a video that could not be decoded) and <output>.npz with `probs` (N, C) float32 aligned
with the rows (NaN rows for undecodable videos), `scene` (N,), `valid` (N,), `paths` and `lines`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

UNKNOWN_ACTIONS = 2 ** 31 - 1  # the action column is copied, not checked against a class count


def teacher_run_config(config: Any) -> Any:
    """An unlocked copy of `config` whose `model` is the teacher (config.model if it is a scene_vit,
    else config.loss.teacher) and whose data section reads videos."""
    import ml_collections

    run = ml_collections.ConfigDict(config.to_dict())
    if run.model.name != "scene_vit":
        if "loss" not in run or "teacher" not in run.loss:
            raise ValueError(f"config.model.name={run.model.name!r} is not a scene model and the config has no "
                             "loss.teacher; pass the teacher's recipe (configs/places365_scene.py)")
        run.model = ml_collections.ConfigDict(run.loss.teacher.to_dict())
    if run.model.name != "scene_vit":
        raise ValueError(f"the teacher config's model is {run.model.name!r}; expected a scene_vit")
    run.data.source = "videos"
    return run


def _batch_size(requested: int, devices: int) -> int:
    if requested <= 0:
        return devices * max(1, -(-8 // devices))  # at least 8 videos, one or more per device
    if requested % devices:
        raise ValueError(f"--batch_size={requested} is not a multiple of the {devices} devices")
    return requested


def pseudo_label(config: Any, checkpoint: str, list_path: str, output: str, *, root: str | None = None,
                 scores_path: str | None = None, batch_size: int = 0, progress: bool = True) -> dict[str, Any]:
    """Runs the teacher over `list_path`, writes `output` and the scores; returns a summary."""
    import jax
    from tqdm import tqdm

    from devias_jax import sharding
    from devias_jax.data import annotations, sources, streams
    from devias_jax.predict import make_predict_fn, run_predictions
    from devias_jax.weights import load_params

    run = teacher_run_config(config)
    checkpoint = checkpoint or run.get("loss", {}).get("teacher", {}).get("checkpoint", "")
    if not checkpoint:
        raise ValueError("no teacher checkpoint: pass --checkpoint (a trainer workdir, a converted directory or "
                         "a PyTorch file) or set config.loss.teacher.checkpoint")
    root = os.path.dirname(os.path.abspath(list_path)) if root is None else root
    scores_path = scores_path or os.path.splitext(output)[0] + ".npz"
    if "distributed" in run:
        sharding.initialize_distributed(run.distributed)
    devices = jax.device_count()
    mesh = sharding.make_mesh(1, num_devices=0)

    ann = annotations.load_list(list_path, root=root, num_actions=UNKNOWN_ACTIONS, scene_source="none",
                                list_format=run.data.list_format, video_ext=run.data.video_ext,
                                check_files=run.data.check_files)
    if ann.is_frames.any():
        raise annotations.AnnotationError(f"{list_path}:{int(ann.lines[ann.is_frames][0])}: frame-folder lines "
                                          "('frame_dir num_frames label') have no room for a scene column")

    graphdef, params, report = load_params(run.model, checkpoint, mesh, seed=run.seed)
    if jax.process_index() == 0:
        print(f"scene teacher {checkpoint}: {report.summary()}", flush=True)

    batch = _batch_size(batch_size, devices)
    with streams.EvalStream(run, sources.video_source(run, ann), batch_size=batch // jax.process_count(),
                            process_index=jax.process_index(), process_count=jax.process_count()) as stream:
        batches = tqdm(stream, total=len(stream), unit="batch", desc="pseudo scene labels",
                       disable=not progress or jax.process_index() != 0, file=sys.stderr)
        results = run_predictions(make_predict_fn(graphdef), params, batches, mesh, len(stream),
                                  timeout_s=run.data.batch_timeout_s, describe_stuck=stream.describe_stuck)
        undecodable = sorted(stream.failures.bad_files())

    size = len(ann)
    num_classes = results["scene_probs"].shape[-1]
    probs = np.full((size, num_classes), np.nan, np.float32)
    probs[results["index"]] = results["scene_probs"]
    valid = np.zeros(size, bool)
    valid[results["index"]] = True
    scene = np.where(valid, np.argmax(np.nan_to_num(probs, nan=-1.0), axis=-1), -1).astype(np.int32)
    summary = {"videos": size, "labelled": int(valid.sum()), "undecodable": undecodable,
               "output": output, "scores": scores_path, "classes": int(num_classes)}
    if jax.process_index() != 0:
        return summary

    with open(list_path, encoding="utf-8") as handle:
        raw = handle.read().splitlines()
    paths = []
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output + ".tmp", "w", encoding="utf-8") as handle:
        for row in range(size):
            fields = raw[int(ann.lines[row]) - 1].split()
            paths.append(fields[0])
            handle.write(f"{fields[0]} {fields[1]} {int(scene[row])}\n")
    os.replace(output + ".tmp", output)
    np.savez(scores_path, probs=probs, scene=scene, valid=valid, paths=np.asarray(paths),
             lines=ann.lines.astype(np.int32))
    print(f"{summary['labelled']}/{size} videos labelled -> {output} (scores: {scores_path})", flush=True)
    if summary["undecodable"]:
        print(f"{len(summary['undecodable'])} undecodable video(s) got scene -1:\n  "
              + "\n  ".join(summary["undecodable"][:20]), flush=True)
    return summary


def main(argv: list[str]) -> None:
    from absl import flags

    from devias_jax.monitoring import quiet_library_logs

    quiet_library_logs()  # library INFO logs only with --verbosity=0
    del argv
    f = flags.FLAGS
    pseudo_label(f.config, f.checkpoint, f.list, f.output or os.path.splitext(f.list)[0] + "_scene.txt",
                 root=f.root, scores_path=f.scores or None, batch_size=f.batch_size, progress=True)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", "configs/places365_scene.py",
                                    "the teacher's recipe (with :args), e.g. configs/places365_scene.py")
    flags.DEFINE_string("checkpoint", "", "teacher weights: trainer workdir, converted directory or PyTorch file "
                        "(default: config.loss.teacher.checkpoint)")
    flags.DEFINE_string("list", None, "video list to label ('path action' or 'path action scene' lines)")
    flags.DEFINE_string("root", None, "directory the list's paths are relative to (default: the list's directory)")
    flags.DEFINE_string("output", "", "list to write (default: <list>_scene.txt)")
    flags.DEFINE_string("scores", "", "soft scores .npz (default: <output>.npz)")
    flags.DEFINE_integer("batch_size", 0, "videos per batch, a multiple of the device count (0: at least 8)")
    flags.mark_flags_as_required(["list"])
    app.run(main)

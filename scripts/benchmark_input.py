"""Training input throughput: the tf.data pipeline versus a plain per-clip decord loop.

  python -m scripts.benchmark_input                       # generates 320x240 H.264 clips in a temp dir
  python -m scripts.benchmark_input --videos=DIR --clips=256 --cores=0,1

Both sides read the same files on the same cores (the process is pinned to --cores) and produce
16 x 224 x 224 training clips with the full augmentation: the REFERENCE §7 temporal sampling, random
resized crop (area 0.08-1), horizontal flip and RandAugment m7-n4 (same op for every frame).

- plain: the VideoMAE-style loop: per clip open a decord VideoReader (1 thread), seek(0), get_batch,
  PIL RandAugment on every full-size frame, float normalisation, torch random resized crop
  (interpolate, bilinear), flip; `--cores` worker processes (a DataLoader with num_workers = cores).
- tf.data: devias_jax.data.streams.train_batches (parallel decode, crop before RandAugment, uint8 out,
  normalisation left to the accelerator).
Reports clips/s and clips/s per core for each; the target is tf.data >= 1.5x plain per core.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import tempfile
import time

import numpy as np
from absl import app, flags

flags.DEFINE_string("videos", "", "directory with train.txt ('path action scene'); empty = generate 320x240 clips")
flags.DEFINE_integer("num_videos", 24, "clips to generate when --videos is empty")
flags.DEFINE_integer("frames", 150, "frames per generated video (UCF-101 averages ~186)")
flags.DEFINE_integer("clips", 128, "training clips to time on each side (after warm-up)")
flags.DEFINE_integer("batch", 8, "tf.data batch size")
flags.DEFINE_integer("rounds", 2, "alternating rounds; the best of each side is reported")
flags.DEFINE_list("cores", [], "CPU ids to pin to; empty = all this process may use")
flags.DEFINE_string("json", "", "also write the numbers to this file")
FLAGS = flags.FLAGS

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


# ------------------------------------------------------------------------------------------ plain loop

def _pil_rand_augment(frames, rng: random.Random, magnitude=7.0, num_layers=4, std=0.5, prob=0.5):
    """timm-style RandAugment with PIL on a list of frames, one op choice per clip."""
    from PIL import Image, ImageEnhance, ImageOps

    fill = (124, 116, 104)

    def affine(img, matrix):
        return img.transform(img.size, Image.AFFINE, matrix, resample=Image.BICUBIC, fillcolor=fill)

    ops = ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
           "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY"]
    for name in rng.choices(ops, k=num_layers):
        if rng.random() > prob:
            continue
        level = min(max(rng.gauss(magnitude, std), 0.0), 10.0) / 10.0
        sign = -1 if rng.random() < 0.5 else 1
        w, h = frames[0].size
        fns = {
            "AutoContrast": lambda im: ImageOps.autocontrast(im),
            "Equalize": lambda im: ImageOps.equalize(im),
            "Invert": lambda im: ImageOps.invert(im),
            "Rotate": lambda im: im.rotate(sign * level * 30, resample=Image.BICUBIC, fillcolor=fill),
            "Posterize": lambda im: ImageOps.posterize(im, 4 - int(level * 4)),
            "Solarize": lambda im: ImageOps.solarize(im, 256 - int(level * 256)),
            "SolarizeAdd": lambda im: im.point(lambda p: min(255, p + int(level * 110)) if p < 128 else p),
            "Color": lambda im: ImageEnhance.Color(im).enhance(1 + sign * level * 0.9),
            "Contrast": lambda im: ImageEnhance.Contrast(im).enhance(1 + sign * level * 0.9),
            "Brightness": lambda im: ImageEnhance.Brightness(im).enhance(1 + sign * level * 0.9),
            "Sharpness": lambda im: ImageEnhance.Sharpness(im).enhance(1 + sign * level * 0.9),
            "ShearX": lambda im: affine(im, (1, sign * level * 0.3, 0, 0, 1, 0)),
            "ShearY": lambda im: affine(im, (1, 0, 0, sign * level * 0.3, 1, 0)),
            "TranslateX": lambda im: affine(im, (1, 0, sign * level * 0.45 * w, 0, 1, 0)),
            "TranslateY": lambda im: affine(im, (1, 0, 0, 0, 1, sign * level * 0.45 * h)),
        }
        frames = [fns[name](frame) for frame in frames]
    return frames


def _plain_clip(path: str, seed: int):
    """One training clip the way VideoMAE-style loaders make it."""
    import decord
    import torch
    from PIL import Image

    from devias_jax.data import decode

    rng = random.Random(seed)
    reader = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
    index = decode.train_indices(len(reader), 16, 4, np.random.default_rng(seed))
    reader.seek(0)
    buffer = reader.get_batch(index.tolist()).asnumpy()
    frames = _pil_rand_augment([Image.fromarray(f) for f in buffer], rng)
    clip = torch.from_numpy(np.stack([np.asarray(f) for f in frames])).float() / 255.0  # (T, H, W, C)
    clip = (clip - torch.from_numpy(MEAN)) / torch.from_numpy(STD)
    clip = clip.permute(0, 3, 1, 2)  # (T, C, H, W)
    height, width = clip.shape[-2:]
    for _ in range(10):  # torchvision RandomResizedCrop parameters
        area = height * width * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            break
    else:
        h, w, top, left = height, width, 0, 0
    clip = torch.nn.functional.interpolate(clip[:, :, top:top + h, left:left + w], size=(224, 224),
                                           mode="bilinear", align_corners=False)
    if rng.random() < 0.5:
        clip = clip.flip(-1)
    return clip.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W) float32, as VideoMAE returns it


def _plain_worker(args):
    paths, seeds, cores = args
    os.sched_setaffinity(0, cores)
    import torch

    torch.set_num_threads(1)  # a DataLoader worker
    _plain_clip(paths[0], 10 ** 6)  # warm-up (imports)
    start = time.perf_counter()
    for path, seed in zip(paths, seeds):
        _plain_clip(path, seed)
    return time.perf_counter() - start


def plain_throughput(paths: list[str], clips: int, cores: list[int]) -> float:
    workers = len(cores)
    order = [paths[i % len(paths)] for i in range(clips)]
    jobs = [(order[w::workers], list(range(w, clips, workers)), cores) for w in range(workers)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        seconds = pool.map(_plain_worker, jobs)  # each worker times its loop after a warm-up clip
    return clips / max(seconds)


# ------------------------------------------------------------------------------------------ tf.data

def pipeline_throughput(root: str, clips: int, batch: int, cores: list[int]) -> float:
    import ml_collections

    from configs import defaults
    from devias_jax.data import streams

    config = ml_collections.ConfigDict({"model": defaults.model_config("B"), "data": defaults.data_config(),
                                        "augment": defaults.augment_config()})
    config.data.update(root=root, train_list="train.txt", scene_source="none", decode_workers=len(cores),
                       num_actions=100)
    with streams.train_batches(config, global_batch_size=batch, process_index=0, process_count=1,
                               seed=0) as stream:
        for _ in range(2):  # warm-up: TensorFlow start, graph building, first decodes
            next(stream)
        steps = max(1, clips // batch)
        start = time.perf_counter()
        for _ in range(steps):
            batch_out = next(stream)
        wall = time.perf_counter() - start
    assert batch_out["clips"].shape == (batch, 16, 224, 224, 3)
    return steps * batch / wall


def main(argv):
    del argv
    cores = [int(c) for c in FLAGS.cores] or sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores)
    root = FLAGS.videos
    if not root:
        from devias_jax.data import synthetic

        root = tempfile.mkdtemp(prefix="devias_bench_")
        spec = synthetic.Spec(num_actions=6, num_scenes=6, height=240, width=320, frames=FLAGS.frames,
                              train_per_action=math.ceil(FLAGS.num_videos / 6), seed=0)
        start = time.perf_counter()
        synthetic.generate(root, spec, workers=len(cores), splits=("train",))
        print(f"generated {6 * spec.train_per_action} videos of {FLAGS.frames} frames 320x240 in "
              f"{time.perf_counter() - start:.1f} s under {root}")
    with open(os.path.join(root, "train.txt")) as handle:
        paths = [os.path.join(root, line.split()[0]) for line in handle if line.strip()]
    plain, fast = 0.0, 0.0
    for round_ in range(FLAGS.rounds):  # alternate, keep the best of each: other load only slows things
        plain = max(plain, plain_throughput(paths, FLAGS.clips, cores))
        fast = max(fast, pipeline_throughput(root, FLAGS.clips, FLAGS.batch, cores))
        print(f"round {round_ + 1}: plain {plain:.2f} clips/s, tf.data {fast:.2f} clips/s (best so far)")
    result = {"cores": len(cores), "clips": FLAGS.clips, "rounds": FLAGS.rounds, "plain_clips_per_s": round(plain, 2),
              "plain_clips_per_s_per_core": round(plain / len(cores), 2),
              "tfdata_clips_per_s": round(fast, 2), "tfdata_clips_per_s_per_core": round(fast / len(cores), 2),
              "speedup": round(fast / plain, 2)}
    print(f"plain per-clip decord loop : {plain:6.2f} clips/s ({plain / len(cores):.2f} per core)")
    print(f"tf.data pipeline           : {fast:6.2f} clips/s ({fast / len(cores):.2f} per core)")
    print(f"speed-up                   : {fast / plain:.2f}x on {len(cores)} core(s)  (target >= 1.5x)")
    if FLAGS.json:
        with open(FLAGS.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    app.run(main)

"""A procedural action/scene video dataset: real H.264 .mp4 files, lists and true actor masks.

The action is a motion pattern of one foreground actor whose appearance (colour, texture, shape,
size, speed, start position) is random; the scene is the static background: a texture class with its
own layout and colour palette, randomly jittered per video. In the training split each action sits in
its "home" scene (action a -> scene a mod S) with probability `correlation` (0.9 by default) and
otherwise in one of the other S - 1 scenes, uniformly, so the scene is a strong shortcut for the action
(correlation = 1/S makes action and scene independent; 0 never uses the home scene, an
anti-correlation); the evaluation splits break it:

- val_seen    actions in their home scene (seen combinations)
- val_unseen  actions in any other scene (unseen combinations)
- scene_only  backgrounds without an actor (action label -1)

Lists are 'videos/<split>/<name>.mp4 action scene' relative to the output directory; true actor masks
(bool (T, H, W), compressed .npz) sit in masks/<split>/<name>.npz; dataset.json records the spec and
class names. Everything is a pure function of the seed: the frames are rendered from per-clip random
generators and the encoder is byte-deterministic (write_mp4).
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

ACTIONS = ("sway", "bounce", "circle", "diagonal", "pulse", "spin", "figure_eight", "shake",
           # monotonic motions (one direction over the whole clip; 'rise'/'fall'/'grow'/'shrink' are
           # unchanged by a horizontal flip, so flip augmentation keeps their labels true)
           "rise", "fall", "grow", "shrink")
SCENES = ("stripes", "columns", "checker", "rings", "diagonals", "horizon", "dots", "waves")
SPLITS = ("train", "val_seen", "val_unseen", "scene_only")
# How the background moves. 'static': a still camera. 'drift': the background texture scrolls steadily in
# a random direction (water, clouds, an escalator) while the actor's path is unchanged. 'pan': the camera
# pans steadily, so background and actor both shift. 'shake': a hand-held camera, background and actor
# jitter together by a random offset every frame.
BACKGROUND_MOTIONS = ("static", "drift", "pan", "shake")
# Actor outlines; 'mixed' draws one of the others per clip.
ACTOR_SHAPES = ("ellipse", "box", "star", "mixed")
# Scene hues around the colour circle. 'golden' (the default, so that datasets and the numbers measured on
# them regenerate unchanged): steps of 0.618 (+0.13 per pattern cycle); with six scenes it puts scenes 0
# and 5 0.09 apart in hue against +-0.03 jitter, which flat scenes (clutter 0) cannot resolve. 'even':
# scene / num_scenes, what the demo uses (docs/experiments/demo_recipe.md, "The scene palette").
SCENE_HUES = ("golden", "even")


@dataclasses.dataclass(frozen=True)
class Spec:
    num_actions: int = 6
    actions: tuple[str, ...] = ()  # motion names from ACTIONS, one per action class; () = ACTIONS[:num_actions]
    num_scenes: int = 6
    height: int = 64
    width: int = 64
    frames: int = 40
    fps: int = 25
    train_per_action: int = 40
    val_per_action: int = 10  # each of val_seen and val_unseen
    scene_only_per_scene: int = 10
    correlation: float = 0.9  # probability that a training clip is in its action's home scene; otherwise
    #                           it is in one of the other scenes, uniformly. 1/num_scenes = action and scene
    #                           independent; 0 = never the home scene (anti-correlated); 1 = always
    motion: float = 0.1  # motion amplitude as a fraction of the frame: small, in-place motions keep the
    #                      actor's motion trail (what FAME segments) close to the actor itself
    actor_size: float = 0.2  # actor radius as a fraction of the frame
    clutter: float = 1.0  # background pattern contrast and actor stripe contrast (0 = flat colours): less
    #                       clutter makes the motion easier to learn for a small model trained from scratch
    noise: float = 2.0  # per-frame pixel noise (uint8 units)
    background_motion: str = "static"  # one of BACKGROUND_MOTIONS
    background_speed: float = 0.01  # 'drift' / 'pan': fraction of the frame per frame (0.01 = 0.64 px per
    #                                 frame at 64 px, ~25 px over a 40-frame clip); 'shake': the jitter's std
    actor_shape: str = "ellipse"  # one of ACTOR_SHAPES
    scene_hues: str = "golden"  # one of SCENE_HUES
    crf: int = 18
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.num_actions <= len(ACTIONS):
            raise ValueError(f"num_actions={self.num_actions}; expected 1..{len(ACTIONS)}")
        if self.actions:
            unknown = [name for name in self.actions if name not in ACTIONS]
            if unknown or len(self.actions) != self.num_actions or len(set(self.actions)) != len(self.actions):
                raise ValueError(f"actions={self.actions}: expected {self.num_actions} distinct names from {ACTIONS}")
        if not 2 <= self.num_scenes <= 4 * len(SCENES):
            raise ValueError(f"num_scenes={self.num_scenes}; expected 2..{4 * len(SCENES)}")
        if self.height % 2 or self.width % 2 or min(self.height, self.width) < 16:
            raise ValueError(f"size {self.height}x{self.width}: H.264 needs even sizes >= 16")
        if not 0.0 <= self.clutter <= 1.0:
            raise ValueError(f"clutter={self.clutter}; expected a value in [0, 1]")
        if not 0.0 <= self.correlation <= 1.0:
            raise ValueError(f"correlation={self.correlation}; expected a value in [0, 1]")
        if self.background_motion not in BACKGROUND_MOTIONS:
            raise ValueError(f"background_motion={self.background_motion!r}; expected one of {BACKGROUND_MOTIONS}")
        if not 0.0 <= self.background_speed <= 0.1:
            raise ValueError(f"background_speed={self.background_speed}; expected a fraction of the frame in [0, 0.1]")
        if self.actor_shape not in ACTOR_SHAPES:
            raise ValueError(f"actor_shape={self.actor_shape!r}; expected one of {ACTOR_SHAPES}")
        if self.scene_hues not in SCENE_HUES:
            raise ValueError(f"scene_hues={self.scene_hues!r}; expected one of {SCENE_HUES}")

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self.actions) or ACTIONS[:self.num_actions]

    def home_scene(self, action: int) -> int:
        return action % self.num_scenes


def _colour(hue: float, sat: float, val: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(hue % 1.0, sat, val), np.float32)


def render_background(spec: Spec, scene: int, rng: np.random.Generator, pad: int = 0) -> np.ndarray:
    """float32 (H + 2 pad, W + 2 pad, 3) in [0, 1] for scene class `scene` (pattern + palette, jittered
    per video); `pad` extends the same picture beyond the frame (for a moving camera or texture)."""
    height, width = spec.height + 2 * pad, spec.width + 2 * pad
    pattern = SCENES[scene % len(SCENES)]
    # frame coordinates in [0, 1] (beyond it inside the padding)
    v, u = np.meshgrid((np.arange(height, dtype=np.float32) - pad) / np.float32(spec.height - 1),
                       (np.arange(width, dtype=np.float32) - pad) / np.float32(spec.width - 1), indexing="ij")
    aspect = spec.width / spec.height
    if spec.scene_hues == "even":  # at clutter 0 the palette is all that tells scenes apart
        base_hue = scene / spec.num_scenes
    else:  # 'golden' (SCENE_HUES): scenes beyond len(SCENES) reuse patterns with shifted palettes
        base_hue = (scene * 0.61803) % 1.0 + (scene // len(SCENES)) * 0.13
    hue_a = base_hue + rng.uniform(-0.03, 0.03)
    hue_b = hue_a + 0.5 + rng.uniform(-0.05, 0.05)
    colour_a = _colour(hue_a, rng.uniform(0.35, 0.6), rng.uniform(0.55, 0.85))
    colour_b = _colour(hue_b, rng.uniform(0.25, 0.5), rng.uniform(0.3, 0.55))
    freq = rng.uniform(3.0, 4.5)
    phase = rng.uniform(0, 1)
    if pattern == "stripes":
        level = np.sin(2 * np.pi * (freq * v + phase))
    elif pattern == "columns":
        level = np.sin(2 * np.pi * (freq * u * aspect + phase))
    elif pattern == "checker":
        level = np.sin(2 * np.pi * (freq * v + phase)) * np.sin(2 * np.pi * (freq * u * aspect + phase))
    elif pattern == "rings":
        cy, cx = rng.uniform(0.3, 0.7, 2)
        level = np.sin(2 * np.pi * (freq * np.hypot(v - cy, (u - cx) * aspect) + phase))
    elif pattern == "diagonals":
        level = np.sin(2 * np.pi * (freq * 0.7 * (v + u * aspect) + phase))
    elif pattern == "horizon":
        horizon = rng.uniform(0.4, 0.65) + 0.05 * np.sin(2 * np.pi * (1.5 * u + phase))
        level = np.where(v < horizon, 1.0 - 2.0 * v / horizon, -1.0 + 0.3 * np.sin(12 * np.pi * v))
    elif pattern == "dots":
        cell = freq * 1.4
        dy = np.mod(v * cell + phase, 1.0) - 0.5
        dx = np.mod(u * aspect * cell + phase, 1.0) - 0.5
        level = np.where(np.hypot(dx, dy) < 0.28, 1.0, -1.0)
    else:  # waves
        level = np.sin(2 * np.pi * (freq * v + 0.15 * np.sin(2 * np.pi * (2 * u * aspect + phase))))
    weight = (spec.clutter * np.clip(level, -1, 1)[..., None] + 1.0) / 2.0
    image = colour_a * weight + colour_b * (1.0 - weight)
    texture = rng.normal(0.0, 0.025, (height, width, 1)).astype(np.float32)
    return np.clip(image + texture, 0.0, 1.0)


def _trajectory(action: str, spec: Spec, rng: np.random.Generator):
    """Per-frame centre (y, x) in pixels, scale and rotation for one actor motion pattern."""
    frames = np.arange(spec.frames, dtype=np.float32)
    size = min(spec.height, spec.width)
    # One slow period (28-40 frames) per clip, about one demo training window (8 frames at stride 4):
    # stride-4 sampling traces the path smoothly (faster periods alias into patterns a small model
    # cannot tell apart).
    period = rng.uniform(28.0, 40.0)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * frames / period + phase)
    amp = rng.uniform(0.8, 1.2) * spec.motion * size
    direction = rng.choice([-1.0, 1.0])
    ones = np.ones_like(frames)
    y, x = np.zeros_like(frames), np.zeros_like(frames)
    scale, angle = ones.copy(), np.full_like(frames, rng.uniform(0, np.pi))
    if action == "sway":
        x = amp * wave
    elif action == "bounce":
        y = -1.3 * amp * np.abs(np.sin(np.pi * frames / period + phase)) + 0.65 * amp
    elif action == "circle":
        x = amp * 0.8 * np.cos(direction * (2 * np.pi * frames / period + phase))
        y = amp * 0.8 * np.sin(direction * (2 * np.pi * frames / period + phase))
    elif action == "diagonal":
        x, y = direction * amp * 0.75 * wave, amp * 0.75 * wave
    elif action == "pulse":
        scale = 1.0 + 0.3 * wave
    elif action == "spin":  # an ellipse has a 180-degree symmetry: spin slowly enough for stride 4
        angle = angle + direction * 2 * np.pi * frames / (2.2 * period)
    elif action == "figure_eight":
        x = amp * np.sin(2 * np.pi * frames / (1.5 * period) + phase)
        y = amp * 0.5 * np.sin(4 * np.pi * frames / (1.5 * period) + 2 * phase)
    elif action in ("rise", "fall"):  # steady drift over the whole clip, 2 x amp in total
        y = (1.0 if action == "fall" else -1.0) * amp * (2.0 * frames / max(spec.frames - 1, 1) - 1.0)
    elif action in ("grow", "shrink"):
        ramp = 2.0 * frames / max(spec.frames - 1, 1) - 1.0
        scale = 1.0 + 0.3 * (ramp if action == "grow" else -ramp)
    else:  # shake: small fast jitter in both axes
        x = 0.3 * amp * np.sign(np.sin(2 * np.pi * frames / 4.0 + phase))
        y = 0.3 * amp * np.sign(np.cos(2 * np.pi * frames / 6.0 + phase))
    margin = 1.3 * spec.actor_size * size + np.abs(np.stack([y, x])).max(axis=1)
    cy = rng.uniform(min(margin[0], spec.height / 2), max(spec.height - margin[0], spec.height / 2))
    cx = rng.uniform(min(margin[1], spec.width / 2), max(spec.width - margin[1], spec.width / 2))
    return cy + y, cx + x, scale, angle


def _camera_path(spec: Spec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame offset (dy, dx) in pixels of the view into the background canvas."""
    frames = np.arange(spec.frames, dtype=np.float32)
    step = spec.background_speed * min(spec.height, spec.width)
    if spec.background_motion == "shake":  # independent jitter every frame
        dy, dx = rng.normal(0.0, step, (2, spec.frames)).astype(np.float32)
        return dy, dx
    angle = rng.uniform(0, 2 * np.pi)
    speed = step * rng.uniform(0.8, 1.2)
    travel = speed * (frames - (spec.frames - 1) / 2)  # centred: the padding is used symmetrically
    return travel * np.float32(np.sin(angle)), travel * np.float32(np.cos(angle))


def _view(canvas: np.ndarray, dy: float, dx: float, height: int, width: int, pad: int) -> np.ndarray:
    """(height, width) window of `canvas` offset by (dy, dx) pixels from its centre, bilinear."""
    y, x = pad + dy, pad + dx
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = np.float32(y - y0), np.float32(x - x0)
    window = canvas[y0:y0 + height + 1, x0:x0 + width + 1]
    top = window[:height, :width] * (1 - fx) + window[:height, 1:width + 1] * fx
    bottom = window[1:height + 1, :width] * (1 - fx) + window[1:height + 1, 1:width + 1] * fx
    return top * (1 - fy) + bottom * fy


def _outline(shape: str, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Shape function of normalised actor coordinates: < 1 inside, 1 on the outline, ~ r^2 outside."""
    if shape == "box":  # a superellipse with exponent 6: a box with rounded corners
        return (np.abs(along) ** 6 + np.abs(across) ** 6) ** (1 / 3)
    if shape == "star":  # five points: the radius varies by +-35% around the centre
        reach = 1.0 + 0.35 * np.cos(5 * np.arctan2(across, along))
        return (along ** 2 + across ** 2) / reach ** 2
    return along ** 2 + across ** 2


def actor_shape(spec: Spec, rng: np.random.Generator) -> str:
    """The clip's outline: spec.actor_shape, or for 'mixed' one of the others drawn from `rng` (the only
    draw that depends on the shape option, so the other shapes' clips keep their random streams)."""
    if spec.actor_shape == "mixed":
        return ACTOR_SHAPES[int(rng.integers(0, len(ACTOR_SHAPES) - 1))]
    return spec.actor_shape


def render_clip(spec: Spec, action: int, scene: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """One clip: (frames uint8 (T, H, W, 3), actor mask bool (T, H, W)); action -1 = no actor."""
    moving = spec.background_motion != "static"
    if moving:
        # padding the camera / texture path never leaves (shake: 4 std)
        reach = spec.background_speed * min(spec.height, spec.width) * (
            4.0 if spec.background_motion == "shake" else 1.2 * (spec.frames - 1) / 2)
        pad = int(np.ceil(reach)) + 2
        canvas = render_background(spec, scene, rng, pad)
        camera_y, camera_x = _camera_path(spec, rng)
        camera_y, camera_x = np.clip(camera_y, -pad + 1, pad - 1), np.clip(camera_x, -pad + 1, pad - 1)
        frames = np.stack([_view(canvas, dy, dx, spec.height, spec.width, pad) for dy, dx in zip(camera_y, camera_x)])
    else:
        frames = np.repeat(render_background(spec, scene, rng)[None], spec.frames, axis=0)
    mask = np.zeros((spec.frames, spec.height, spec.width), bool)
    if action >= 0:
        name = spec.action_names[action]
        size = min(spec.height, spec.width)
        radius = rng.uniform(0.85, 1.15) * spec.actor_size * size
        elongation = rng.uniform(1.9, 2.4) if name == "spin" else rng.uniform(1.0, 1.6)
        semi_a, semi_b = radius * math.sqrt(elongation), radius / math.sqrt(elongation)
        hue = rng.uniform(0, 1)
        body = _colour(hue, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
        trim = _colour(hue + rng.uniform(0.3, 0.7), rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.5))
        stripe_freq = rng.uniform(0.25, 0.45)
        shape = actor_shape(spec, rng)
        path_y, path_x, scales, angles = _trajectory(name, spec, rng)
        if spec.background_motion in ("pan", "shake"):  # the camera moves: the actor shifts with the scene
            path_y, path_x = path_y - camera_y, path_x - camera_x
        ys, xs = np.mgrid[0:spec.height, 0:spec.width].astype(np.float32)
        for t, (cy, cx, scale, angle) in enumerate(zip(path_y, path_x, scales, angles)):
            dy, dx = ys - cy, xs - cx
            along = dx * math.cos(angle) + dy * math.sin(angle)
            across = -dx * math.sin(angle) + dy * math.cos(angle)
            inside = _outline(shape, along / (semi_a * scale), across / (semi_b * scale))
            coverage = np.clip((1.0 - inside) * radius * scale / 2.0 + 0.5, 0.0, 1.0)  # ~1px soft edge
            stripes = (np.sin(along * stripe_freq * 2) > 0.3)[..., None]
            colour = np.where(stripes, body + spec.clutter * (trim - body), body)
            frames[t] = frames[t] * (1.0 - coverage[..., None]) + colour * coverage[..., None]
            mask[t] = coverage > 0.5
    noise = rng.normal(0.0, spec.noise / 255.0, frames.shape).astype(np.float32)
    frames = np.clip(np.round((frames + noise) * 255.0), 0, 255).astype(np.uint8)
    return frames, mask


def write_mp4(path: str, frames: np.ndarray, fps: int = 25, crf: int = 18, codec: str = "libx264") -> None:
    """uint8 (T, H, W, 3) -> H.264 (yuv420p) .mp4 via PyAV (index first, 'faststart');
    byte-deterministic: the same frames give the same file on every call (see the x264 options)."""
    import av  # on use: only writing .mp4 files needs PyAV

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with av.open(path, "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        if codec == "libx264":
            # One thread: x264's output depends on its thread count (which defaults to the CPU count).
            # mbtree=0: on CPUs with AVX-512, x264's macroblock-tree rate control reads uninitialised
            # heap memory on small frames (seen at 32x32 and 64x64), so the same frames encoded twice -
            # in another process, or after other allocations in the same one - gave a different stream
            # (2,654 vs 2,659 bytes for one 32x32 clip; with MALLOC_PERTURB_ set, the bytes follow the
            # fill value). mbtree=0, or x264 limited to AVX2 (asm=...), removes the dependence; valgrind,
            # which hides AVX-512, sees no bad read. Without mbtree the file is also the same whether
            # x264 uses AVX-512 or only AVX2. The frames themselves are a pure function of the seed.
            options["x264-params"] = "mbtree=0"
        stream.options = options
        stream.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def save_actor_mask(path: str, mask: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, mask=mask.astype(bool))


def load_actor_mask(path: str) -> np.ndarray:
    """bool (T, H, W) true actor mask written by the generator."""
    with np.load(path) as data:
        return data["mask"]


def plan(spec: Spec) -> dict[str, list[tuple[int, int]]]:
    """(action, scene) of every clip in every split, deterministic in spec.seed."""
    rng = np.random.default_rng([spec.seed, 7919])
    scenes = np.arange(spec.num_scenes)
    splits: dict[str, list[tuple[int, int]]] = {name: [] for name in SPLITS}
    for action in range(spec.num_actions):
        home = spec.home_scene(action)
        others = scenes[scenes != home]
        for _ in range(spec.train_per_action):
            scene = home if rng.uniform() < spec.correlation else int(rng.choice(others))
            splits["train"].append((action, scene))
        splits["val_seen"] += [(action, home)] * spec.val_per_action
        splits["val_unseen"] += [(action, int(others[i % len(others)])) for i in range(spec.val_per_action)]
    for scene in range(spec.num_scenes):
        splits["scene_only"] += [(-1, scene)] * spec.scene_only_per_scene
    return splits


def _make_one(job: tuple[Spec, str, int, int, int, str]) -> tuple[str, int]:
    spec, split, number, action, scene, out = job
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), number])
    frames, mask = render_clip(spec, action, scene, rng)
    name = f"{split}_{number:05d}"
    video = os.path.join("videos", split, name + ".mp4")
    write_mp4(os.path.join(out, video), frames, spec.fps, spec.crf)
    if action >= 0:
        save_actor_mask(os.path.join(out, "masks", split, name + ".npz"), mask)
    return f"{video} {action} {scene}", os.path.getsize(os.path.join(out, video))


def generate(out: str, spec: Spec = Spec(), workers: int = 1, splits: tuple[str, ...] = SPLITS,
             progress: bool = False) -> dict[str, Any]:
    """Writes the dataset under `out`; returns (and saves as dataset.json) a summary with list paths."""
    start = time.time()
    os.makedirs(out, exist_ok=True)
    layout = plan(spec)
    jobs = [(spec, split, number, action, scene, out)
            for split in splits for number, (action, scene) in enumerate(layout[split])]
    if workers > 1:
        # spawn, not fork: the caller may already run JAX / TensorFlow threads
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_make_one, jobs, chunksize=8))
    else:
        results = []
        for index, job in enumerate(jobs):
            results.append(_make_one(job))
            if progress and (index + 1) % 50 == 0:
                print(f"  {index + 1}/{len(jobs)} clips", flush=True)
    lines = iter(results)
    lists = {}
    for split in splits:
        path = os.path.join(out, f"{split}.txt")
        with open(path, "w") as handle:
            for _ in layout[split]:
                handle.write(next(lines)[0] + "\n")
        lists[split] = path
    summary = {
        "spec": dataclasses.asdict(spec),
        "actions": list(spec.action_names),
        "scenes": [SCENES[s % len(SCENES)] + (f"_{s // len(SCENES)}" if s >= len(SCENES) else "")
                   for s in range(spec.num_scenes)],
        "home_scene": {name: spec.home_scene(a) for a, name in enumerate(spec.action_names)},
        "counts": {split: len(layout[split]) for split in splits},
        "lists": {split: os.path.basename(path) for split, path in lists.items()},
        "video_bytes": int(sum(size for _, size in results)),
        "seconds": round(time.time() - start, 2),
    }
    with open(os.path.join(out, "dataset.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    return summary


def spec_of_dataset(out: str) -> Spec:
    """The Spec a generated dataset was made with (its dataset.json); a record without `scene_hues`
    predates that option and was made with the golden-ratio hues (not with today's default, should it
    change)."""
    with open(os.path.join(out, "dataset.json")) as handle:
        fields = json.load(handle)["spec"]
    fields.setdefault("scene_hues", "golden")
    return Spec(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})


def train_settings(out: str, spec: Spec = Spec()) -> dict[str, Any]:
    """Dotted config keys and values that train a recipe on a generated dataset (configs/demo.py's lists:
    train.txt, and the suites val_seen.txt (seen), val_unseen.txt and scene_only.txt (unseen))."""
    return {"data.root": out, "data.train_list": "train.txt", "data.scene_source": "list",
            "model.num_actions": spec.num_actions, "model.num_scenes": spec.num_scenes}


def train_command(out: str, spec: Spec = Spec()) -> str:
    """The command line that trains DEVIAS on a generated dataset (printed by the generator)."""
    overrides = " ".join(f"--config.{key}={value}" for key, value in train_settings(out, spec).items())
    return f"python main.py --config=configs/demo.py:method=devias --workdir=runs/synthetic {overrides}"

"""Host-side clip augmentation (REFERENCE §7), reproducible from one seed per clip.

Training clips get: random resized crop (area 0.08-1, aspect 3/4-4/3; torchvision's 10 tries, then a
centre crop) to img_size, horizontal flip (p = 0.5), RandAugment with timm's 'rand-m7-n4-mstd0.5-inc1'
op set and magnitudes (ops drawn with replacement, each applied with p = 0.5 at magnitude
N(7, 0.5) clipped to [0, 10]; the same op and magnitude on every frame, as VideoMAE applies it) and
optional colour jitter. Output is uint8: normalisation happens on the accelerator.

This runs inside the tf.data map's worker threads right after decoding (streams.py), with numpy and
PIL kernels that release the GIL. What makes it cheaper than VideoMAE-style loaders:
1. `plan_clip` draws every random choice with numpy from the clip's seed and folds the crop, the
   resize, the flip and the geometric RandAugment ops (Rotate, ShearX/Y, TranslateX/Y) into ONE
   affine map, so each decoded frame is resampled exactly once, straight to img_size (uint8);
2. the photometric ops then act on img_size frames, not on the full decoded frames.
Differences from VideoMAE: RandAugment acts on the crop, geometric ops are composed before the
photometric ones whatever their drawn order, resampling is bilinear (timm: bicubic), and a plain crop
uses PIL's bilinear resize (antialiased when shrinking). The distribution of ops and magnitudes is timm's.
Evaluation (TensorFlow): short-side resize + square crops along the long side (geometry from decode.py).
Only devias_jax/data/ imports TensorFlow, and it never sees an accelerator (tf_setup.import_tf()).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from devias_jax.data.tf_setup import import_tf

# timm's fill colour for geometric RandAugment ops: the ImageNet mean in uint8 (ours); the VideoMAE
# loader the authors use fills with mid grey (augment.official_fill, set by loss.official_compat).
FILL = (124, 116, 104)
OFFICIAL_FILL = (128, 128, 128)
MAX_LEVEL = 10.0
# timm's _RAND_INCREASING_TRANSFORMS, in its order.
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
            "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
            "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
GEOMETRIC = frozenset({"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"})


# ------------------------------------------------------------------------------------------ planning

def random_resized_crop_box(rng: np.random.Generator, height: int, width: int, area_range=(0.08, 1.0),
                            aspect_range=(3 / 4, 4 / 3), attempts: int = 10) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width): torchvision RandomResizedCrop.get_params semantics."""
    area = height * width
    for _ in range(attempts):
        target = area * rng.uniform(*area_range)
        ratio = math.exp(rng.uniform(math.log(aspect_range[0]), math.log(aspect_range[1])))
        crop_w = int(round(math.sqrt(target * ratio)))
        crop_h = int(round(math.sqrt(target / ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            return int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1)), crop_h, crop_w
    ratio = width / height
    if ratio < aspect_range[0]:
        crop_w, crop_h = width, int(round(width / aspect_range[0]))
    elif ratio > aspect_range[1]:
        crop_h, crop_w = height, int(round(height * aspect_range[1]))
    else:
        crop_h, crop_w = height, width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def _geometric_matrix(name: str, level: float, sign: float, size: int) -> np.ndarray:
    """3x3 map from an op's output coordinates to its input (continuous, pixel centres at +0.5)."""
    matrix = np.eye(3)
    if name == "Rotate":
        angle = math.radians(sign * level * 30.0)
        cos, sin = math.cos(angle), math.sin(angle)
        centre = size / 2.0
        matrix[:2, :2] = [[cos, -sin], [sin, cos]]
        matrix[:2, 2] = [centre - cos * centre + sin * centre, centre - sin * centre - cos * centre]
    elif name == "ShearX":
        matrix[0, 1] = sign * level * 0.3
    elif name == "ShearY":
        matrix[1, 0] = sign * level * 0.3
    elif name == "TranslateXRel":
        matrix[0, 2] = sign * level * 0.45 * size
    elif name == "TranslateYRel":
        matrix[1, 2] = sign * level * 0.45 * size
    return matrix


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """Every random choice for one training clip (see plan_clip)."""

    box: tuple[int, int, int, int]  # (top, left, height, width) of the crop in the decoded frame
    flip: bool
    matrix: np.ndarray | None  # (6,) output -> source affine map (PIL convention) when a geometric op applies
    photometric: tuple[tuple[str, float, float], ...]  # (op name, level in [0, 1], sign), in drawn order
    jitter: tuple[float, float, float] | None  # brightness, contrast, saturation factors
    fill: tuple[int, int, int] = FILL  # colour outside the frame after a geometric op


def plan_clip(rng: np.random.Generator, height: int, width: int, size: int, augment: Any) -> ClipPlan:
    """Draws the crop, the flip, the RandAugment ops and the colour jitter of one clip from `rng`."""
    top, left, crop_h, crop_w = random_resized_crop_box(rng, height, width, tuple(augment.crop_area),
                                                        tuple(augment.crop_aspect))
    flip = bool(augment.flip) and rng.uniform() < 0.5
    # output [0, size) -> crop [left, left + crop_w) x [top, top + crop_h), mirrored when flipped
    matrix = np.array([[crop_w / size, 0.0, left], [0.0, crop_h / size, top], [0.0, 0.0, 1.0]])
    if flip:
        matrix = matrix @ np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    geometric, photometric = False, []
    for _ in range(augment.rand_augment_n):
        name = RAND_OPS[int(rng.integers(len(RAND_OPS)))]
        apply = rng.uniform() < augment.rand_augment_prob
        level = float(np.clip(rng.normal(augment.rand_augment_m, augment.rand_augment_mstd), 0, MAX_LEVEL))
        sign = -1.0 if rng.uniform() < 0.5 else 1.0
        if not apply:
            continue
        if name in GEOMETRIC:
            matrix = matrix @ _geometric_matrix(name, level / MAX_LEVEL, sign, size)
            geometric = True
        else:
            photometric.append((name, level / MAX_LEVEL, sign))
    jitter = None
    if augment.colour_jitter > 0:
        strength = augment.colour_jitter
        jitter = tuple(float(f) for f in rng.uniform(max(0.0, 1 - strength), 1 + strength, 3))
    return ClipPlan(box=(top, left, crop_h, crop_w), flip=flip, matrix=matrix[:2].reshape(-1) if geometric else None,
                    photometric=tuple(photometric), jitter=jitter,
                    fill=OFFICIAL_FILL if augment.get("official_fill", False) else FILL)


def _photometric_op(name: str, level: float, sign: float):
    """image -> image for one photometric RandAugment op with timm's magnitude mapping."""
    enhance = 1.0 + sign * level * 0.9
    if name == "AutoContrast":
        return ImageOps.autocontrast
    if name == "Equalize":
        return ImageOps.equalize
    if name == "Invert":
        return ImageOps.invert
    if name == "PosterizeIncreasing":
        bits = 4 - int(level * 4)
        return lambda image: ImageOps.posterize(image, bits)
    if name == "SolarizeIncreasing":
        threshold = 256 - int(level * 256)
        return lambda image: ImageOps.solarize(image, threshold)
    if name == "SolarizeAdd":
        add = int(level * 110)
        table = [min(255, i + add) if i < 128 else i for i in range(256)] * 3
        return lambda image: image.point(table)
    enhancer = {"ColorIncreasing": ImageEnhance.Color, "ContrastIncreasing": ImageEnhance.Contrast,
                "BrightnessIncreasing": ImageEnhance.Brightness, "SharpnessIncreasing": ImageEnhance.Sharpness}[name]
    return lambda image: enhancer(image).enhance(enhance)


def apply_plan(frames: np.ndarray, plan: ClipPlan, size: int) -> np.ndarray:
    """uint8 (T, h, w, 3) decoded frames -> uint8 (T, size, size, 3) augmented clip.

    One resampling per frame: PIL's affine transform (bilinear, plan.fill outside) when a geometric op
    applies, else a bilinear resize of the crop box (+ mirror)."""
    top, left, crop_h, crop_w = plan.box
    ops = [_photometric_op(*op) for op in plan.photometric]
    if plan.jitter is not None:
        brightness, contrast, saturation = plan.jitter
        ops += [lambda im: ImageEnhance.Brightness(im).enhance(brightness),
                lambda im: ImageEnhance.Contrast(im).enhance(contrast),
                lambda im: ImageEnhance.Color(im).enhance(saturation)]
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for index, frame in enumerate(frames):
        image = Image.fromarray(frame)
        if plan.matrix is not None:
            image = image.transform((size, size), Image.Transform.AFFINE, tuple(float(v) for v in plan.matrix),
                                    resample=Image.Resampling.BILINEAR, fillcolor=plan.fill)
        else:
            image = image.resize((size, size), Image.Resampling.BILINEAR,
                                 box=(left, top, left + crop_w, top + crop_h))
            if plan.flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for op in ops:
            image = op(image)
        out[index] = np.asarray(image)
    return out


def train_clip(frames: np.ndarray, rng: np.random.Generator, size: int, augment: Any) -> np.ndarray:
    """Decoded uint8 (T, h, w, 3) -> augmented uint8 (T, size, size, 3), every choice drawn from `rng`."""
    return apply_plan(frames, plan_clip(rng, frames.shape[1], frames.shape[2], size, augment), size)


# ------------------------------------------------------------------------------------------ evaluation

def resize(frames, size):
    """Bilinear, half-pixel centres, no antialiasing (torch interpolate / cv2 INTER_LINEAR); float32."""
    tf = import_tf()
    return tf.image.resize(tf.cast(frames, tf.float32), size, method="bilinear", antialias=False)


def test_views(frames, resized, crops, size: int, crop_per_window: bool = False):
    """frames uint8 (Vt, T, h, w, 3), resized = [h', w'] (short side -> size), crops int32 (Vs, 2) of
    (top, left) -> uint8 (Vt * Vs, T, size, size, 3), temporal-major like VideoMAE's view order.
    With `crop_per_window`, frames hold one window per view (Vt * Vs, T, h, w, 3) and view k is cut at
    crops[k % Vs] only."""
    tf = import_tf()
    shape = tf.shape(frames)
    flat = tf.reshape(frames, tf.concat([[-1], shape[2:]], 0))
    flat = tf.cond(tf.reduce_all(shape[2:4] == resized), lambda: tf.cast(flat, tf.float32),
                   lambda: resize(flat, resized))
    flat = tf.cast(tf.clip_by_value(tf.round(flat), 0.0, 255.0), tf.uint8)
    if crop_per_window:
        windows = tf.reshape(flat, tf.stack([shape[0], shape[1], resized[0], resized[1], 3]))  # (V, T, h', w', 3)
        corners = tf.gather(crops, tf.range(shape[0]) % tf.shape(crops)[0])  # (V, 2)
        return tf.map_fn(lambda item: item[0][:, item[1][0]:item[1][0] + size, item[1][1]:item[1][1] + size],
                         (windows, corners), fn_output_signature=tf.TensorSpec((None, size, size, 3), tf.uint8))
    views = tf.map_fn(lambda tl: flat[:, tl[0]:tl[0] + size, tl[1]:tl[1] + size], crops,
                      fn_output_signature=tf.TensorSpec((None, size, size, 3), tf.uint8))  # (Vs, Vt*T, ...)
    views = tf.reshape(views, tf.stack([tf.shape(crops)[0], shape[0], shape[1], size, size, 3]))
    views = tf.transpose(views, (1, 0, 2, 3, 4, 5))
    return tf.reshape(views, tf.stack([-1, shape[1], size, size, 3]))

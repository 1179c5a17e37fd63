"""Pseudo human masks (FAME) and the batch augmentations that use them, in pure jax.numpy.

Everything here runs inside the jitted train step on a batch (no TensorFlow, no host work) and is
vmap friendly; shapes are static given the clip shape. REFERENCE §6 for FAME and scene mix; §7 for
the One-Token recipe's mixup / cutmix / label smoothing / random erasing.

Typical use in a step (clips uint8 (B, T, H, W, 3) from the pipeline):

    clips01 = to_unit(batch['clips'])
    targets = fame_targets(clips01, beta=0.3, blur_size=blur_size_for(224))   # masks + m_clip / m_tub
    clips01, background, mixed = scene_mix(key, clips01, targets['clip_mask'], prob=0.4)
    scene = batch['scene'][background]         # the scene label follows the background clip
    model_input = normalize(clips01)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_COLOUR_BINS = 1000  # 10 hue-x x 10 hue-y x 10 value levels


# ------------------------------------------------------------------------------------------ pixels

def to_unit(clips: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return clips.astype(jnp.float32) / 255.0


def normalize(clips01: jax.Array, dtype=jnp.float32) -> jax.Array:
    """[0, 1] RGB -> ImageNet-normalised model input."""
    mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
    std = jnp.asarray(IMAGENET_STD, jnp.float32)
    return ((clips01 - mean) / std).astype(dtype)


def denormalize(clips: jax.Array) -> jax.Array:
    """ImageNet-normalised -> [0, 1] RGB (FAME needs it)."""
    return clips.astype(jnp.float32) * jnp.asarray(IMAGENET_STD) + jnp.asarray(IMAGENET_MEAN)


# ------------------------------------------------------------------------------------------ FAME

def blur_size_for(crop: int, official_quirk: bool = False) -> int:
    """FAME's Gaussian kernel size: floor(0.1 * crop) made odd (+1 if even). The official code sizes it
    for a 112 crop whatever the input (g = 11 at 224); `official_quirk=True` reproduces that."""
    size = max(1, int(0.1 * (112 if official_quirk else crop)))
    return size + 1 if size % 2 == 0 else size


def _gaussian_taps(size: int) -> np.ndarray:
    sigma = size / 3.0
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def gaussian_blur(maps: jax.Array, size: int) -> jax.Array:
    """Normalised size x size Gaussian (sigma = size / 3) with reflect padding over the last two axes."""
    if size <= 1:
        return maps
    taps = _gaussian_taps(size)
    pad = size // 2
    height, width = maps.shape[-2:]
    lead = [(0, 0)] * (maps.ndim - 2)
    padded = jnp.pad(maps, lead + [(pad, pad), (0, 0)], mode="reflect")
    maps = sum(float(taps[k]) * padded[..., k:k + height, :] for k in range(size))
    padded = jnp.pad(maps, lead + [(0, 0), (pad, pad)], mode="reflect")
    return sum(float(taps[k]) * padded[..., :, k:k + width] for k in range(size))


def _min_max(maps: jax.Array) -> jax.Array:
    """(M - min) / (max + 1e-8) per map [sic: max, not max - min, as in FAME]."""
    low = maps.min(axis=(-2, -1), keepdims=True)
    high = maps.max(axis=(-2, -1), keepdims=True)
    return (maps - low) / (high + 1e-8)


def colour_bins(frames01: jax.Array) -> jax.Array:
    """(..., H, W, 3) in [0, 1] -> int32 (..., H, W) FAME colour bin in [0, 1000).

    HSV with hue in radians, S = (max - min) / (max + 1e-6), V = max; hx = (S cos(2 pi hue) + 1) / 2,
    hy = (S sin(2 pi hue) + 1) / 2 (the radian hue multiplied by 2 pi again: FAME's quirk, kept for
    parity); h, s, v = round(9 * (hx, hy, V) + 1); bin = h + 10 (s - 1) + 100 (v - 1) - 1."""
    red, green, blue = frames01[..., 0], frames01[..., 1], frames01[..., 2]
    high = frames01.max(axis=-1)
    low = frames01.min(axis=-1)
    delta = high - low
    safe = jnp.where(delta == 0, 1.0, delta)
    channel = jnp.argmax(frames01, axis=-1)  # first maximum on ties
    sector = jnp.select([channel == 0, channel == 1], [(green - blue) / safe, (blue - red) / safe + 2.0],
                        (red - green) / safe + 4.0)
    hue = jnp.mod(sector / 6.0, 1.0) * (2.0 * math.pi)
    saturation = delta / (high + 1e-6)
    hue_x = (saturation * jnp.cos(2.0 * math.pi * hue) + 1.0) / 2.0
    hue_y = (saturation * jnp.sin(2.0 * math.pi * hue) + 1.0) / 2.0
    h = jnp.round(9.0 * hue_x + 1.0)
    s = jnp.round(9.0 * hue_y + 1.0)
    v = jnp.round(9.0 * high + 1.0)
    return (h + 10.0 * (s - 1.0) + 100.0 * (v - 1.0) - 1.0).astype(jnp.int32)


def top_mask(scores: jax.Array, count: int) -> jax.Array:
    """float32 mask with exactly `count` ones at the highest scores of each (..., H, W) map; ties go to
    the lower row-major index."""
    shape = scores.shape
    flat = scores.reshape(-1, shape[-2] * shape[-1])
    _, index = jax.lax.top_k(flat, count)  # equal values: the lower index comes first
    ones = jnp.zeros_like(flat).at[jnp.arange(flat.shape[0])[:, None], index].set(1.0)
    return ones.reshape(shape)


def _refine(motion: jax.Array, bins: jax.Array, blur: int) -> jax.Array:
    """One (H, W) motion map + (H, W) colour bins -> FAME foreground score (H, W) in [0, 1)."""
    flat_motion = motion.reshape(-1)
    flat_bins = bins.reshape(-1)
    pixels = flat_motion.shape[0]
    order = jnp.argsort(-flat_motion, stable=True)  # most motion first, ties by index
    fg_seeds = order[: pixels // 2]
    bg_seeds = order[pixels - pixels // 10:]
    fg_hist = jnp.zeros(NUM_COLOUR_BINS, jnp.float32).at[flat_bins[fg_seeds]].add(1.0)
    bg_hist = jnp.zeros(NUM_COLOUR_BINS, jnp.float32).at[flat_bins[bg_seeds]].add(1.0)
    p_fg = fg_hist / (fg_hist.sum() + 1e-8)
    bg_hist = bg_hist + 1.0  # Laplace smoothing: every colour is a little bit background
    p_bg = bg_hist / (bg_hist.sum() + 1e-8)
    fg, bg = p_fg[bins], p_bg[bins]
    score = fg / (bg + fg)
    return _min_max(gaussian_blur(score, blur))


@functools.partial(jax.jit, static_argnames=("beta", "blur_size", "tubelet_size"))
def fame_masks(clips01: jax.Array, beta: float, blur_size: int, tubelet_size: int = 2
               ) -> tuple[jax.Array, jax.Array]:
    """FAME pseudo human masks (REFERENCE §6) for clips (B, T, H, W, 3) in [0, 1].

    Returns (clip_mask (B, H, W), tubelet_mask (B, T / tubelet_size, H, W)), float32 0/1 with exactly
    floor(beta * H * W) ones each. The clip mask uses the mean motion over all T - 1 consecutive pairs;
    tubelet t uses the single pair (t * tubelet_size, t * tubelet_size + 1); both take colours from
    the whole clip's mean frame."""
    batch, frames, height, width, _ = clips01.shape
    clips01 = clips01.astype(jnp.float32)
    diffs = jnp.abs(clips01[:, 1:] - clips01[:, :-1]).sum(axis=-1)  # (B, T-1, H, W)
    motion = jnp.concatenate([diffs.mean(axis=1, keepdims=True), diffs[:, ::tubelet_size]], axis=1)
    motion = _min_max(gaussian_blur(motion, blur_size))  # (B, 1 + T/tubelet, H, W)
    bins = colour_bins(clips01.mean(axis=1))  # (B, H, W)
    refine = jax.vmap(jax.vmap(_refine, in_axes=(0, None, None)), in_axes=(0, 0, None))
    scores = refine(motion, bins, blur_size)
    masks = top_mask(scores, int(math.floor(beta * height * width)))
    return masks[:, 0], masks[:, 1:1 + frames // tubelet_size]


def patch_fractions(mask: jax.Array, patch: int = 16) -> jax.Array:
    """Foreground fraction per patch x patch cell, flattened in token order.

    (B, H, W) -> (B, (H/p)(W/p)) row-major; (B, T', H, W) -> (B, T' (H/p)(W/p)) ordered t, h, w."""
    *lead, height, width = mask.shape
    cells = mask.reshape(tuple(lead) + (height // patch, patch, width // patch, patch)).mean(axis=(-3, -1))
    return cells.reshape(lead[0], -1).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("beta", "blur_size", "patch", "tubelet_size"))
def fame_targets(clips01: jax.Array, beta: float, blur_size: int, patch: int = 16,
                 tubelet_size: int = 2) -> dict[str, jax.Array]:
    """All mask outputs of one batch: clip_mask (B, H, W), tubelet_mask (B, T/2, H, W),
    m_clip (B, (H/p)(W/p)) for the action mask decoder, m_tub (B, (T/2)(H/p)(W/p)) for attention guidance."""
    clip_mask, tubelet_mask = fame_masks(clips01, beta, blur_size, tubelet_size)
    return {"clip_mask": clip_mask, "tubelet_mask": tubelet_mask,
            "m_clip": patch_fractions(clip_mask, patch), "m_tub": patch_fractions(tubelet_mask, patch)}


# ------------------------------------------------------------------------------------------ mixing

def _grouped(fn, groups: int, batch: int):
    """Applies fn(key, *arrays) independently to `groups` contiguous chunks of the batch (per device)."""
    if batch % groups:
        raise ValueError(f"batch {batch} is not divisible into {groups} groups")

    def run(key, *arrays):
        keys = jax.random.split(key, groups)
        chunks = [a.reshape((groups, batch // groups) + a.shape[1:]) for a in arrays]
        outs = jax.vmap(fn)(keys, *chunks)
        return jax.tree.map(lambda o: o.reshape((batch,) + o.shape[2:]), outs)

    return run


SCENE_MIX_BACKGROUNDS = ("clip", "inpaint", "still")
SCENE_MIX_PARTNERS = ("random", "overlap")


def _box_sum(x: jax.Array, radius: int, axis: int) -> jax.Array:
    """Sum over a window of 2 radius + 1 along `axis` (zero outside), by cumulative sums."""
    size = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius + 1, radius)
    total = jnp.cumsum(jnp.pad(x, pad), axis=axis)
    upper = jax.lax.slice_in_dim(total, 2 * radius + 1, 2 * radius + 1 + size, axis=axis)
    lower = jax.lax.slice_in_dim(total, 0, size, axis=axis)
    return upper - lower


def inpaint_foreground(clips: jax.Array, clip_mask: jax.Array) -> jax.Array:
    """Replaces each clip's foreground region by the mean of the background around it, frame by frame.

    clips (B, T, H, W, C) float, clip_mask (B, H, W) 0/1. Normalised box filtering: the fill at a pixel
    is the mean of the unmasked pixels in a window of half the frame; a window with none falls back to
    the frame's mean unmasked colour. Removes a scene-mix background clip's own actor."""
    keep = (clip_mask < 0.5).astype(clips.dtype)[:, None, :, :, None]  # (B, 1, H, W, 1)
    radius = max(1, min(clips.shape[2], clips.shape[3]) // 4)
    window = lambda x: _box_sum(_box_sum(x, radius, 2), radius, 3)  # noqa: E731
    weight = window(keep)  # (B, 1, H, W, 1)
    local = window(clips * keep) / jnp.maximum(weight, 1e-6)  # (B, T, H, W, C)
    global_mean = (clips * keep).sum((2, 3), keepdims=True) / jnp.maximum(keep.sum((2, 3), keepdims=True), 1e-6)
    fill = jnp.where(weight > 0.5, local, global_mean)
    return jnp.where(keep > 0, clips, fill)


def overlap_partners(key: jax.Array, clip_mask: jax.Array) -> jax.Array:
    """For each clip i the other clip j whose FAME foreground lies most inside i's (the fewest of j's
    foreground pixels outside i's mask), ties broken at random. clip_mask (S, H, W) -> (S,) int32.
    Several clips may share one background; a group of one keeps its own clip."""
    size = clip_mask.shape[0]
    flat = (clip_mask > 0.5).reshape(size, -1).astype(jnp.float32)  # (S, HW)
    visible = flat.sum(-1)[None, :] - flat @ flat.T  # (S, S): [i, j] = j's foreground outside i's
    visible = visible + 0.5 * jax.random.uniform(key, (size, size))  # < 1 pixel: only breaks ties
    visible = jnp.where(jnp.eye(size, dtype=bool), jnp.inf, visible)
    return jnp.argmin(visible, axis=1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("groups", "background", "partner"))
def scene_mix(key: jax.Array, clips: jax.Array, clip_mask: jax.Array, prob: float, groups: int = 1,
              background: str = "clip", partner: str = "random") -> tuple[jax.Array, jax.Array, jax.Array]:
    """Pastes each clip's foreground on another clip's background (REFERENCE §6).

    fused_i = B_pi(i) (1 - m_i) + V_i m_i for a random permutation pi within each of `groups` contiguous
    chunks (groups = number of devices keeps the mix per device), kept with probability `prob`.
    `background` 'clip' (official): B = V, the other clip as it is, its own actor included where m_i
    is 0; 'inpaint': B = V with its own foreground m_pi(i) filled from the background around it
    (`inpaint_foreground`), so the mixed clip shows one actor; 'still': B = one random frame of V repeated
    over time, so the background clip's own actor stays in view but does not move (the action is a
    motion; the scene is what a frame shows). `partner` 'random' (official): pi is a
    random permutation; 'overlap': each clip's background is the other clip whose own foreground it
    hides best (`overlap_partners`), so less of a second actor shows.
    clips (B, T, H, W, C) any dtype (returned in it), clip_mask (B, H, W) 0/1.
    Returns (clips, background (B,) int32 = pi(i) where mixed else i, mixed (B,) bool): the action
    label and the masks stay clip i's; the scene label becomes scene[background]."""
    if background not in SCENE_MIX_BACKGROUNDS:
        raise ValueError(f"background={background!r}; expected one of {SCENE_MIX_BACKGROUNDS}")
    if partner not in SCENE_MIX_PARTNERS:
        raise ValueError(f"partner={partner!r}; expected one of {SCENE_MIX_PARTNERS}")
    batch = clips.shape[0]

    def mix(key, clips, clip_mask):
        size = clips.shape[0]
        perm_key, keep_key = jax.random.split(key)
        perm = (jax.random.permutation(perm_key, size) if partner == "random"
                else overlap_partners(perm_key, clip_mask))
        mixed = jax.random.uniform(keep_key, (size,)) < prob
        foreground = (clip_mask > 0.5)[:, None, :, :, None]
        backgrounds = clips[perm]
        if background == "inpaint":
            filled = inpaint_foreground(backgrounds.astype(jnp.float32), clip_mask[perm])
            backgrounds = filled.astype(clips.dtype) if jnp.issubdtype(clips.dtype, jnp.floating) else \
                jnp.round(filled).astype(clips.dtype)
        elif background == "still":
            frame = jax.random.randint(jax.random.fold_in(keep_key, 1), (size,), 0, clips.shape[1])
            still = backgrounds[jnp.arange(size), frame][:, None]  # (S, 1, H, W, C)
            backgrounds = jnp.broadcast_to(still, backgrounds.shape)
        fused = jnp.where(foreground, clips, backgrounds)
        out = jnp.where(mixed[:, None, None, None, None], fused, clips)
        return out, jnp.where(mixed, perm, jnp.arange(size)).astype(jnp.int32), mixed

    if groups == 1:
        return mix(key, clips, clip_mask)
    out, background_index, mixed = _grouped(mix, groups, batch)(key, clips, clip_mask)
    offsets = (jnp.arange(batch) // (batch // groups)) * (batch // groups)
    return out, (background_index + offsets).astype(jnp.int32), mixed


def background_actor_share(clip_mask: jax.Array, background: jax.Array) -> jax.Array:
    """Share of a scene-mixed clip's action that belongs to the background clip's own actor.

    clip_mask (B, H, W) FAME foregrounds (0/1, the same count per clip), background (B,) int from
    `scene_mix` (i where clip i was not mixed). The background clip's foreground outside clip i's stays
    visible in the mix: share_i = visible / (own + visible) in [0, 1/2], 0 for unmixed clips. (B,) float32."""
    own = clip_mask.reshape(clip_mask.shape[0], -1).astype(jnp.float32)  # (B, HW)
    other = own[background]  # (B, HW): the background clip's foreground
    visible = (other * (1.0 - own)).sum(-1)
    share = visible / jnp.maximum(own.sum(-1) + visible, 1.0)
    return jnp.where(background == jnp.arange(background.shape[0]), 0.0, share)


@jax.jit
def background_erase(key: jax.Array, clips: jax.Array, max_lambda: float = 0.3) -> jax.Array:
    """BE: lambda ~ U[0, max_lambda) per batch, per clip a random frame k; x_j <- (1 - lambda) x_j + lambda x_k."""
    lam_key, frame_key = jax.random.split(key)
    batch, frames = clips.shape[:2]
    lam = jax.random.uniform(lam_key, (), maxval=max_lambda)
    chosen = jax.random.randint(frame_key, (batch,), 0, frames)
    still = clips[jnp.arange(batch), chosen].astype(jnp.float32)  # (B, H, W, C)
    return (1.0 - lam) * clips.astype(jnp.float32) + lam * still[:, None]


@functools.partial(jax.jit, static_argnames=("num_classes",))
def smooth_one_hot(labels: jax.Array, num_classes: int, smoothing: float = 0.0) -> jax.Array:
    """(B,) int -> (B, C) float32: 1 - smoothing + smoothing / C on the label, smoothing / C elsewhere.
    A label of -1 gives a zero row (no target)."""
    known = (labels >= 0)[:, None]
    off = smoothing / num_classes
    target = jax.nn.one_hot(labels, num_classes) * (1.0 - smoothing) + off
    return jnp.where(known, target, 0.0)


def _cutmix_box(key, lam, height, width):
    """timm's rand_bbox: a box of area ~ (1 - lam) HW centred uniformly, clipped to the frame."""
    cy_key, cx_key = jax.random.split(key)
    ratio = jnp.sqrt(1.0 - lam)
    cut_h = (height * ratio).astype(jnp.int32)
    cut_w = (width * ratio).astype(jnp.int32)
    cy = jax.random.randint(cy_key, (), 0, height)
    cx = jax.random.randint(cx_key, (), 0, width)
    top, bottom = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy + cut_h // 2, 0, height)
    left, right = jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx + cut_w // 2, 0, width)
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    area = (bottom - top) * (right - left)
    return box, 1.0 - area / (height * width)


@functools.partial(jax.jit, static_argnames=("mixup_alpha", "cutmix_alpha"))
def mixup_cutmix(key: jax.Array, clips: jax.Array, targets: Any, *, mixup_alpha: float = 0.8,
                 cutmix_alpha: float = 1.0, switch_prob: float = 0.5, prob: float = 1.0
                 ) -> tuple[jax.Array, Any, jax.Array]:
    """timm Mixup in 'batch' mode for clips (B, T, H, W, C): one lambda per batch, clip i mixed with
    clip B-1-i; cutmix (box shared by all frames, lambda corrected to the box area) with probability
    `switch_prob` when both are on. `targets` is a soft-target array (B, C) or a pytree of them (e.g.
    action and scene, each from smooth_one_hot), mixed with the same lambda.
    Returns (clips float32, targets, lam)."""
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return clips.astype(jnp.float32), targets, jnp.ones((), jnp.float32)
    apply_key, switch_key, mix_key, cut_key, box_key = jax.random.split(key, 5)
    height, width = clips.shape[2:4]
    clips = clips.astype(jnp.float32)
    flipped = clips[::-1]
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.uniform(switch_key) < switch_prob
    else:
        use_cutmix = jnp.asarray(cutmix_alpha > 0)
    apply = jax.random.uniform(apply_key) < prob
    lam_mix = jax.random.beta(mix_key, max(mixup_alpha, 1e-3), max(mixup_alpha, 1e-3))
    lam_cut = jax.random.beta(cut_key, max(cutmix_alpha, 1e-3), max(cutmix_alpha, 1e-3))
    box, lam_box = _cutmix_box(box_key, lam_cut, height, width)
    lam = jnp.where(apply, jnp.where(use_cutmix, lam_box, lam_mix), 1.0).astype(jnp.float32)
    cut = jnp.where(box[None, None, :, :, None], flipped, clips)
    mixed = lam * clips + (1.0 - lam) * flipped
    out = jnp.where(apply & use_cutmix, cut, jnp.where(apply, mixed, clips))
    targets = jax.tree.map(lambda t: lam * t + (1.0 - lam) * t[::-1], targets)
    return out, targets, lam


@functools.partial(jax.jit, static_argnames=("per_frame", "area_range", "min_aspect", "attempts"))
def random_erasing(key: jax.Array, clips: jax.Array, prob: float = 0.25, per_frame: bool = True,
                   area_range=(0.02, 1 / 3), min_aspect: float = 0.3, attempts: int = 10) -> jax.Array:
    """timm RandomErasing (mode 'pixel': N(0, 1) noise on normalised clips, one box) on (B, T, H, W, C).
    per_frame=True draws an independent box for every frame, as VideoMAE's loader applies it."""
    batch, frames, height, width, channels = clips.shape
    units = (batch, frames) if per_frame else (batch, 1)
    keys = jax.random.split(key, 6)
    area = height * width
    target = area * jax.random.uniform(keys[0], units + (attempts,), minval=area_range[0], maxval=area_range[1])
    log_ratio = jax.random.uniform(keys[1], units + (attempts,), minval=math.log(min_aspect),
                                   maxval=math.log(1 / min_aspect))
    ratio = jnp.exp(log_ratio)
    box_h = jnp.round(jnp.sqrt(target * ratio)).astype(jnp.int32)
    box_w = jnp.round(jnp.sqrt(target / ratio)).astype(jnp.int32)
    ok = (box_h < height) & (box_w < width)
    first = jnp.argmax(ok, axis=-1)
    pick = lambda a: jnp.take_along_axis(a, first[..., None], axis=-1)[..., 0]  # noqa: E731
    box_h, box_w, any_ok = pick(box_h), pick(box_w), ok.any(axis=-1)
    top = (jax.random.uniform(keys[2], units) * (height - box_h + 1)).astype(jnp.int32)
    left = (jax.random.uniform(keys[3], units) * (width - box_w + 1)).astype(jnp.int32)
    erase = (jax.random.uniform(keys[4], units) < prob) & any_ok
    rows = jnp.arange(height)[None, None, :, None]
    cols = jnp.arange(width)[None, None, None, :]
    inside = ((rows >= top[..., None, None]) & (rows < (top + box_h)[..., None, None])
              & (cols >= left[..., None, None]) & (cols < (left + box_w)[..., None, None])
              & erase[..., None, None])  # (B, T or 1, H, W)
    noise = jax.random.normal(keys[5], clips.shape, jnp.float32)
    return jnp.where(inside[..., None], noise, clips.astype(jnp.float32))

"""Helpers the recipes share: the `get_config(arg)` convention, evaluation suites, `follows`, `smoke`.

Every recipe file defines `get_config(arg=None)`; `arg` is the text after the colon in
`--config=configs/ucf101.py:method=devias,variant=B,smoke` (comma-separated `key=value` or bare flags).
A recipe reads top to bottom: parse_arg, the defaults (configs/defaults.py), its own settings, finish
(the method's settings from devias_jax/methods.py, variants, smoke). Configs come back locked: a
misspelt `--config.x.y=...` override fails naming the key.
"""

from __future__ import annotations

from typing import Any, Callable

import ml_collections
from ml_collections.config_dict.config_dict import _Op

from devias_jax.methods import METHODS, VARIANTS

# Arguments every recipe accepts, with their defaults. A bare word (`smoke`) means True.
DEFAULT_ARGS: dict[str, Any] = {"method": "vit", "variant": "B", "smoke": False}


def parse_arg(arg: str | None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """'method=devias,variant=B,smoke' -> {'method': 'devias', 'variant': 'B', 'smoke': True}."""
    values = dict(DEFAULT_ARGS if defaults is None else defaults)
    for item in filter(None, (part.strip() for part in (arg or "").split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in values:
            raise ValueError(f"unknown config argument {key!r} in {arg!r}; expected one of {sorted(values)}")
        if not value:
            values[key] = True
        elif isinstance(values[key], bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"config argument {key!r} is a flag; got {value!r}")
            values[key] = value.lower() in ("true", "1")
        else:
            values[key] = type(values[key])(value)
    return values


def suite(list_path: str, tasks: str, group: str, **optional: str) -> ml_collections.ConfigDict:
    """One evaluation suite: a list, the tasks it scores ('action', 'scene', 'action,scene' or a tuple of
    those names) and its group ('seen' / 'unseen'); optional kind / root / scene_labels / dataset
    (devias_jax/suites.py, which checks every field)."""
    return ml_collections.ConfigDict({"list": list_path, "tasks": tasks, "group": group, **optional})


def ucf101_like_suites(val_list: str, dataset: str) -> dict[str, ml_collections.ConfigDict]:
    """The paper's seen / unseen test sets for UCF-101 ('ucf101') and Kinetics-400 ('kinetics'), as
    released (PROTOCOL §1-§4), relative to data.root (link or copy the downloads there):

      filelist/scuba/<d>/test.csv            SCUBA's one list; frames under scuba/<d>-{places,vqgan,sinusoidal}
                                             (UCF-101: .../generated_videos)
      filelist/hat/<d>/{rand,close,far}/     HAT's split pickles actionswap_*_{1,2,3}.pickle (labels.csv two
                                             folders up: filelist/hat/<d>/labels.csv)
      hat/<d>/                               HAT's frames: rawframes|original, seg, inpaint
      hat/<d>/list.csv                       Scene-Only ('path nframes label', inpainted frames)

    The val list (action + teacher scene labels, scripts/pseudo_scene_labels.py) is seen. HAT and
    Scene-Only scenes are the frozen teacher's predictions on the same composited views
    (config.loss.teacher). config.eval.tables says which suites each headline number averages: 'main'
    (paper Tables 2-3) and 'supplement' (Tables 7-8); config.eval.table picks the one reported first.
    Run a subset with --config.eval.only=val,hat_far."""
    scuba_root = "scuba/ucf101-{}/generated_videos" if dataset == "ucf101" else "scuba/kinetics-{}"
    scene_only_root = "hat/ucf101/inpaint" if dataset == "ucf101" else "hat/kinetics/inpaint/videos"
    hat = dict(kind="hat", root=f"hat/{dataset}", scene_labels="teacher", dataset=dataset)
    return {
        "val": suite(val_list, "action,scene", "seen"),
        "scuba_places365": suite(f"filelist/scuba/{dataset}/test.csv", "action", "unseen",
                                 root=scuba_root.format("places")),
        "scuba_vqgan_clip": suite(f"filelist/scuba/{dataset}/test.csv", "action", "unseen",
                                  root=scuba_root.format("vqgan")),
        "scuba_sinusoid": suite(f"filelist/scuba/{dataset}/test.csv", "action", "unseen",
                                root=scuba_root.format("sinusoidal")),
        "hat_scene_only": suite(f"hat/{dataset}/list.csv", "scene", "unseen", root=scene_only_root,
                                scene_labels="teacher"),
        "hat_random": suite(f"filelist/hat/{dataset}/rand", "action,scene", "unseen", **hat),
        "hat_close": suite(f"filelist/hat/{dataset}/close", "action,scene", "unseen", **hat),
        "hat_far": suite(f"filelist/hat/{dataset}/far", "action,scene", "unseen", **hat),
    }


def paper_tables() -> ml_collections.ConfigDict:
    """Which suites each headline number averages (PROTOCOL §5). main (Tables 2-3): unseen action =
    SCUBA VQGAN-CLIP and Sinusoid, unseen scene = HAT Scene-Only, Random, Far; supplement (Tables 7-8):
    unseen action = the 3 SCUBA and 3 HAT swaps, unseen scene = Scene-Only and the 3 swaps."""
    seen = {"action_seen": "val", "scene_seen": "val"}
    return ml_collections.ConfigDict({
        "main": {**seen, "action_unseen": "scuba_vqgan_clip,scuba_sinusoid",
                 "scene_unseen": "hat_scene_only,hat_random,hat_far"},
        "supplement": {**seen,
                       "action_unseen": "scuba_places365,scuba_vqgan_clip,scuba_sinusoid,hat_random,hat_close,hat_far",
                       "scene_unseen": "hat_scene_only,hat_random,hat_close,hat_far"},
    })


def follows(ref: ml_collections.FieldReference, fn: Callable[[Any], Any],
            field_type: type) -> ml_collections.FieldReference:
    """A field whose value is fn(ref's value), read lazily (so it tracks later edits of `ref`), until the
    field is set on its own: then it keeps that value and `ref` is left as it was. (A shared `get_ref`
    instead writes through: setting either name sets both.)"""
    return ml_collections.FieldReference(field_type(), field_type=field_type,
                                         op=_Op(lambda _, value: fn(value), [ref]))


def smoke(config: ml_collections.ConfigDict) -> None:
    """Shrinks any recipe to a seconds-long CPU run (tiny ViT, 4 frames of 32x32)."""
    model = config.model
    model.variant = "custom"
    model.update(embed_dim=32, depth=2, num_heads=2, num_frames=4, img_size=32, tubelet_size=2, drop_path_rate=0.0)
    model.update(slot_heads=2, slot_head_dim=16, mask_decoder_dims=(32, 16))
    if "teacher" in config.get("loss", {}):
        config.loss.teacher.variant = "custom"
        config.loss.teacher.update(embed_dim=32, depth=1, num_heads=2)


def finish(config: ml_collections.ConfigDict, args: dict[str, Any]) -> ml_collections.ConfigDict:
    """The last steps of every recipe: the method's settings (its entry in devias_jax/methods.py), its
    `+variant`s, `smoke`; then the config is locked."""
    config.method = args["method"]
    method, *variants = args["method"].split("+")
    if method not in METHODS:
        raise ValueError(f"config argument method={args['method']!r}; expected one of {sorted(METHODS)}, "
                         f"optionally with +{'/+'.join(VARIANTS)}")
    METHODS[method].configure(config)
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"config argument method={args['method']!r}: unknown variant '+{variant}'; "
                             f"expected one of {['+' + v for v in VARIANTS]}")
        VARIANTS[variant].apply(config)
    if args["smoke"]:
        smoke(config)
    config.lock()
    return config

"""Shared config defaults and the `get_config(arg)` convention.

Every recipe file defines `get_config(arg=None)`; `arg` is the text after the colon in
`--config=configs/ucf101.py:method=devias,variant=B,smoke` (comma-separated `key=value` or bare flags).
Durations are written as `*_epochs` or `*_steps` (-1 = unset) and resolved in the trainer, never here.
Configs come back locked: a misspelt `--config.x.y=...` override fails naming the key.
"""

from __future__ import annotations

from typing import Any, Callable

import ml_collections
from ml_collections.config_dict.config_dict import _Op

# Arguments every recipe accepts, with their defaults. A bare word (`smoke`) means True.
DEFAULT_ARGS: dict[str, Any] = {"method": "vit", "variant": "B", "smoke": False}

# method name -> function that edits the config in place. Later modules register more methods.
METHODS: dict[str, Callable[[ml_collections.ConfigDict], None]] = {}


def register_method(name: str):
    def decorate(fn):
        METHODS[name] = fn
        return fn
    return decorate


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


def model_config(variant: str = "B") -> ml_collections.ConfigDict:
    """The backbone: a VideoMAE ViT (REFERENCE §2). Explicit sizes apply when variant='custom'.
    Then DEVIAS / baseline fields (REFERENCE §3-§5, §9), used by devias_jax/models/{devias,baselines}.py."""
    config = ml_collections.ConfigDict({
        "name": "vit",
        "variant": variant,  # Ti / S / B / L / H / custom
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "mlp_ratio": 4.0,
        "patch_size": 16,
        "tubelet_size": 2,
        "stem_channels": (),  # () = VideoMAE's linear tubelet embedding; e.g. (24, 48) = a conv stem (from scratch)
        "num_frames": 16,
        "img_size": 224,
        "drop_path_rate": 0.1,
        "layer_scale_init": 0.0,
        "pooling": "mean",  # mean (fc_norm) / cls / none
        "num_prefix_tokens": 0,
        "num_suffix_tokens": 0,
        "num_classes": 101,
        "head_init_scale": 0.001,
        "head_dropout": 0.0,
        # trunc_normal(0.02) of every Linear and learned token cut at +-2 std (JAX's convention, ours) or
        # 'absolute': at +-2 as timm does in the official code, an untruncated N(0, 0.02^2) in effect.
        # Follows loss.official_compat (base_config) unless set on its own.
        "init_bounds": "std",
        "dtype": "float32",  # compute dtype: float32 / bfloat16 / float16
        "remat": False,
        "attention_impl": "auto",  # auto / xla / cudnn
        # --- DEVIAS and baselines. num_actions (below) is num_classes under a second name.
        "num_scenes": 365,  # C_s: Places365 teacher classes; HVU uses its own scene vocabulary
        "unified_head": False,  # one_token / two_token: one Linear D -> C_a + C_s instead of two heads
        "num_slots": 2,  # K
        "slot_iterations": 4,  # official: 4 on UCF-101, 8 on Kinetics-400 / HVU
        "slot_heads": 4,
        "slot_head_dim": 512,  # inner width slot_heads * slot_head_dim (2048 official)
        "slot_mlp_ratio": 4.0,
        "slot_softmax_axis": "slots",  # slots (paper) / keys (ablation)
        "slot_tied": True,  # one parameter set shared by all iterations (paper ablation: better)
        "slot_init_scale": 1.0,  # std of the learned initial slots (official N(0, 1))
        "mask_decoder_dims": (512, 256),  # AMD hidden widths: D -> 512 -> 256 -> (H/16)(W/16)
        # --- devias_downstream (transfer, REFERENCE §9 Table 5)
        "fusion": "concat",  # concat (action + scene slot) / gap (mean of backbone tokens)
        "fusion_norm": True,  # LayerNorm on the concatenated halves
        # fusion_variant (set in base_config): default / official (the authors' head: per-slot LayerNorms,
        # slots picked per clip by the source's frozen unified head, whose action classes are these)
        "source_num_actions": 400,
        "action_slot_index": 0,
        "scene_slot_index": 1,
    })
    # One value under two names: the action classes of DEVIAS / baselines are the recipe's num_classes.
    config.num_actions = config.get_ref("num_classes")
    return config


def scene_teacher_config(model: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
    """The frozen Places365 scene teacher (REFERENCE §8): a class-token VideoMAE ViT-B with a 365-way head.
    Its clip geometry and compute dtype follow `model` (the student) when given."""
    teacher = model_config("B")
    teacher.update(name="scene_vit", pooling="cls", num_prefix_tokens=1, drop_path_rate=0.0)
    teacher.checkpoint = ""  # converted directory or the authors' .pth; empty: no online teacher
    if model is not None:
        for key in ("num_frames", "img_size", "patch_size", "tubelet_size", "dtype", "attention_impl"):
            setattr(teacher, key, model.get_ref(key))
    return teacher


def loss_config(model: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
    """Objective and slot matching (REFERENCE §4-§5). Owned by devias_jax/losses.py and matching.py.
    Defaults follow the paper's intent; `official_compat` reproduces the official code's numerics."""
    return ml_collections.ConfigDict({
        "alpha": 1.0,  # weight of L_AMD (action mask decoder BCE)
        "beta": 1.0,  # weight of L_AG (attention guidance MSE)
        "gamma": 1.0,  # weight of L_cos (slot diversity)
        "cos_mode": "signed",  # signed: minimise the mean off-diagonal cosine (official) / abs: minimise |cos|
        "scene_target": "label",  # label: CE on scene labels (or teacher argmax) / teacher: KL to the teacher
        "teacher_kl_weight": -1.0,  # weight of the teacher KL; -1: 1.0, or 4000 with official_compat
        "matching": "exact",  # exact (on device) / scipy (Hungarian via host callback) / greedy / hard
        "official_compat": False,  # double sigmoid in L_AMD, 'batchmean'-on-1-D KL, batch-min - 1 padding
        "label_smoothing": 0.0,  # on integer-label cross-entropies when no soft targets are given
        "teacher": scene_teacher_config(model),
    })


def data_config() -> ml_collections.ConfigDict:
    """Annotation lists, decoding, views (REFERENCE §7). Owned by devias_jax/data/.

    Defaults are the official UCF-101 recipe; lists are 'path label', 'path action scene', HVU
    'video_id action scene' or SCUBA 'frame_dir num_frames label' (devias_jax/data/annotations.py)."""
    return ml_collections.ConfigDict({
        "root": "",  # videos (and relative list paths) resolve relative to this directory
        "train_list": "train.txt",
        "list_format": "auto",  # auto / video / frames (3 columns = frame folder when auto and a directory)
        "video_ext": "",  # appended to ids without an extension (HVU: '.mp4'); '' = try known extensions
        "num_actions": 101,
        "num_scenes": 365,  # Places365 classes of the scene teacher
        "scene_source": "teacher",  # list (third column) / teacher (online scene model) / none
        "frame_stride": 4,  # clips are config.model.num_frames frames, cropped to config.model.img_size
        "short_side": 0,  # test-time short-side resize; 0 = config.model.img_size
        "decode_short_side": 0,  # >0: decord scales frames whose short side is larger while decoding
        "test_temporal_views": 2,
        "test_spatial_views": 3,
        "min_frames": 2,  # videos with fewer frames count as undecodable
        "shuffle": True,
        "decode_workers": 0,  # parallel decode/augment calls per process; 0 = the process's CPU count
        "prefetch_batches": 2,
        "batch_timeout_s": 600.0,  # a training batch that takes longer stops the run (stuck decoder)
        "max_failure_fraction": 0.05,  # stop (listing the bad files) past this fraction of undecodable files
        "check_files": False,  # True: every listed file must exist (checked before any compilation)
        # --- where samples come from (devias_jax/data/sources.py). Image datasets (the scene teacher,
        # REFERENCE §8; devias_jax/data/images.py): each image is one frame repeated model.num_frames
        # times; train_list and the suites' lists name folders / splits
        "source": "videos",  # videos (lists above) / image_folder (<class>/<image> tree or 'path label' list) / tfds
        "image_task": "scene",  # the image class is the scene label (action -1), or 'action'
        "classes_file": "",  # image_folder: class folder names in label order, one a line ('' = sorted)
        "tfds_name": "",  # tfds: a dataset prepared in ArrayRecord format, e.g. 'places365_small'
        "tfds_data_dir": "",  # '' = TFDS's default directory
        "tfds_image_key": "image",
        "tfds_label_key": "label",
    })


def augment_config() -> ml_collections.ConfigDict:
    """Host-side clip augmentation and on-device FAME masks / scene mix / BE / mixup (REFERENCE §6-§7).
    Owned by devias_jax/data/augment.py and devias_jax/masks.py. Defaults: official DEVIAS UCF-101."""
    return ml_collections.ConfigDict({
        # host side (tf.data)
        "crop_area": (0.08, 1.0),  # random resized crop: area fraction range
        "crop_aspect": (3 / 4, 4 / 3),  # and aspect-ratio range
        "flip": True,  # horizontal flip with p=0.5 (turn off for Something-Something)
        "rand_augment_m": 7.0,  # RandAugment 'rand-m7-n4-mstd0.5-inc1', the same ops on every frame
        "rand_augment_n": 4,  # 0 disables RandAugment
        "rand_augment_mstd": 0.5,
        "rand_augment_prob": 0.5,  # probability of each chosen op
        "colour_jitter": 0.0,  # the paper's tables list 0.4, but VideoMAE-style loaders drop it with RandAugment
        # on device (devias_jax/masks.py)
        "fame_beta": 0.3,  # foreground fraction of the pseudo human mask (0.5 K400/HVU)
        "fame_blur_size": 0,  # Gaussian kernel size; 0 = floor(0.1 * crop) made odd
        "fame_official_blur": False,  # official quirk: blur sized for a 112 crop at any crop (g=11)
        "scene_mix_prob": 0.4,  # rho (0.8 K400, 0.25 HVU); 0 disables scene mix
        # the background clip as it is, its own actor included (official) / 'inpaint': its own FAME
        # foreground filled from the background around it (masks.inpaint_foreground) / 'still': one
        # random frame of it repeated over time, so its own actor does not move
        "scene_mix_background": "clip",
        # the mixed clip's action target: clip i's label (official) / 'shared': the background clip's
        # actor, where it stays visible, gets its share of the label (masks.background_actor_share)
        "scene_mix_action": "foreground",
        # the background clip: a random other clip of the (per-device) batch (official) / 'overlap': the
        # other clip whose own FAME foreground the pasted one hides best (masks.overlap_partners)
        "scene_mix_partner": "random",
        # fraction of training over which the scene-mix probability ramps linearly from 0 to
        # scene_mix_prob (0: the full probability from the first step, as the paper)
        "scene_mix_ramp": 0.0,
        "background_erase_max": 0.0,  # BE lambda ~ U[0, max) (0.3 for the BE baseline); 0 disables
        "mixup_alpha": 0.0,  # One-Token recipe: 0.8
        "cutmix_alpha": 0.0,  # One-Token recipe: 1.0
        "mixup_switch_prob": 0.5,  # probability of cutmix when both are on
        "mixup_prob": 1.0,  # (label smoothing of the soft targets: config.loss.label_smoothing)
        "random_erase_prob": 0.0,  # One-Token recipe: 0.25
        # groups the on-device mixing permutes within (scene mix is per device batch in the official
        # code); 0 = one group per device on the batch axes
        "mix_groups": 0,
    })


def train_config() -> ml_collections.ConfigDict:
    """Loop, batch and durations (REFERENCE §8). Durations: `*_epochs` or `*_steps`, -1 = unset."""
    return ml_collections.ConfigDict({
        "batch_size": 96,  # global: 12 per GPU x 8 in the official recipe
        "num_epochs": 100,
        "num_steps": -1,  # overrides num_epochs when >= 0
        "log_every_steps": 20,
        "eval_every_epochs": 5,
        "eval_every_steps": -1,
        "checkpoint_every_steps": 1000,
        "checkpoint_every_epochs": -1,
        "plot_curves": True,
    })


def optim_config() -> ml_collections.ConfigDict:
    """AdamW with layer-wise lr decay (REFERENCE §8); lr values are per 256 clips and scaled."""
    return ml_collections.ConfigDict({
        "base_lr": 5e-4,
        "min_lr": 1e-6,
        "warmup_epochs": 5,
        "warmup_steps": -1,
        "weight_decay": 0.05,
        "b1": 0.9,
        "b2": 0.999,
        "eps": 1e-8,
        "layer_decay": 0.75,
        "slot_lr_scale": 0.1,  # replaces the layer scale for every slot-module parameter
        "slot_param_regex": r"^slot_attention/",
        "no_decay_regex": r"(^|/)(bias|q_bias|v_bias|cls_token|suffix_token|pos_embed)$",
        "clip_grad_norm": 0.0,  # 0 = off (official: off)
        "update_freq": 1,  # gradient accumulation steps
    })


def sharding_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "num_devices": 0,  # devices in the mesh: 0 = all; n = the first n (per process: all of them)
        "fsdp": 1,  # size of the fsdp mesh axis; -1 = all devices; the data axis takes the rest
        "fsdp_min_size": 2 ** 16,  # smaller parameters stay replicated under FSDP
        "param_rules": [],  # [(regex, 'replicated' | 'fsdp')], first match wins; empty = by `fsdp`
    })


def distributed_config() -> ml_collections.ConfigDict:
    """Multi-host: explicit coordinator settings, or auto-detection on TPU pods / SLURM / Open MPI."""
    return ml_collections.ConfigDict({
        "auto": True,
        "coordinator_address": "",
        "num_processes": 1,
        "process_id": -1,
        "local_device_ids": "",
    })


def checkpoint_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "keep": 2,  # latest checkpoints kept
        "keep_best": 1,  # best checkpoints kept by eval.best_metric
        "async_save": True,
        # init_from: parameters matching this regex start from scratch when the checkpoint's shape
        # differs (a head for another class count); every other mismatch is an error.
        "init_skip": r"(^|/)(head|action_head|scene_head)/",
    })


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


def eval_config() -> ml_collections.ConfigDict:
    """Evaluation suites (name -> suite(list, tasks, group)); seen / unseen numbers average their group."""
    return ml_collections.ConfigDict({
        "suites": ml_collections.ConfigDict(),
        "only": "",  # comma-separated suite names to run ('' = all), e.g. --config.eval.only=val,hat_far
        "batch_size": 8,  # videos per global batch (each with temporal x spatial views)
        "best_metric": "harmonic_mean",  # keeps the best checkpoint by this report key
        "scene_topk": 5,  # the paper's scene metric is top-5 (of 365); 1 for small scene vocabularies
        # headline name -> {action_seen, action_unseen, scene_seen, scene_unseen: comma-separated suites};
        # empty: each headline averages the suites of its group that score its task
        "tables": ml_collections.ConfigDict(),
        "table": "",  # the table reported as the headline ('' = the first of `tables`)
    })


def analysis_config() -> ml_collections.ConfigDict:
    """Disentanglement analysis (REFERENCE §9; devias_jax/analysis.py, --mode=knn / retrieval,
    scripts/extract_features.py, scripts/visualize.py). Lists are relative to data.root."""
    return ml_collections.ConfigDict({
        "knn_train_list": "",  # the gallery; '' = data.train_list
        "knn_test_list": "",  # the queries; '' = the list of the first (by name) evaluation suite in group 'seen'
        "knn_ks": (10, 20),
        "knn_temperature": 0.07,  # DINO-style vote weight exp(cosine / T)
        "action_feature": "action_feature",  # model outputs used as the action / scene features ('gap' =
        "scene_feature": "scene_feature",  # mean of the backbone tokens)
        "retrieval_features": "action_feature,scene_feature",  # each scored against action and scene labels
        "retrieval_ks": (1, 5, 10, 20, 50),
        "batch_size": 0,  # videos per global batch while extracting features; 0 = eval.batch_size
        "cache_features": True,  # keep extracted features in <workdir>/eval/features (keyed by checkpoint)
        "embedding": "umap",  # umap (umap-learn) / tsne (scikit-learn)
        "embedding_list": "",  # '' = knn_test_list
        "embedding_max_points": 3000,  # a random subset of a longer list is embedded
        "attention_list": "",  # '' = knn_test_list; its first attention_videos videos are drawn
        "attention_videos": 4,
        "attention_frames": 8,  # frames shown per video
        "slot_list": "",  # slot-role frequency over this list; '' = knn_test_list
    })


def base_config(args: dict[str, Any]) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.method = args["method"]
    config.seed = 0
    config.model = model_config(args["variant"])
    config.loss = loss_config(config.model)
    config.data = data_config()
    config.augment = augment_config()
    config.train = train_config()
    config.optim = optim_config()
    config.sharding = sharding_config()
    config.distributed = distributed_config()
    config.checkpoint = checkpoint_config()
    config.eval = eval_config()
    config.analysis = analysis_config()
    # One value under two names: the data's class counts are the model's (set either one).
    config.data.num_actions = config.model.get_ref("num_classes")
    config.data.num_scenes = config.model.get_ref("num_scenes")
    # loss.official_compat is the one official switch: the optimizer's layer-id rule, the RandAugment fill
    # (128, 128, 128), the weight init (timm's absolute truncation bounds) and the downstream head's
    # variant follow it; setting one of
    # them on its own cuts its link and leaves the switch as it was
    official = config.loss.get_ref("official_compat")
    config.optim.official_layer_ids = follows(official, bool, bool)
    config.augment.official_fill = follows(official, bool, bool)
    config.model.init_bounds = follows(official, lambda on: "absolute" if on else "std", str)
    config.model.fusion_variant = follows(official, lambda on: "official" if on else "default", str)
    config.init_from = ""  # converted directory or PyTorch file to start from (after resume)
    return config


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


def build(arg: str | None, recipe: Callable[[ml_collections.ConfigDict, dict[str, Any]], None] | None = None,
          defaults: dict[str, Any] | None = None) -> ml_collections.ConfigDict:
    """Base config -> recipe edits -> method edits -> smoke -> locked."""
    args = parse_arg(arg, defaults)
    config = base_config(args)
    if recipe is not None:
        recipe(config, args)
    method, *variants = args["method"].split("+")
    if method not in METHODS:
        raise ValueError(f"config argument method={args['method']!r}; expected one of {sorted(METHODS)}, "
                         f"optionally with +{'/+'.join(VARIANTS)}")
    METHODS[method](config)
    if method != "devias":
        config.augment.scene_mix_prob = 0.0  # the recipes' rho is DEVIAS's; baselines mix only with +fame
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"config argument method={args['method']!r}: unknown variant '+{variant}'; "
                             f"expected one of {['+' + v for v in VARIANTS]}")
        VARIANTS[variant](config)
    if args["smoke"]:
        smoke(config)
    config.lock()
    return config


def _fame_variant(config: ml_collections.ConfigDict) -> None:
    """+fame: FAME scene mixing as plain augmentation (beta = rho = 0.5, supplementary Tables 19-20)."""
    config.augment.update(fame_beta=0.5, scene_mix_prob=0.5)


def _be_variant(config: ml_collections.ConfigDict) -> None:
    """+be: Background Erasing, lambda ~ U[0, 0.3) (supplementary Tables 19-20)."""
    config.augment.background_erase_max = 0.3


def _aug_variant(config: ml_collections.ConfigDict) -> None:
    """+aug: the VideoMAE recipe's mixup 0.8 / cutmix 1.0 / label smoothing 0.1 / random erasing 0.25
    (Naive Action ViT w/ Aug., supplementary Table 17)."""
    config.augment.update(mixup_alpha=0.8, cutmix_alpha=1.0, random_erase_prob=0.25)
    config.loss.label_smoothing = 0.1


# method variants: '--config=...:method=two_token+fame'
VARIANTS: dict[str, Callable[[ml_collections.ConfigDict], None]] = {
    "fame": _fame_variant, "be": _be_variant, "aug": _aug_variant}


@register_method("vit")
def _vit(config: ml_collections.ConfigDict) -> None:
    """A plain VideoMAE classifier (mean pooling + fc_norm + head)."""
    config.model.name = "vit"


# --- DEVIAS and its baselines (REFERENCE §3-§5, §9; devias_jax/models/devias.py, baselines.py) ---


@register_method("devias")
def _devias(config: ml_collections.ConfigDict) -> None:
    """DEVIAS: backbone -> slot attention -> unified head + action mask decoder; matching + L_DE/AMD/AG/cos."""
    config.model.name = "devias"
    config.model.pooling = "none"


@register_method("one_token")
def _one_token(config: ml_collections.ConfigDict) -> None:
    """One-Token baseline: pooled feature -> separate action and scene heads."""
    config.model.name = "one_token"
    config.model.unified_head = False


@register_method("one_token_unified")
def _one_token_unified(config: ml_collections.ConfigDict) -> None:
    """One-Token with a unified C_a + C_s head trained with L_DE (supplementary Table 13)."""
    config.model.name = "one_token"
    config.model.unified_head = True


@register_method("two_token")
def _two_token(config: ml_collections.ConfigDict) -> None:
    """Two-Token baseline: class token -> action head, appended scene token -> scene head."""
    config.model.name = "two_token"
    config.model.pooling = "none"
    config.model.unified_head = False


@register_method("two_token_unified")
def _two_token_unified(config: ml_collections.ConfigDict) -> None:
    """Two-Token with a unified C_a + C_s head trained with L_DE (supplementary Table 13)."""
    config.model.name = "two_token"
    config.model.pooling = "none"
    config.model.unified_head = True


@register_method("action_vit")
def _action_vit(config: ml_collections.ConfigDict) -> None:
    """Naive Action ViT: a VideoMAE classifier on action labels."""
    config.model.name = "action_vit"


@register_method("scene_vit")
def _scene_vit(config: ml_collections.ConfigDict) -> None:
    """Naive Scene ViT: a VideoMAE classifier on scene labels (ground truth or the teacher's argmax)."""
    config.model.name = "scene_vit"


@register_method("devias_downstream")
def _devias_downstream(config: ml_collections.ConfigDict) -> None:
    """Transfer from DEVIAS: backbone + slots with a concat (or GAP) fusion head on num_classes targets."""
    config.model.name = "devias_downstream"
    config.model.pooling = "none"

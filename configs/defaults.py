"""Every config field with its default, written once: the sections of a run config and the complete
default config the recipes start from (`run_config(variant)`). A recipe (configs/<dataset>.py) then sets what
its run needs; the method's settings come from its entry in devias_jax/methods.py (common.finish).

Durations are written as `*_epochs` or `*_steps`, one of the two per duration (the other -1); the
trainer turns them into steps. Each module reads its section's fields from here; none keeps its own
defaults for them.
"""

from __future__ import annotations

import ml_collections

from configs.common import follows


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
        "head_init_scale": 0.001,
        "head_dropout": 0.0,
        # trunc_normal(0.02) of every Linear and learned token cut at +-2 std (JAX's convention, ours) or
        # 'absolute': at +-2 as timm does in the official code, an untruncated N(0, 0.02^2) in effect.
        # Follows loss.official_compat (run_config) unless set on its own.
        "init_bounds": "std",
        "dtype": "float32",  # compute dtype: float32 / bfloat16 / float16
        "remat": False,
        "attention_impl": "auto",  # auto / xla / cudnn
        # Class counts, one name each (the data pipeline checks labels against them too). num_actions: the
        # head of a plain classifier (vit / action_vit / devias_downstream), C_a of DEVIAS and the baselines.
        "num_actions": 101,
        "num_scenes": 365,  # C_s: Places365 teacher classes; HVU uses its own scene vocabulary
        # --- DEVIAS and baselines
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
        # default / official (the authors' head: per-slot LayerNorms, slots picked per clip by the source's
        # frozen unified head, whose action classes are these). Follows loss.official_compat (run_config).
        "fusion_variant": "default",
        "source_num_actions": 400,
        "action_slot_index": 0,
        "scene_slot_index": 1,
    })
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
        "scene_source": "teacher",  # list (third column) / teacher (online scene model) / none
        "frame_stride": 4,  # clips are config.model.num_frames frames, cropped to config.model.img_size
        "short_side": 0,  # test-time short-side resize; 0 = config.model.img_size
        "decode_short_side": 0,  # >0: decord scales frames whose short side is larger while decoding
        # >0: keep up to this many MiB of decoded training videos in memory (each decoded once, then
        # indexed; the same frames as without it); for training sets small enough, such as the demo's
        "decode_cache_mb": 0,
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
    """Loop, batch and durations (REFERENCE §8). Each duration in `*_epochs` or `*_steps`, the other -1."""
    return ml_collections.ConfigDict({
        "batch_size": 96,  # global: 12 per GPU x 8 in the official recipe
        "num_epochs": 100,
        "num_steps": -1,  # give num_epochs or num_steps (the other -1)
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


def run_config(variant: str = "B") -> ml_collections.ConfigDict:
    """The complete default run config: every section above, the official switch's links, no method yet
    (common.finish sets it)."""
    config = ml_collections.ConfigDict()
    config.method = ""  # the recipe's `method=` argument (common.finish)
    config.seed = 0
    config.model = model_config(variant)
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

"""Downstream transfer from DEVIAS (REFERENCE §9 Table 5; supplementary F.3, Tables 11 and 23).

  python main.py --config=configs/downstream.py:dataset=diving48,fusion=concat --workdir=runs/down/diving48 \
      --config.data.root=/datasets/diving48 --config.init_from=runs/k400_devias

`init_from` is the Kinetics-400 DEVIAS source: a trainer workdir (configs/kinetics400.py:method=devias), a
directory from scripts/convert_checkpoint.py or the authors' PyTorch file. The backbone and the slot
attention are loaded; DEVIAS's mask decoder is not used (nor its unified head, except by the official
variant below) and the fusion head starts fresh (the run prints what was loaded, missing and unused). The model must match the source's
(ViT-B, K = 2 slots, 8 slot iterations for Kinetics-400).

Arguments: dataset=diving48|ssv2|ucf101|activitynet (class count, lists, flip) and fusion=concat|gap:
"concat" projects the action and scene slots (model.action_slot_index / scene_slot_index: fixed roles,
check them against the source's slot assignment) to D/2 each, LayerNorm, concatenation, head; "gap"
averages the backbone tokens (no slots). Lists are 'path label' relative to data.root: train.txt and
val.txt; SSv2 uses its first 88 classes (labels 0-87; Table 5): keep those lines of the official lists,
e.g. `awk '$2 < 88' train.txt > train_88.txt` (same for val), and no flip (left/right matters).

Under `--config.loss.official_compat=True` the run is the authors' downstream model and command
(`model.fusion_variant=official`, devias_jax/models/devias.py): a LayerNorm on each slot, the slots picked
per clip by the source's unified head (loaded from `init_from`, D -> 400 + 365 for Kinetics-400
(`model.source_num_actions`), never trained), the scene slot through the action projection; and, for
UCF-101 / ActivityNet only, the LayerNorm on the concatenation (`model.fusion_norm`; off for Diving48 and
SSv2), head dropout 0.5, drop path 0.2 and min lr 1e-5 (their commands; Table 23 lists drop path 0.1).

Table 23: AdamW, base lr 5e-4 (x global batch / 256), weight decay 0.05, 12 per GPU x 8, drop path 0.1,
flip (not SSv2), layer decay 0.75, cosine, warmup 5, 50 epochs; no mixup / cutmix / random erasing;
cross-entropy with label smoothing 0.1. Colour jitter: Table 23 lists 0.4, which VideoMAE-style video
loaders ignore when RandAugment is on (as in every recipe here); --config.augment.colour_jitter=0.4 adds it.
Expected top-1 (Tables 5 / 11), concat / GAP: Diving48 84.4 / 83.1, SSv2 75.2 / 75.3, UCF-101 98.4 / 97.8,
ActivityNet 84.5 / 83.1.
"""

from configs import common, defaults

# dataset -> (classes, training list, validation list, horizontal flip)
DATASETS = {
    "diving48": (48, "train.txt", "val.txt", True),
    "ssv2": (88, "train_88.txt", "val_88.txt", False),
    "ucf101": (101, "train.txt", "val.txt", True),
    "activitynet": (200, "train.txt", "val.txt", True),
}
FUSIONS = ("concat", "gap")
# The authors' commands for these two add the input LayerNorm, fc dropout 0.5, drop path 0.2, min lr 1e-5
WITH_INPUT_NORM = ("ucf101", "activitynet")


def get_config(arg=None):
    args = common.parse_arg(arg, {**common.DEFAULT_ARGS, "method": "devias_downstream", "dataset": "diving48", "fusion": "concat"})
    config = defaults.run_config(args["variant"])  # every field with its default (configs/defaults.py)
    dataset, fusion = args["dataset"], args["fusion"]
    if dataset not in DATASETS:
        raise ValueError(f"config argument dataset={dataset!r}; expected one of {sorted(DATASETS)}")
    if fusion not in FUSIONS:
        raise ValueError(f"config argument fusion={fusion!r}; expected one of {list(FUSIONS)}")
    num_classes, train_list, val_list, flip = DATASETS[dataset]
    config.model.update(num_actions=num_classes, fusion=fusion, slot_iterations=8)
    # official_compat: the authors' per-dataset head settings (read lazily, so the flag may come later)
    official = config.loss.get_ref("official_compat")
    authors = dataset in WITH_INPUT_NORM
    config.model.fusion_norm = common.follows(official, lambda on: authors or not on, bool)
    config.model.head_dropout = common.follows(official, lambda on: 0.5 if on and authors else 0.0, float)
    config.model.drop_path_rate = common.follows(official, lambda on: 0.2 if on and authors else 0.1, float)
    config.data.update(train_list=train_list, scene_source="none")
    config.augment.update(flip=flip, colour_jitter=0.0, scene_mix_prob=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
                          random_erase_prob=0.0)
    config.loss.label_smoothing = 0.1
    config.train.update(batch_size=96, num_epochs=50)
    config.optim.update(base_lr=5e-4, warmup_epochs=5, layer_decay=0.75, weight_decay=0.05)
    config.optim.min_lr = common.follows(official, lambda on: 1e-5 if on and authors else 1e-6, float)
    # the official variant's unified head only picks slots: no weight decay either, so it stays as loaded
    config.optim.no_decay_regex = config.optim.no_decay_regex + "|^head/"
    config.eval.best_metric = "action_seen"
    config.eval.suites = {dataset: common.suite(val_list, "action", "seen")}
    return common.finish(config, args)  # the method's settings (devias_jax/methods.py), +variants, smoke

"""The Places365 scene teacher (REFERENCE §8, supplementary §B and Table 15): a class-token VideoMAE ViT-B
with a 365-way head, trained on Places365 images each repeated in time to a clip of model.num_frames.

  # Places365-Standard "easyformat" folders: <root>/train/<class>/*.jpg, <root>/val/<class>/*.jpg
  python main.py --config=configs/places365_scene.py --workdir=runs/places365_scene \
      --config.data.root=/datasets/places365_standard
  # or a TFDS copy prepared once: tfds build places365_small --file_format=array_record
  python main.py --config=configs/places365_scene.py:source=tfds --workdir=runs/places365_scene \
      --config.data.tfds_data_dir=/datasets/tensorflow_datasets

The workdir (or a converted copy of the authors' teacher: scripts/convert_checkpoint.py with this config)
is what `--config.loss.teacher.checkpoint` and scripts/pseudo_scene_labels.py take. The teacher's clip
geometry must match the student's (16 frames of 224 here, as every video recipe).

Table 15: AdamW, base lr 5e-4 (per 256, x batch x accumulation), wd 0.05, 32 per GPU x 8, update
frequency 2, drop path 0.1, label smoothing 0.1, flip, layer decay 0.65, cosine, warmup 5, 100 epochs.
The paper starts from an ImageNet-1k MAE ViT-B (`--config.init_from`, its 2-D patch embedding needs
inflating to 2x16x16 tubelets first) and also lists mixup 0.8 / cutmix 1.0: the trainer's mixup mixes
action targets only, so it is off here (see config_validation).
Expected: the paper reports no Places365 accuracy for its teacher (the report gives top-1 and top-5).
"""

from configs import common, defaults

SOURCES = {
    "image_folder": {"train_list": "train", "val_list": "val"},
    "tfds": {"train_list": "train", "val_list": "validation", "tfds_name": "places365_small"},
}


def get_config(arg=None):
    args = common.parse_arg(arg, {**common.DEFAULT_ARGS, "method": "scene_vit", "source": "image_folder"})
    config = defaults.run_config(args["variant"])  # every field with its default (configs/defaults.py)
    if args["source"] not in SOURCES:
        raise ValueError(f"config argument source={args['source']!r}; expected one of {sorted(SOURCES)}")
    preset = dict(SOURCES[args["source"]])
    val_list = preset.pop("val_list")
    config.model.update(pooling="cls", num_prefix_tokens=1, num_scenes=365, drop_path_rate=0.1,
                        head_dropout=0.0)
    config.data.update(source=args["source"], image_task="scene", scene_source="list", **preset)
    config.augment.update(flip=True, colour_jitter=0.0, scene_mix_prob=0.0)
    config.loss.update(scene_target="label", label_smoothing=0.1)
    config.train.update(batch_size=256, num_epochs=100, eval_every_epochs=5)
    config.optim.update(base_lr=5e-4, min_lr=1e-6, warmup_epochs=5, layer_decay=0.65, weight_decay=0.05,
                        update_freq=2)
    config.eval.update(batch_size=64, best_metric="scene_seen_top1", scene_topk=5)
    config.eval.suites = {"places365_val": common.suite(val_list, "scene", "seen")}
    return common.finish(config, args)  # the method's settings (devias_jax/methods.py), +variants, smoke

"""The embedded default: a small ViT on the locally generated synthetic action/scene dataset
(devias_jax/data/synthetic.py; `bash scripts/demo.sh` generates it into data/synthetic).

  python main.py --config=configs/demo.py:method=devias --workdir=runs/demo/devias
  python main.py --config=configs/demo.py:method=two_token --workdir=runs/demo/two_token

The training split pairs each action with its "home" scene 90% of the time, so the scene is a
shortcut; val_unseen puts every action in other scenes and scene_only has no actor. Expected: DEVIAS
beats Two-Token on unseen action and on the harmonic mean (README, "The demo").
"""

from configs import common


def _recipe(config, args):
    model = config.model
    model.variant = "custom"
    model.update(embed_dim=96, depth=4, num_heads=4, num_frames=8, img_size=64, drop_path_rate=0.0,
                 slot_heads=4, slot_head_dim=32, slot_iterations=3, mask_decoder_dims=(128, 64))
    data = config.data
    data.update(root="data/synthetic", train_list="train.txt", num_actions=6, num_scenes=6,
                scene_source="list", frame_stride=4)
    config.augment.update(rand_augment_n=0, crop_area=(0.4, 1.0), fame_beta=0.3, scene_mix_prob=0.5)
    config.loss.scene_target = "label"
    config.train.update(batch_size=16, num_epochs=20, log_every_steps=15, eval_every_epochs=-1,
                        checkpoint_every_steps=-1, checkpoint_every_epochs=10)
    config.optim.update(base_lr=1e-3, min_lr=1e-5, warmup_epochs=2, layer_decay=1.0, weight_decay=0.05)
    config.eval.batch_size = 8
    config.eval.scene_topk = 1  # top-5 of 6 scenes says little
    config.eval.suites = {
        "val_seen": common.suite("val_seen.txt", "action,scene", "seen"),
        "val_unseen": common.suite("val_unseen.txt", "action,scene", "unseen"),
        "scene_only": common.suite("scene_only.txt", "scene", "unseen"),
    }


def get_config(arg=None):
    return common.build(arg, _recipe, defaults={**common.DEFAULT_ARGS, "method": "devias", "variant": "custom"})

"""The embedded default: a small ViT on the locally generated synthetic action/scene dataset.

  python main.py --config=configs/demo.py --workdir=runs/demo
"""

from configs import common


def _recipe(config, args):
    model = config.model
    model.variant = "custom"
    model.update(embed_dim=96, depth=4, num_heads=4, num_frames=8, img_size=64, drop_path_rate=0.0,
                 num_classes=6)


def get_config(arg=None):
    return common.build(arg, _recipe, defaults={**common.DEFAULT_ARGS, "variant": "custom"})

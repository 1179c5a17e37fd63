"""ucf101 recipe (REFERENCE §8-§9); the method is chosen with ':method=...'.

  python main.py --config=configs/ucf101.py:method=vit --workdir=runs/ucf101
"""

from configs import common


def _recipe(config, args):
    config.model.num_classes = 101


def get_config(arg=None):
    return common.build(arg, _recipe)

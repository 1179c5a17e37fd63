"""hvu recipe (REFERENCE §8-§9); the method is chosen with ':method=...'.

  python main.py --config=configs/hvu.py:method=vit --workdir=runs/hvu
"""

from configs import common


def _recipe(config, args):
    config.model.num_classes = 739


def get_config(arg=None):
    return common.build(arg, _recipe)

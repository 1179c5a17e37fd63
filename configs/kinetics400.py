"""kinetics400 recipe (REFERENCE §8-§9); the method is chosen with ':method=...'.

  python main.py --config=configs/kinetics400.py:method=vit --workdir=runs/kinetics400
"""

from configs import common


def _recipe(config, args):
    config.model.num_classes = 400


def get_config(arg=None):
    return common.build(arg, _recipe)

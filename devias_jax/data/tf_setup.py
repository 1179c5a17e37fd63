"""TensorFlow for the input pipeline, and nothing else: imported lazily, with every GPU hidden from it.

The only module that imports TensorFlow (the streams and the evaluation views ask it here), so the model,
the trainer and the benchmarks run without it, and it never takes accelerator memory from JAX.
"""

from __future__ import annotations

import os
import threading

_TF = None
_LOCK = threading.Lock()


def import_tf():
    """TensorFlow with every GPU hidden from it (call before any other TensorFlow use)."""
    global _TF
    with _LOCK:
        if _TF is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf  # the one place TensorFlow loads, after hiding the GPUs from it

            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:  # devices already initialised: only fine if none is a GPU
                pass
            if tf.config.get_visible_devices("GPU"):
                raise RuntimeError("TensorFlow was initialised with a visible GPU before devias_jax.data "
                                   "could hide it; import devias_jax.data before using TensorFlow")
            _TF = tf
    return _TF


def dataset_options(workers: int):
    """tf.data options every stream uses: deterministic order, a private pool of `workers` threads."""
    tf = import_tf()
    options = tf.data.Options()
    options.deterministic = True
    options.threading.private_threadpool_size = max(2, workers)
    options.threading.max_intra_op_parallelism = 1
    options.experimental_optimization.map_parallelization = True
    return options

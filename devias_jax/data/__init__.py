"""Video input: annotation lists, decoding, the tf.data streams and the synthetic dataset; image datasets
as clips (images.py: config.data.source = 'image_folder' / 'tfds', the scene teacher's Places365).

`train_batches` / `eval_batches` (devias_jax.data.pipeline) are the trainer's entry points; importing
this package does not import TensorFlow (only the streams do, with every GPU hidden from it).
"""

# No `from __future__ import annotations` here: it would shadow the `annotations` submodule.


def train_batches(config, *, global_batch_size: int, process_index: int, process_count: int, seed: int,
                  start_step: int = 0):
    """See devias_jax.data.pipeline.TrainStream."""
    from devias_jax.data import pipeline

    return pipeline.train_batches(config, global_batch_size=global_batch_size, process_index=process_index,
                                  process_count=process_count, seed=seed, start_step=start_step)


def eval_batches(config, list_path: str, *, batch_size: int, process_index: int, process_count: int):
    """See devias_jax.data.pipeline.EvalStream."""
    from devias_jax.data import pipeline

    return pipeline.eval_batches(config, list_path, batch_size=batch_size, process_index=process_index,
                                 process_count=process_count)


__all__ = ["train_batches", "eval_batches"]

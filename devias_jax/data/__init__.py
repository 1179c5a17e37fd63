"""Input: where samples come from (sources.py, the one choice by config.data.source), annotation lists,
decoding, augmentation, the tf.data streams (streams.py) and the synthetic dataset.

Importing this package does not import TensorFlow; only the streams and the evaluation views do, through
tf_setup.import_tf(), which hides every GPU from it.
"""

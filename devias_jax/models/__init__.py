"""The models: the VideoMAE ViT and its parts (vit.py), the disentangling encoder (slot_attention.py),
DEVIAS (devias.py), the baselines (baselines.py) and the heads (heads.py). Which model a config names,
and how it is built, trained and read from a checkpoint, is the registry's (devias_jax/methods.py)."""

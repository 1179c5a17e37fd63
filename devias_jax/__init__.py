"""devias-jax: DEVIAS (disentangled action and scene video representations) in JAX/Flax NNX."""

__version__ = "0.1.0"


def load_model(*args, **kwargs):
    """See devias_jax.inference.load_model (imported lazily so `import devias_jax` stays cheap)."""
    from devias_jax.inference import load_model as _load_model  # on use: keeps `import devias_jax` cheap

    return _load_model(*args, **kwargs)


__all__ = ["load_model", "__version__"]

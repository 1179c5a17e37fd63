"""Loading a recipe file outside absl: 'configs/ucf101.py:method=devias,smoke' -> locked ConfigDict."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags


def load_config(spec: str, overrides: dict[str, Any] | None = None) -> ml_collections.ConfigDict:
    """Imports the recipe file, calls get_config(arg), applies dotted overrides ({'model.dtype': ...})."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    configs_dir = os.path.dirname(os.path.abspath(path))
    root = os.path.dirname(configs_dir)
    if root not in sys.path:  # recipes import `configs.common`
        sys.path.insert(0, root)
    module_spec = importlib.util.spec_from_file_location(f"_devias_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg or None)
    for key, value in (overrides or {}).items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise KeyError(f"config key {key!r} does not exist")
        setattr(node, leaf, value)
    return config


def command_line_problems(argv: list[str]) -> list[str]:
    """Messages for a recipe that fails to build or `--config.a.b=...` keys it does not have."""
    return config_from_command_line(argv)[1]


def config_from_command_line(argv: list[str], default_spec: str | None = None
                             ) -> tuple[ml_collections.ConfigDict | None, list[str]]:
    """(the recipe of `--config=<spec>` (else `default_spec`) built once, problems): problems name a recipe
    that fails to build or `--config.a.b=...` keys it does not have. ml_collections reports both only as
    bare exceptions deep in flag parsing; checking them first lets an entry point fail with the recipe's
    own message or the full dotted key and the keys that exist. (None, []) without a spec."""
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), default_spec)
    keys = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    if spec is None:
        return None, []
    try:
        config = load_config(spec)
    except (ValueError, KeyError, FileNotFoundError) as error:
        return None, [f"cannot build config {spec!r}: {error}"]
    problems = []
    for key in keys:
        node = config
        for depth, part in enumerate(key.split(".")):
            if not hasattr(node, "keys") or part not in node:
                parent = "config" + "".join(f".{p}" for p in key.split(".")[:depth])
                known = sorted(node.keys()) if hasattr(node, "keys") else []
                problems.append(f"unknown config key 'config.{key}': {parent} has no '{part}'"
                                + (f" (it has: {', '.join(known)})" if known else ""))
                break
            node = node[part]
    return config, problems


def define_config_flag(argv: list[str], help_text: str, default_spec: str | None = None) -> list[str]:
    """For absl entry points, before app.run: builds the recipe named by `--config=` once (exits naming
    the problem when it fails or an override key does not exist) and defines the `config` flag holding
    it, so that absl applies the `--config.a.b=...` overrides to that one build. Returns argv without
    `--config=` for app.run. Without a spec, `--config` is an ordinary recipe-file flag (for --help and
    absl's own 'required' message)."""
    config, problems = config_from_command_line(argv[1:], default_spec)
    if problems:
        sys.exit("\n".join(problems))
    if config is None:
        config_flags.DEFINE_config_file("config", default_spec, help_text, lock_config=True)
        if default_spec is None:
            flags.mark_flag_as_required("config")
        return argv
    argv = [arg for arg in argv if not arg.startswith("--config=")]
    # sys_argv: the overrides are read from this argv, in which no --config= asks for another build
    config_flags.DEFINE_config_dict("config", config, help_text, lock_config=True, sys_argv=argv)
    return argv

"""Evaluation suites (config.eval.suites): each names a list, the tasks it scores and its group.

A suite is written in a recipe as `{"list": "hat/far.txt", "tasks": "action,scene", "group": "unseen"}`;
`tasks` may be a comma string or a tuple/list of names. `parse` turns config.eval.suites (restricted
to config.eval.only) into `Suite` records once, and every bad field fails here, naming the suite, the
key, the value and what is allowed, before anything is read or compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

TASKS = ("action", "scene")
GROUPS = ("seen", "unseen")
FIELDS = ("list", "tasks", "group")


class SuiteError(ValueError):
    """A malformed config.eval.suites entry or config.eval.only; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    list: str                 # list file (or image folder / TFDS split), relative to data.root
    tasks: tuple[str, ...]    # a subset of TASKS, in the order written
    group: str                # seen / unseen


def _tasks(name: str, value: Any) -> tuple[str, ...]:
    key = f"config.eval.suites.{name}.tasks"
    if isinstance(value, str):
        tasks = [t.strip() for t in value.split(",") if t.strip()]
    elif isinstance(value, (tuple, list)) and all(isinstance(t, str) for t in value):
        tasks = [t.strip() for t in value]
    else:
        raise SuiteError(f"{key}={value!r}; expected a comma string or a tuple of task names from {list(TASKS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise SuiteError(f"{key}={value!r}; expected one or more distinct task names from {list(TASKS)}, "
                         f"e.g. 'action,scene' or ('action', 'scene')")
    return tuple(tasks)


def _suite(name: str, entry: Any) -> Suite:
    key = f"config.eval.suites.{name}"
    if not hasattr(entry, "keys"):
        raise SuiteError(f"{key}={entry!r}; expected a dict with keys {list(FIELDS)} "
                         "(configs/common.py: suite(list, tasks, group))")
    fields = set(entry.keys())
    if fields != set(FIELDS):
        missing, extra = sorted(set(FIELDS) - fields), sorted(fields - set(FIELDS))
        raise SuiteError(f"{key} has keys {sorted(fields)}; expected exactly {list(FIELDS)}"
                         + (f" (missing {missing})" if missing else "") + (f" (unknown {extra})" if extra else ""))
    path = entry["list"]
    if not isinstance(path, str) or not path.strip():
        raise SuiteError(f"{key}.list={path!r}; expected a non-empty path (relative to config.data.root)")
    group = entry["group"]
    if group not in GROUPS:
        raise SuiteError(f"{key}.group={group!r}; expected one of {list(GROUPS)}")
    return Suite(name=name, list=path.strip(), tasks=_tasks(name, entry["tasks"]), group=group)


def parse(config: Any) -> dict[str, Suite]:
    """config.eval.suites restricted to config.eval.only ('' = all), by name, in sorted order."""
    evaluation = config.get("eval", {})
    entries = evaluation.get("suites", {}) or {}
    if not hasattr(entries, "keys"):
        raise SuiteError(f"config.eval.suites={entries!r}; expected a dict of name -> suite(list, tasks, group)")
    suites = {str(name): _suite(str(name), entries[name]) for name in entries.keys()}
    only_value = evaluation.get("only", "")
    if isinstance(only_value, (tuple, list)):
        only = [str(name).strip() for name in only_value if str(name).strip()]
    elif isinstance(only_value, str):
        only = [name.strip() for name in only_value.split(",") if name.strip()]
    else:
        raise SuiteError(f"config.eval.only={only_value!r}; expected comma-separated suite names")
    unknown = sorted(set(only) - set(suites))
    if unknown:
        raise SuiteError(f"config.eval.only names unknown suites {unknown}; the recipe has {sorted(suites)}")
    return {name: suites[name] for name in (only or sorted(suites))}

"""Evaluation suites (config.eval.suites): each names a list, the tasks it scores and its group.

A suite is written in a recipe as `{"list": "val.txt", "tasks": "action,scene", "group": "seen"}`;
`tasks` may be a comma string or a tuple/list of names. Optional keys (configs/common.py `suite`):

- `kind`          'list' (an annotation list, the default) or 'hat' (HAT splits composited on the fly:
                  `list` is a split pickle or a folder of `actionswap_*_<k>.pickle`, each split scored on
                  its own and the suite's number the unweighted mean of the splits, as the paper);
- `root`          where the list's paths (HAT: the release's frames) resolve, relative to data.root
                  ('' = data.root); SCUBA's three backgrounds share one list under three roots;
- `scene_labels`  'list' (the list's scene column) or 'teacher' (the frozen scene teacher's prediction
                  on the same test views: HAT and Scene-Only have no scene ground truth);
- `dataset`       HAT's file naming, 'ucf101' or 'kinetics' ('' = read from the root's path). `parse` turns config.eval.suites (restricted
to config.eval.only) into `Suite` records once, and every bad field fails here, naming the suite, the
key, the value and what is allowed, before anything is read or compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

TASKS = ("action", "scene")
GROUPS = ("seen", "unseen")
FIELDS = ("list", "tasks", "group")
OPTIONAL = {"kind": ("list", "hat"), "root": None, "scene_labels": ("list", "teacher"), "dataset": ("", "ucf101", "kinetics")}


class SuiteError(ValueError):
    """A malformed config.eval.suites entry or config.eval.only; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    list: str                 # list file (or image folder / TFDS split), relative to data.root
    tasks: tuple[str, ...]    # a subset of TASKS, in the order written
    group: str                # seen / unseen
    kind: str = "list"        # list / hat
    root: str = ""            # relative to data.root; '' = data.root
    scene_labels: str = "list"  # list / teacher
    dataset: str = ""         # HAT naming: ucf101 / kinetics; '' = from the root's path


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
    missing, extra = sorted(set(FIELDS) - fields), sorted(fields - set(FIELDS) - set(OPTIONAL))
    if missing or extra:
        raise SuiteError(f"{key} has keys {sorted(fields)}; expected {list(FIELDS)} and optionally {list(OPTIONAL)}"
                         + (f" (missing {missing})" if missing else "") + (f" (unknown {extra})" if extra else ""))
    optional = {}
    for field, allowed in OPTIONAL.items():
        if field not in fields:
            continue
        value = entry[field]
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            expected = f"one of {list(allowed)}" if allowed is not None else "a path string"
            raise SuiteError(f"{key}.{field}={value!r}; expected {expected}")
        optional[field] = value
    path = entry["list"]
    if not isinstance(path, str) or not path.strip():
        raise SuiteError(f"{key}.list={path!r}; expected a non-empty path (relative to config.data.root)")
    group = entry["group"]
    if group not in GROUPS:
        raise SuiteError(f"{key}.group={group!r}; expected one of {list(GROUPS)}")
    suite = Suite(name=name, list=path.strip(), tasks=_tasks(name, entry["tasks"]), group=group, **optional)
    if suite.kind == "hat" and "scene" in suite.tasks and suite.scene_labels != "teacher":
        raise SuiteError(f"{key}: a HAT suite has no scene ground truth; scoring 'scene' needs "
                         "scene_labels='teacher'")
    return suite


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


HEADLINES = ("action_seen", "action_unseen", "scene_seen", "scene_unseen")


def tables(config: Any) -> tuple[dict[str, dict[str, tuple[str, ...]]], str]:
    """config.eval.tables (name -> headline -> comma-separated suite names) checked against
    config.eval.suites, and the headline table's name (config.eval.table, '' = the first)."""
    evaluation = config.get("eval", {})
    entries = evaluation.get("tables", {}) or {}
    if not hasattr(entries, "keys"):
        raise SuiteError(f"config.eval.tables={entries!r}; expected a dict name -> {{headline: 'suite,suite'}}")
    known = set((evaluation.get("suites", {}) or {}).keys())
    parsed: dict[str, dict[str, tuple[str, ...]]] = {}
    for name in entries.keys():
        entry = entries[name]
        key = f"config.eval.tables.{name}"
        if not hasattr(entry, "keys") or set(entry.keys()) != set(HEADLINES):
            raise SuiteError(f"{key}: expected exactly the keys {list(HEADLINES)}")
        parsed[str(name)] = {}
        for headline in HEADLINES:
            value = entry[headline]
            names = tuple(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else ()
            unknown = sorted(set(names) - known)
            if not names or unknown:
                raise SuiteError(f"{key}.{headline}={value!r}; expected comma-separated names of "
                                 f"config.eval.suites {sorted(known)}" + (f" (unknown {unknown})" if unknown else ""))
            parsed[str(name)][headline] = names
    chosen = evaluation.get("table", "") or ""
    if chosen and chosen not in parsed:
        raise SuiteError(f"config.eval.table={chosen!r}; expected one of {sorted(parsed)}")
    return parsed, chosen

"""Prints the paper-style comparison table from several runs' <workdir>/eval/report.json.

  python -m scripts.compare_runs runs/demo/devias runs/demo/two_token
"""

from __future__ import annotations

import json
import os
import sys

from devias_jax.report import format_suites, format_table


def main(workdirs: list[str]) -> None:
    if not workdirs:
        sys.exit(__doc__)
    reports = {}
    for workdir in workdirs:
        path = os.path.join(workdir, "eval", "report.json")
        if not os.path.isfile(path):
            sys.exit(f"{path}: no evaluation report (train with --mode=train or evaluate with --mode=eval first)")
        with open(path) as handle:
            reports[os.path.basename(os.path.normpath(workdir))] = json.load(handle)
    for name, report in reports.items():
        print(f"{name}:\n{format_suites(report)}\n")
    print(format_table(reports))


if __name__ == "__main__":
    main(sys.argv[1:])

"""`chainrule flow` with no options, end to end, against its own budget of two minutes.

Runs the command as a user does (a fresh process, the default grid, all four documents into
a temporary folder) and prints its wall time, split into the study (measuring and training
the 24 networks) and the documents, which the command reports on stderr as it goes.

    python benchmarks/bench_flow.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET = 120.0


def command() -> list[str]:
    script = Path(sys.executable).with_name("chainrule")
    if script.exists():
        return [str(script)]
    found = shutil.which("chainrule")
    return [found] if found else [sys.executable, "-m", "chainrule"]


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        process = subprocess.Popen([*command(), "flow", "--out", out], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)  # fmt: skip
        studied = None
        for line in process.stderr:
            if line.startswith("chainrule flow: ") and "clipping on" in line:
                studied = time.perf_counter() - started
        stdout, _ = process.communicate()
        total = time.perf_counter() - started
        if process.returncode != 0:
            sys.exit(f"chainrule flow failed with exit code {process.returncode}")
        files = sum(1 for _ in Path(out).rglob("*") if _.is_file())
    print(f"cores: {os.cpu_count()}")
    print(stdout.strip().splitlines()[-1])
    if studied is not None:
        print(f"study (24 networks measured and trained, the clipping study): {studied:6.1f} s")
        print(f"documents ({files} files):                                {total - studied:6.1f} s")
    print(f"total: {total:.1f} s, {total / BUDGET:.2f} of the two-minute budget")


if __name__ == "__main__":
    main()

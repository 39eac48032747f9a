"""The same input gives byte-identical documents, whatever the process's hash seed.

Set and dict order of SymPy's symbols can follow Python's string hashing, which changes
from process to process; a document that depended on it would differ between two runs of
the same command. So two child processes with different PYTHONHASHSEED render the small
examples (every format) and an explanation with a Hessian, and print a digest of each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The examples small enough to render in seconds; the large ones are summaries built by the same code.
SMALL = ("mazur-2-2-2", "xor-2-2-1", "softmax-3-class", "relu-regression", "tanh-deep", "custom-formulas",
         "batchnorm-2-examples", "iris")

CHILD = """
import hashlib, sys
from chainrule.derive import derive
from chainrule.explain import explain
from chainrule.network import load
from chainrule.numeric import worked_example
from chainrule.render import render_documents
from chainrule.render.explanation import render_explanation
for name in sys.argv[1:]:
    d = derive(load(f"examples/{name}.toml"))
    for path, text in sorted(render_documents(d, worked_example(d), "out", name).items()):
        print(path.name, hashlib.sha256(text.encode()).hexdigest())
e = explain("x/(1+y**2) + relu(x*y)", order=2, at={"x": 1.0, "y": 2.0})
for fmt in ("html", "tex", "md", "json"):
    print("explain", fmt, hashlib.sha256(render_explanation(e, fmt).encode()).hexdigest())
"""


def test_documents_are_the_same_bytes_under_any_hash_seed() -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *SMALL],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    outputs = [child.communicate(timeout=600) for child in children]
    for child, (_, err) in zip(children, outputs):
        assert child.returncode == 0, err[-2000:]
    first, second = (out.splitlines() for out, _ in outputs)
    assert len(first) == 4 * len(SMALL) + 4
    assert [a for a, b in zip(first, second) if a != b] == []

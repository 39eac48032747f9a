"""How much the reverse walk saves, and what a ``chainrule derive`` process costs.

Two comparisons, each a ratio measured within this one run (absolute times vary by machine):

1. ``chainrule.derive`` of a depth-6, width-3 sigmoid network (72 parameters) against
   ``sympy.diff`` of its fully composed loss with respect to every parameter. The reverse
   walk differentiates only small local expressions; the baseline differentiates one large
   expression 72 times. Target: derive at least 300x faster.
   SymPy caches results for the whole process, so a repeated ``derive`` of the same network
   mostly looks up cached derivatives. Three derive times are shown: the cold first call,
   the best warm repeat (cache hits), and the best repeat after ``clear_cache()``, which is
   what a fresh call on a new network costs and the fairest match for the baseline (itself
   measured once, after ``clear_cache()``). The target is judged on the warm and cleared times.
2. Wall time of a whole ``chainrule derive`` process (built-in example, all four documents)
   against a process that only imports its dependencies. Target: at most 2.5x.

Run by hand: ``python benchmarks/bench_derive.py`` (a couple of minutes) or ``--quick``, which
differentiates every 7th parameter and extrapolates the baseline. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import sympy
from sympy.core.cache import clear_cache

import chainrule
from chainrule.graph import build_graph
from chainrule.numeric import compose

DERIVE_TARGET = 300.0  # derive at least this many times faster than sympy.diff
PROCESS_TARGET = 2.5  # a derive process at most this many times the bare imports
#: Coprime with the 12 parameters of each layer, so a quick sample holds weights and biases of every layer.
QUICK_STRIDE = 7


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def time_derive(net: chainrule.Network, repeats: int) -> tuple[float, float, float]:
    """Seconds of the cold first call, the best warm repeat and the best repeat on an empty cache."""
    cold = timed(lambda: chainrule.derive(net))
    warm = min(timed(lambda: chainrule.derive(net)) for _ in range(repeats))
    cleared = []
    for _ in range(repeats):
        clear_cache()
        cleared.append(timed(lambda: chainrule.derive(net)))
    return cold, warm, min(cleared)


def time_sympy_diff(net: chainrule.Network, stride: int) -> tuple[float, int, int]:
    """Seconds to diff the composed loss in every parameter (extrapolated from a sample if stride > 1)."""
    graph = build_graph(net)
    loss = compose(graph)[graph.loss]
    sample = graph.parameters[::stride]
    clear_cache()
    elapsed = timed(lambda: [sympy.diff(loss, p) for p in sample])
    return elapsed * len(graph.parameters) / len(sample), len(sample), len(graph.parameters)


def chainrule_command() -> tuple[list[str], str]:
    """The console script installed beside this interpreter, else the one on PATH, else ``-m``.

    The script beside ``sys.executable`` comes first: a ``chainrule`` on PATH may be a version
    manager's shim (pyenv's adds a few hundred ms of its own) or belong to another environment.
    """
    beside = Path(sysconfig.get_path("scripts")) / "chainrule"
    if beside.is_file():
        return [str(beside)], f"console script {beside}"
    on_path = shutil.which("chainrule")
    if on_path:
        return [on_path], f"console script {on_path} (from PATH)"
    return [sys.executable, "-m", "chainrule"], f"{sys.executable} -m chainrule (no console script found)"


def time_processes(runs: int) -> tuple[float, float, str]:
    """Median wall seconds of ``chainrule derive`` and of the bare imports, run alternately."""
    command, described = chainrule_command()
    baseline = [sys.executable, "-c", "import sympy, numpy, jinja2"]
    with tempfile.TemporaryDirectory() as out:
        derive = [*command, "derive", "--out", out]

        def run(args: list[str]) -> float:
            return timed(lambda: subprocess.run(args, check=True, stdout=subprocess.DEVNULL))

        run(derive), run(baseline)  # unreported: warm the OS file cache and __pycache__
        times = [(run(derive), run(baseline)) for _ in range(runs)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times), described


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"diff every {QUICK_STRIDE}th parameter and extrapolate")
    parser.add_argument("--repeats", type=int, default=7, help="derive repeats (best kept) (default: 7)")
    parser.add_argument("--runs", type=int, default=7, help="subprocess runs of each command (default: 7)")
    args = parser.parse_args()

    net = chainrule.Network(inputs=3, layers=[chainrule.Dense(3, "sigmoid")] * 6, loss="half_sse")
    print(f"Python {sys.version.split()[0]}, sympy {sympy.__version__}, chainrule {chainrule.__version__}")
    print("\n1. derive vs sympy.diff of the composed loss: 3 inputs, 6 x Dense(3, sigmoid), half_sse")
    cold, warm, cleared = time_derive(net, args.repeats)
    print(f"   chainrule.derive: cold first call {cold * 1e3:.1f} ms; best of {args.repeats}: "
          f"warm {warm * 1e3:.1f} ms, after clear_cache() {cleared * 1e3:.1f} ms")
    stride = QUICK_STRIDE if args.quick else 1
    diff, sampled, total = time_sympy_diff(net, stride)
    label = f"ESTIMATE from {sampled} of {total} parameters" if sampled < total else f"all {total} parameters, once"
    print(f"   sympy.diff: {diff:.1f} s ({label})")

    print("\n2. whole process: chainrule derive (default example, 4 formats) vs import sympy, numpy, jinja2")
    process, imports, described = time_processes(args.runs)
    print(f"   ran {described}; medians of {args.runs} alternating runs")
    print(f"   chainrule derive {process:.2f} s, imports only {imports:.2f} s")

    estimate = " (est.)" if sampled < total else ""
    rows = [
        ("derive warm, best", f"{warm * 1e3:.1f} ms", f"{diff:.1f} s{estimate}", f"{diff / warm:,.0f}x faster", ">= 300x faster", diff / warm >= DERIVE_TARGET),
        ("derive cleared cache, best", f"{cleared * 1e3:.1f} ms", f"{diff:.1f} s{estimate}", f"{diff / cleared:,.0f}x faster", ">= 300x faster", diff / cleared >= DERIVE_TARGET),
        ("derive cold first call", f"{cold * 1e3:.1f} ms", f"{diff:.1f} s{estimate}", f"{diff / cold:,.0f}x faster", "(shown only)", None),
        ("chainrule derive process", f"{process:.2f} s", f"{imports:.2f} s", f"{process / imports:.2f}x as long", "<= 2.5x", process / imports <= PROCESS_TARGET),
    ]
    header = ("measurement", "chainrule", "baseline", "ratio", "target", "met")
    table = [header] + [(name, ours, base, ratio, target, "" if met is None else "yes" if met else "NO")
                        for name, ours, base, ratio, target, met in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for row in table:
        print("  ".join(cell.rjust(w) if i in (1, 2, 3) else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if sampled < total:
        print(f"\n--quick: the sympy.diff baseline is extrapolated from {sampled} of {total} parameters.")


if __name__ == "__main__":
    main()

"""How fast a training step of chainrule's generated code is, next to NumPy by hand, PyTorch and JAX.

Everything is measured on one network and one data set: digits, 64-32-10 (tanh hidden layer,
softmax output, cross-entropy), float64, batches of 64 taken from the training part in a
fixed order. Each ratio is measured within this one run (absolute times vary by machine):

1. chainrule's generated ``loss_and_grad`` against backprop written by hand in vectorized
   NumPy (the same math, float64, returning the loss and the four gradients).
   Target: at most 1.1x the hand-written time.
2. PyTorch eager on the CPU: a functional forward pass over parameters with
   ``requires_grad``, then ``torch.autograd.grad``. Target: chainrule at least 3x faster.
3. JAX: ``jax.jit(jax.value_and_grad(loss))`` with float64 enabled, if JAX is installed.
   No target.
4. chainrule's gradient/forward cost: time of ``loss_and_grad`` / time of ``loss``.
   Target: at most 1.6.

Before any timing, every implementation's loss and gradients must agree with chainrule's to
1e-10 on every batch, so that a broken comparison cannot produce a fast number. The
implementations are then interleaved in rounds of the same steps over the same batches, so
that machine noise hits all of them alike; each one's time is the median over the rounds.

The script also times two one-off costs for the same network: ``chainrule.model.compile``
(target under 1 s) and the scalar derivation, ``chainrule.derive`` plus ``lambdify_graph`` of
every parameter's gradient (target under 3 s).

Run by hand: ``python benchmarks/bench_train.py`` (about a minute) or ``--quick``. Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from sympy.core.cache import clear_cache

import chainrule
import chainrule.model
from chainrule.datasets import load_dataset
from chainrule.derive import derive
from chainrule.graph import parameter_names
from chainrule.network import Dense, Network
from chainrule.numeric import lambdify_graph, leaf_symbols

HAND_TARGET = 1.1  # chainrule at most this many times the hand-written NumPy time
TORCH_TARGET = 3.0  # PyTorch eager at least this many times chainrule's time
GRAD_FORWARD_TARGET = 1.6  # loss_and_grad at most this many times loss
COMPILE_TARGET = 1.0  # seconds
DERIVE_TARGET = 3.0  # seconds
AGREE = 1e-10  # largest difference allowed between implementations, relative to the array's largest entry
BATCH = 64
PAUSE = 0.005  # seconds of rest before each timed block
SEED = 0
NAMES = ("W1", "b1", "W2", "b2")


def digits_network() -> Network:
    return Network(64, (Dense(32, "tanh"), Dense(10, "softmax")), "cross_entropy")


# --- NumPy by hand -------------------------------------------------------------------------


def hand_loss_and_grad(params, X, Y):
    """Backprop as one would write it: stable log-softmax, Δ = (P - Y)/n, tanh′ = 1 - A²."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    A1 = np.tanh(X @ W1.T + b1)
    Z2 = A1 @ W2.T + b2
    shifted = Z2 - Z2.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    total = E.sum(axis=1, keepdims=True)
    L = (Y * (np.log(total) - shifted)).sum() / n
    D2 = (E / total - Y) / n
    gW2 = D2.T @ A1
    gb2 = D2.sum(axis=0)
    D1 = (D2 @ W2) * (1 - A1**2)
    gW1 = D1.T @ X
    gb1 = D1.sum(axis=0)
    return float(L), {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}


def hand_loss(params, X, Y):
    """The forward pass and the loss of ``hand_loss_and_grad``, nothing else."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A1 = np.tanh(X @ W1.T + b1)
    Z2 = A1 @ W2.T + b2
    shifted = Z2 - Z2.max(axis=1, keepdims=True)
    L = (Y * (np.log(np.exp(shifted).sum(axis=1, keepdims=True)) - shifted)).sum() / X.shape[0]
    return float(L)


# --- PyTorch and JAX -----------------------------------------------------------------------


def torch_setup(params, batches):
    """PyTorch eager: (step, params, batches) in its own tensors, or None if torch is missing."""
    try:
        import torch
    except ImportError:
        return None
    tparams = tuple(torch.tensor(params[name], dtype=torch.float64, requires_grad=True) for name in NAMES)
    tbatches = [(torch.tensor(X), torch.tensor(Y)) for X, Y in batches]  # copies, made once

    def torch_loss_and_grad(p, X, Y):
        W1, b1, W2, b2 = p
        A1 = torch.tanh(X @ W1.T + b1)
        Z2 = A1 @ W2.T + b2
        L = -(Y * torch.log_softmax(Z2, dim=1)).sum() / X.shape[0]
        grads = torch.autograd.grad(L, p)
        return L.item(), dict(zip(NAMES, grads))

    return torch_loss_and_grad, tparams, tbatches, torch


def torch_threads(torch, threads: int):
    """A context manager that runs PyTorch on ``threads`` threads, then restores the count."""

    @contextlib.contextmanager
    def scope():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return scope


def jax_setup(params, batches):
    """jit(value_and_grad) in float64: (step, params, batches, jax), or None if JAX is missing."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss(p, X, Y):
        A1 = jnp.tanh(X @ p["W1"].T + p["b1"])
        Z2 = A1 @ p["W2"].T + p["b2"]
        return -(Y * jax.nn.log_softmax(Z2, axis=1)).sum() / X.shape[0]

    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def jax_loss_and_grad(p, X, Y):
        L, grads = jax.block_until_ready(value_and_grad(p, X, Y))
        return float(L), grads

    jparams = {name: jnp.asarray(params[name], dtype=jnp.float64) for name in NAMES}
    jbatches = [(jnp.asarray(X), jnp.asarray(Y)) for X, Y in batches]
    return jax_loss_and_grad, jparams, jbatches, jax


# --- agreement -----------------------------------------------------------------------------


def difference(value, reference) -> float:
    """max |value - reference| over the entries, relative to the reference's largest entry."""
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    if value.shape != reference.shape:
        raise SystemExit(f"shape mismatch: {value.shape} against {reference.shape}")
    error = float(np.max(np.abs(value - reference)))
    scale = float(np.max(np.abs(reference)))
    return error / scale if scale > 0 else error


def worst_difference(results, references) -> float:
    """Largest ``difference`` over batches, for the loss and every gradient."""
    worst = 0.0
    for (loss, grads), (ref_loss, ref_grads) in zip(results, references):
        worst = max(worst, difference(loss, ref_loss), *(difference(grads[n], ref_grads[n]) for n in NAMES))
    return worst


def scalar_check(model, derivation, function, params, x, y) -> float:
    """The scalar derivation's loss and gradients at one example, against chainrule's on a batch of 1."""
    graph = derivation.graph
    values = dict(zip(graph.inputs, x.tolist()))
    values.update(zip(graph.targets, y.tolist()))
    symbols = parameter_names(graph)
    for name, held in symbols.items():
        values.update(zip(np.ravel(np.array(held, dtype=object)), np.ravel(params[name]).tolist()))
    values.update(graph.constants)
    results = function(*(values[s] for s in leaf_symbols(graph)))
    loss, gradient = results[0], dict(zip(graph.parameters, results[1:]))
    scalar = {name: np.array([gradient[s] for s in np.ravel(np.array(held, dtype=object))], dtype=float).reshape(params[name].shape)
              for name, held in symbols.items()}
    return worst_difference([(loss, scalar)], [model.loss_and_grad(params, x[None], y[None])])


# --- one-off costs -------------------------------------------------------------------------


def derive_and_lambdify(network: Network):
    """The scalar derivation and a NumPy function of the leaves giving the loss and every gradient."""
    derivation = derive(network)
    graph = derivation.graph
    backward = [(a.name, a.value) for a in derivation.adjoints.values() if a.name is not None]
    exprs = [graph.loss] + [derivation.adjoints[p].value for p in graph.parameters]
    return derivation, lambdify_graph(graph, exprs, backward)


def time_cleared(call, repeats: int) -> tuple[float, float, object]:
    """Seconds of the first call and the best of ``repeats``, each after ``clear_cache()``; the last result."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        clear_cache()
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times[0], min(times), result


# --- per-step timing -----------------------------------------------------------------------


def run_rounds(entries, rounds: int, steps: int, count: int) -> dict[str, list[float]]:
    """Seconds per step of every entry in every round; the entries' order rotates each round.

    ``entries`` maps a name to (function, params, batches) or (function, params, batches, context),
    where ``context()`` is a context manager entered around each timed block (outside the timing);
    all batch lists hold the same data.
    Round r runs steps r·steps, r·steps + 1, ... of the cycle over the ``count`` batches, for
    every entry alike. The garbage collector is off while a block is timed, as in ``timeit``,
    and each block starts after a short rest.
    """
    names = list(entries)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = range(r * steps, (r + 1) * steps)
        for name in names[r % len(names):] + names[: r % len(names)]:
            function, params, batches, *context = entries[name]
            sequence = [batches[i % count] for i in order]
            scope = context[0]() if context else contextlib.nullcontext()
            gc.collect()
            # OpenMP workers (PyTorch's) spin for a while after their last task; on a small machine they
            # would slow down whichever implementation runs next. Let them go to sleep first.
            time.sleep(PAUSE)
            with scope:
                gc.disable()
                try:
                    start = time.perf_counter()
                    for X, Y in sequence:
                        function(params, X, Y)
                    elapsed = time.perf_counter() - start
                finally:
                    gc.enable()
            times[name].append(elapsed / steps)
    return times


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl is not installed)"
    pools = [p for p in threadpool_info() if "numpy" in p.get("filepath", "")] or threadpool_info()
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version') or ''} ({p.get('threading_layer', p.get('user_api'))}"
        f"{', ' + p['architecture'] if p.get('architecture') else ''}), {p.get('num_threads')} threads".replace("  ", " ")
        for p in pools
    ) or "none found by threadpoolctl"


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds of 100 steps, one derivation")
    parser.add_argument("--rounds", type=int, help="timed rounds (default: 30, --quick 7)")
    parser.add_argument("--steps", type=int, help="steps per implementation per round (default: 200, --quick 100)")
    parser.add_argument("--threads", type=int,
                        help="limit NumPy's BLAS, OpenMP and torch to this many threads (default: leave all as they are)")
    args = parser.parse_args()
    rounds = args.rounds or (7 if args.quick else 30)
    steps = args.steps or (100 if args.quick else 200)
    repeats = 1 if args.quick else 3

    network = digits_network()
    print(f"Python {sys.version.split()[0]}, NumPy {np.__version__}, chainrule {chainrule.__version__}")

    # One-off costs first, while nothing of this network is in SymPy's cache.
    compile_first, compile_best, model = time_cleared(lambda: chainrule.model.compile(network), 5)
    derive_first, derive_best, (derivation, scalar_function) = time_cleared(lambda: derive_and_lambdify(network), repeats)

    data = load_dataset("digits", outputs=10, targets="distribution", seed=SEED)
    count = data.X_train.shape[0] // BATCH  # full batches only: every step is a batch of 64
    batches = [(data.X_train[i * BATCH:(i + 1) * BATCH], data.Y_train[i * BATCH:(i + 1) * BATCH]) for i in range(count)]
    params = model.init_params(seed=SEED, scheme="glorot_uniform")

    torch_parts = torch_setup(params, batches)
    jax_parts = jax_setup(params, batches)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        if torch_parts:
            torch_parts[3].set_num_threads(args.threads)

    print(f"digits: {data.X_train.shape[0]} training rows, {count} batches of {BATCH} in a fixed order (the last "
          f"{data.X_train.shape[0] - count * BATCH} rows unused); network 64-32-10, tanh, softmax, cross_entropy; float64")
    print(f"NumPy BLAS: {blas_description()}")
    if torch_parts:
        torch = torch_parts[3]
        print(f"PyTorch {torch.__version__}: torch.get_num_threads() = {torch.get_num_threads()}"
              f"{' (set by --threads)' if args.threads else ' (default)'}")
    else:
        print("PyTorch: not installed")
    print(f"JAX: {'not installed' if jax_parts is None else jax_parts[3].__version__ + ', float64, ' + str(jax_parts[3].devices())}")

    # Agreement before timing: every implementation against chainrule, on every batch.
    reference = [model.loss_and_grad(params, X, Y) for X, Y in batches]
    agreement = {
        "NumPy by hand": worst_difference([hand_loss_and_grad(params, X, Y) for X, Y in batches], reference),
        "chainrule loss (forward)": max(difference(model.loss(params, X, Y), ref[0]) for (X, Y), ref in zip(batches, reference)),
        "NumPy by hand, forward": max(difference(hand_loss(params, X, Y), ref[0]) for (X, Y), ref in zip(batches, reference)),
        "scalar derivation (1 example)": scalar_check(model, derivation, scalar_function, params, *(a[0] for a in batches[0])),
    }
    for label, parts in (("PyTorch eager", torch_parts), ("JAX jit", jax_parts)):
        if parts:
            step, p, b = parts[:3]
            results = [step(p, X, Y) for X, Y in b]
            agreement[label] = worst_difference(
                [(loss, {n: np.asarray(g[n].detach() if hasattr(g[n], "detach") else g[n]) for n in NAMES}) for loss, g in results],
                reference)
    print("\nagreement with chainrule's loss_and_grad (largest difference over all batches and over the loss and"
          " 4 gradients, relative to each array's largest entry; must be <= 1e-10):")
    for label, worst in agreement.items():
        print(f"   {label}: {worst:.1e}")
    failed = [label for label, worst in agreement.items() if not worst <= AGREE]
    if failed:
        raise SystemExit(f"ABORT: {', '.join(failed)} differ from chainrule by more than {AGREE:g}; nothing timed")

    entries: dict[str, tuple[Callable, object, list]] = {
        "chainrule loss_and_grad": (model.loss_and_grad, params, batches),
        "NumPy by hand": (hand_loss_and_grad, params, batches),
        "chainrule loss (forward only)": (model.loss, params, batches),
        "NumPy by hand, forward only": (hand_loss, params, batches),
    }
    torch_one = None
    if torch_parts:
        entries["PyTorch eager, autograd.grad"] = torch_parts[:3]
        if torch_parts[3].get_num_threads() > 1:
            # Not a target: PyTorch's default threads wait for each other in every matrix product, and
            # on a busy machine a descheduled one costs milliseconds. One thread shows whether that happened.
            torch_one = "PyTorch eager, 1 thread"
            entries[torch_one] = (*torch_parts[:3], torch_threads(torch_parts[3], 1))
    if jax_parts:
        entries["JAX jit(value_and_grad)"] = jax_parts[:3]
    run_rounds(entries, 2, steps, count)  # warm-up, not reported (JAX compiles here)
    load_before = os.getloadavg()[0]
    times = run_rounds(entries, rounds, steps, count)
    load_after = os.getloadavg()[0]
    median = {name: statistics.median(t) for name, t in times.items()}

    ours = median["chainrule loss_and_grad"]
    hand_ratio = ours / median["NumPy by hand"]
    grad_forward = ours / median["chainrule loss (forward only)"]
    torch_ratio = median.get("PyTorch eager, autograd.grad", float("nan")) / ours

    print(f"\nper-step time, median of {rounds} interleaved rounds of {steps} steps (after 2 warm-up rounds); "
          f"1-minute load average {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs:\n")
    print("| implementation | µs per step | ratio to chainrule |")
    print("|---|---:|---:|")
    order = ["chainrule loss_and_grad", "NumPy by hand", "PyTorch eager, autograd.grad", "PyTorch eager, 1 thread",
             "JAX jit(value_and_grad)",
             "chainrule loss (forward only)", "NumPy by hand, forward only"]
    for name in order:
        if name in median:
            print(f"| {name} | {median[name] * 1e6:.1f} | {median[name] / ours:.2f}× |")
        elif name == "PyTorch eager, 1 thread":
            continue  # only when the default is more than one thread
        else:
            print(f"| {name} | not installed | — |")

    # The same ratios taken round by round: each pair ran milliseconds apart, so a change of load
    # between rounds cancels out. If they disagree with the ratios of medians, the run was noisy.
    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    checks = [("chainrule/hand", hand_ratio, paired("chainrule loss_and_grad", "NumPy by hand")),
              ("grad/forward", grad_forward, paired("chainrule loss_and_grad", "chainrule loss (forward only)"))]
    if torch_parts:
        checks.append(("torch/chainrule", torch_ratio, paired("PyTorch eager, autograd.grad", "chainrule loss_and_grad")))
    hand_paired = paired("NumPy by hand", "NumPy by hand, forward only")
    print("\nthe same ratios taken round by round, median: "
          + ", ".join(f"{label} {value:.3f}" for label, _, value in checks)
          + f" (hand-written grad/forward {hand_paired:.3f})")
    noisy = [label for label, medians, rounds_ in checks if abs(medians / rounds_ - 1) > 0.05]
    oversubscribed = bool(torch_one) and median["PyTorch eager, autograd.grad"] > 1.5 * median[torch_one]
    if oversubscribed:
        print(f"WARNING: PyTorch on its default {torch_parts[3].get_num_threads()} threads took "
              f"{median['PyTorch eager, autograd.grad'] / median[torch_one]:.1f}x as long as on 1 thread: its threads were "
              "oversubscribed (other processes hold the CPUs), so its ratio to chainrule says little about PyTorch.")
    if noisy:
        print(f"WARNING: noisy run: for {', '.join(noisy)} the ratio of medians and the round-by-round ratio differ by more "
              "than 5%; the machine's load changed during the run. Rerun on a quieter machine before trusting a verdict.")

    print("\ntargets:")
    print(f"- chainrule loss_and_grad / NumPy by hand: {hand_ratio:.3f}× (target ≤ {HAND_TARGET}×) {verdict(hand_ratio <= HAND_TARGET)}")
    if torch_parts:
        one = f"; on 1 thread {median[torch_one] / ours:.2f}×, no target" if torch_one else ""
        judged = "NO VERDICT (oversubscribed threads, see the warning)" if oversubscribed else verdict(torch_ratio >= TORCH_TARGET)
        print(f"- PyTorch eager / chainrule: chainrule {torch_ratio:.2f}× faster (target ≥ {TORCH_TARGET:g}×) {judged}{one}")
    else:
        print("- PyTorch eager / chainrule: not installed")
    print(f"- chainrule gradient/forward, loss_and_grad / loss: {grad_forward:.3f} (target ≤ {GRAD_FORWARD_TARGET}) "
          f"{verdict(grad_forward <= GRAD_FORWARD_TARGET)}")
    if jax_parts is None:
        print("- JAX jit: not installed (no target)")
    else:
        print(f"- JAX jit / chainrule: {median['JAX jit(value_and_grad)'] / ours:.2f}× (no target)")
    print(f"- compile (digits 64-32-10), after clear_cache(): first {compile_first * 1e3:.0f} ms, best of 5 "
          f"{compile_best * 1e3:.0f} ms (target < {COMPILE_TARGET:g} s, judged on the first) {verdict(compile_first < COMPILE_TARGET)}")
    print(f"- derive + lambdify_graph ({len(derivation.graph.parameters)} parameters), after clear_cache(): "
          f"first {derive_first:.2f} s" + (f", best of {repeats} {derive_best:.2f} s" if repeats > 1 else "")
          + f" (target < {DERIVE_TARGET:g} s, judged on the first) {verdict(derive_first < DERIVE_TARGET)}")


if __name__ == "__main__":
    main()

"""How fast a training step of a network with batch norm is, next to NumPy by hand and PyTorch eager.

One network and one data set: digits, 64-32-BN-10 (tanh hidden layer, batch norm over the
batch with learned γ and β, ε = 1e-5, momentum 0.1, softmax output, cross-entropy), float64,
batches of 64 taken from the training part in a fixed order. Every step runs in training
mode: batch statistics, the running statistics updated in place, the loss and the six
gradients. Each ratio is measured within this one run:

1. chainrule's generated ``loss_and_grad(params, X, Y, state=state)`` against the best
   backprop written by hand in vectorized NumPy (same math, float64, same running-statistics
   update). Target: at most 1.15x the hand-written time.
2. PyTorch eager on the CPU: ``F.batch_norm(..., training=True)`` with running buffers, then
   ``torch.autograd.grad``. Target: chainrule faster.

Before any timing, every implementation's loss, gradients and updated running statistics
must agree with chainrule's to 1e-10 on every batch. The implementations are interleaved in
rounds (``bench_train.run_rounds``) and each one's time is the median over the rounds.

Run by hand: ``python benchmarks/bench_kinds.py`` (about half a minute) or ``--quick``.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import blas_description, difference, run_rounds, verdict  # noqa: E402

import chainrule  # noqa: E402
from chainrule.datasets import load_dataset  # noqa: E402
from chainrule.model import compile  # noqa: E402
from chainrule.network import BatchNorm, Dense, Network  # noqa: E402

HAND_TARGET = 1.15  # chainrule at most this many times the hand-written NumPy time
AGREE = 1e-10
BATCH = 64
SEED = 0
EPS = 1e-5
MOMENTUM = 0.1
NAMES = ("W1", "b1", "gamma2", "beta2", "W3", "b3")
STATE = ("mean2", "var2")


def bn_network() -> Network:
    return Network(64, (Dense(32, "tanh"), BatchNorm(), Dense(10, "softmax")), "cross_entropy")


# --- NumPy by hand -------------------------------------------------------------------------


def hand_loss_and_grad(params, X, Y, state):
    """Batch-norm backprop as one would write it for speed.

    The compact ∂L/∂x reuses the two reductions that γ and β need anyway:
    ∂L/∂a = γ r / n · (n G − Σ G − x̂ Σ G x̂), with Σ G = ∂L/∂β and Σ G x̂ = ∂L/∂γ.
    """
    W1, b1, gamma, beta, W3, b3 = (params[name] for name in NAMES)
    n = X.shape[0]
    A1 = np.tanh(X @ W1.T + b1)
    mu = A1.mean(axis=0)
    C = A1 - mu
    var = (C * C).mean(axis=0)
    r = 1.0 / np.sqrt(var + EPS)
    Xh = C * r
    state["mean2"] = (1 - MOMENTUM) * state["mean2"] + MOMENTUM * mu
    state["var2"] = (1 - MOMENTUM) * state["var2"] + MOMENTUM * var * (n / (n - 1))
    A2 = Xh * gamma + beta
    Z3 = A2 @ W3.T + b3
    m = Z3.max(axis=1, keepdims=True)
    E = np.exp(Z3 - m)
    s = E.sum(axis=1, keepdims=True)
    L = (Y * (np.log(s) + m - Z3)).sum() / n
    D3 = (E / s - Y) / n
    gW3 = D3.T @ A2
    gb3 = D3.sum(axis=0)
    G2 = D3 @ W3
    ggamma = (G2 * Xh).sum(axis=0)
    gbeta = G2.sum(axis=0)
    G1 = (n * G2 - gbeta - Xh * ggamma) * (gamma * r / n)
    D1 = G1 * (1 - A1 * A1)
    gW1 = D1.T @ X
    gb1 = D1.sum(axis=0)
    return float(L), {"W1": gW1, "b1": gb1, "gamma2": ggamma, "beta2": gbeta, "W3": gW3, "b3": gb3}


# --- PyTorch -------------------------------------------------------------------------------


def torch_setup(params, batches):
    try:
        import torch
    except ImportError:
        return None
    F = torch.nn.functional
    tparams = tuple(torch.tensor(params[name], dtype=torch.float64, requires_grad=True) for name in NAMES)
    tbatches = [(torch.tensor(X), torch.tensor(Y)) for X, Y in batches]

    def torch_loss_and_grad(p, X, Y, state):
        W1, b1, gamma, beta, W3, b3 = p
        A1 = torch.tanh(X @ W1.T + b1)
        A2 = F.batch_norm(A1, state["mean2"], state["var2"], gamma, beta, training=True, momentum=MOMENTUM, eps=EPS)
        Z3 = A2 @ W3.T + b3
        L = -(Y * torch.log_softmax(Z3, dim=1)).sum() / X.shape[0]
        grads = torch.autograd.grad(L, p)
        return L.item(), dict(zip(NAMES, grads))

    def fresh_state():
        return {"mean2": torch.zeros(32, dtype=torch.float64), "var2": torch.ones(32, dtype=torch.float64)}

    return torch_loss_and_grad, tparams, tbatches, fresh_state, torch


# --- agreement -----------------------------------------------------------------------------


def worst(step, params, batches, state, reference) -> float:
    """Largest relative difference over every batch's loss, gradients and updated running statistics."""
    largest = 0.0
    for (X, Y), (ref_loss, ref_grads, ref_state) in zip(batches, reference):
        loss, grads = step(params, X, Y, state)
        largest = max(largest, difference(loss, ref_loss),
                      *(difference(np.asarray(grads[n]), ref_grads[n]) for n in NAMES),
                      *(difference(np.asarray(state[s]), ref_state[s]) for s in STATE))
    return largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds of 100 steps")
    parser.add_argument("--rounds", type=int, help="timed rounds (default: 30, --quick 7)")
    parser.add_argument("--steps", type=int, help="steps per implementation per round (default: 200, --quick 100)")
    parser.add_argument("--threads", type=int, help="limit NumPy's BLAS and torch to this many threads (default: as they are)")
    args = parser.parse_args()
    rounds = args.rounds or (7 if args.quick else 30)
    steps = args.steps or (100 if args.quick else 200)

    network = bn_network()
    model = compile(network)
    print(f"Python {sys.version.split()[0]}, NumPy {np.__version__}, chainrule {chainrule.__version__}")
    data = load_dataset("digits", outputs=10, targets="distribution", seed=SEED)
    count = data.X_train.shape[0] // BATCH
    batches = [(data.X_train[i * BATCH:(i + 1) * BATCH], data.Y_train[i * BATCH:(i + 1) * BATCH]) for i in range(count)]
    params = model.init_params(seed=SEED)
    # γ and β away from 1 and 0, so that a mix-up of the two would show in the agreement
    rng = np.random.default_rng(1)
    params["gamma2"] = 1 + 0.3 * rng.standard_normal(32)
    params["beta2"] = 0.2 * rng.standard_normal(32)
    torch_parts = torch_setup(params, batches)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        if torch_parts:
            torch_parts[4].set_num_threads(args.threads)
    print(f"digits: {count} batches of {BATCH}; network 64-32-BN-10, tanh, batch norm (eps {EPS:g}, momentum "
          f"{MOMENTUM:g}), softmax, cross_entropy; float64; training mode (running statistics updated every step)")
    print(f"NumPy BLAS: {blas_description()}")
    if torch_parts:
        print(f"PyTorch {torch_parts[4].__version__}: {torch_parts[4].get_num_threads()} threads"
              f"{' (set by --threads)' if args.threads else ' (default)'}")

    # Agreement: the same sequence of steps from the same starting statistics.
    state = model.init_state()
    reference = []
    for X, Y in batches:
        loss, grads = model.loss_and_grad(params, X, Y, state=state)
        reference.append((loss, grads, {s: state[s].copy() for s in STATE}))
    agreement = {"NumPy by hand": worst(hand_loss_and_grad, params, batches, model.init_state(), reference)}
    if torch_parts:
        step, tparams, tbatches, fresh, _ = torch_parts
        agreement["PyTorch eager"] = worst(lambda p, X, Y, s: step(p, X, Y, s), tparams, tbatches, fresh(), reference)
    print("\nagreement with chainrule (loss, 6 gradients and the 2 running statistics over all batches, relative; "
          "must be <= 1e-10):")
    for label, value in agreement.items():
        print(f"   {label}: {value:.1e}")
    failed = [label for label, value in agreement.items() if not value <= AGREE]
    if failed:
        raise SystemExit(f"ABORT: {', '.join(failed)} differ from chainrule by more than {AGREE:g}; nothing timed")

    entries = {
        "chainrule loss_and_grad": (partial(model.loss_and_grad, state=model.init_state()), params, batches),
        "NumPy by hand": (partial(hand_loss_and_grad, state=model.init_state()), params, batches),
    }
    if torch_parts:
        entries["PyTorch eager, autograd.grad"] = (partial(torch_parts[0], state=torch_parts[3]()), torch_parts[1], torch_parts[2])
    run_rounds(entries, 2, steps, count)
    load_before = os.getloadavg()[0]
    times = run_rounds(entries, rounds, steps, count)
    load_after = os.getloadavg()[0]
    median = {name: statistics.median(t) for name, t in times.items()}
    ours = median["chainrule loss_and_grad"]

    print(f"\nper-step time, median of {rounds} interleaved rounds of {steps} steps; 1-minute load average "
          f"{load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs:\n")
    print("| implementation | µs per step | ratio to chainrule |")
    print("|---|---:|---:|")
    for name, value in median.items():
        print(f"| {name} | {value * 1e6:.1f} | {value / ours:.2f}× |")

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    hand_ratio = ours / median["NumPy by hand"]
    hand_paired = paired("chainrule loss_and_grad", "NumPy by hand")
    print(f"\nround by round: chainrule/hand {hand_paired:.3f}"
          + (f", torch/chainrule {paired('PyTorch eager, autograd.grad', 'chainrule loss_and_grad'):.3f}" if torch_parts else ""))
    if abs(hand_ratio / hand_paired - 1) > 0.05:
        print("WARNING: noisy run: the ratio of medians and the round-by-round ratio differ by more than 5%; rerun")
    print("\ntargets:")
    print(f"- chainrule loss_and_grad / NumPy by hand: {hand_ratio:.3f}× (target ≤ {HAND_TARGET}×) {verdict(hand_ratio <= HAND_TARGET)}")
    if torch_parts:
        torch_ratio = median["PyTorch eager, autograd.grad"] / ours
        print(f"- PyTorch eager / chainrule: chainrule {torch_ratio:.2f}× faster (target > 1×) {verdict(torch_ratio > 1)}")
    else:
        print("- PyTorch eager: not installed")


if __name__ == "__main__":
    main()

"""The ``chainrule`` command line. Nothing imports this module.

Every bad input ends with one line on stderr and exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__
from .expr import FormulaError, to_formula
from .network import SpecError

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _formats(text: str) -> tuple[str, ...]:
    from .render import DOCUMENT_FORMATS

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in DOCUMENT_FORMATS]
    if unknown or not names:
        shown = unknown[0][:20] if unknown else text[:20]
        raise argparse.ArgumentTypeError(
            f"unknown format {shown!r}; expected a comma-separated list of {', '.join(DOCUMENT_FORMATS)}"
        )
    return names


def _detail(text: str) -> str:
    from .render.summary import DETAILS
    from .suggest import unknown

    if text not in DETAILS:
        raise argparse.ArgumentTypeError(unknown("detail", text, DETAILS))
    return text


def _seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", text.strip()):
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 10^18, got {text[:20]!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chainrule",
        description="Backpropagation, derived exactly: every partial derivative of a network's loss, "
        "by the chain rule, checked against finite differences, written as documents.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    derive = commands.add_parser(
        "derive",
        help="derive every gradient of a network and write the documents",
        description="Derive every partial derivative of a network's loss with the chain rule in reverse mode, "
        "evaluate it on a worked example with one gradient-descent step, check it against central finite "
        "differences, and write the derivation as HTML, LaTeX, Markdown and JSON.",
        epilog="Exit codes: 0 written; 1 a derived gradient failed the finite-difference check (nothing written); "
        "2 bad input (nothing written).",
    )
    derive.add_argument(
        "spec",
        nargs="?",
        metavar="SPEC",
        help="a TOML network spec (see examples/); without it, the built-in 2-2-2 sigmoid example",
    )
    derive.add_argument(
        "--format",
        type=_formats,
        default=None,
        metavar="LIST",
        help="comma-separated formats to write: html, tex, md, json (default: all four)",
    )
    derive.add_argument("--out", default="output", metavar="DIR", help="folder to write to (default: ./output)")
    derive.add_argument(
        "--seed",
        type=_seed,
        default=0,
        metavar="N",
        help="seed for the example values the spec leaves out; they are drawn and rounded to two decimals; a spec "
        "that trains on a data set takes its training row N + 1 (default: 0)",
    )
    derive.add_argument(
        "--detail",
        type=_detail,
        default=None,
        metavar="LEVEL",
        help="brief: a handout, one block for each kind of step; full: every unit, parameter and input step by step "
        "(up to 400 parameters); default: full up to 60 parameters, a summary above",
    )
    explain = commands.add_parser(
        "explain",
        # FORMULA is required (main() says so when it is missing), though argparse is told "?".
        usage="%(prog)s [-h] FORMULA [--wrt NAME] [--at NAME=VALUE,...] [--order {1,2}] [--format LIST] [--out DIR] "
        "[--name STEM]",
        help="differentiate any formula step by step and write the documents",
        description="Differentiate a formula with respect to one or more variables, one rule at a time, "
        "and write every step as HTML, LaTeX, Markdown and JSON. Formulas use numbers, variables, + - * / ** "
        "and the functions exp log sqrt abs sin cos tan sinh cosh tanh sigmoid softplus erf max min ...",
        epilog='Example: chainrule explain "log(1+exp(w*x+b))" --wrt w --wrt b --at w=0.5,x=2,b=-1. '
        "Exit codes: 0 written; 1 a derivative failed the finite-difference check (nothing written); "
        "2 bad input (nothing written).",
    )
    # "?": a formula that starts with a minus, "-log(x)", looks like an option to argparse; main() takes it back.
    explain.add_argument("formula", nargs="?", metavar="FORMULA",
                         help='the formula, e.g. "x**2*sin(x)" or "-log(x)" (quote it for the shell)')  # fmt: skip
    explain.add_argument(
        "--wrt",
        action="append",
        default=[],
        metavar="NAME",
        help="a variable to differentiate by; repeat it for a gradient (default: every variable)",
    )
    explain.add_argument(
        "--at", type=_point, default=None, metavar="NAME=VALUE,...", help="evaluate every derivative at this point"
    )
    explain.add_argument(
        "--order", type=int, choices=(1, 2), default=1, help="1: the gradient; 2: the Hessian as well (default: 1)"
    )
    explain.add_argument("--format", type=_formats, default=None, metavar="LIST", help="html, tex, md, json (default: all)")
    explain.add_argument("--out", default="output", metavar="DIR", help="folder to write to (default: ./output)")
    explain.add_argument(
        "--name", type=_stem, default="explain", metavar="STEM", help="file name without suffix (default: explain)"
    )
    train = commands.add_parser(
        "train",
        help="train a network on a data set with the derived gradients and write a report",
        description="Compile the network to vectorized NumPy from its layer-level rules, train it on a data set "
        "that ships with the package or is generated (xor, moons, spirals, iris, breast_cancer, digits), and write "
        "a report (HTML with curves, JSON with the history). Options override the spec's [training] table.",
        epilog="Ctrl-C stops training and still writes the report. A run whose loss went flat with a vanishing "
        "gradient before it learned has stalled: the report and stderr say so, with the likely cause (saturated or "
        "dead units, a learning rate too high); it still trained, so it exits 0. Exit codes: 0 trained; 1 training "
        "stopped on a NaN or inf (the report says where); 2 bad input (nothing written).",
    )
    train.add_argument("spec", metavar="SPEC", help="a TOML network spec, e.g. examples/digits.toml")
    train.add_argument("--data", metavar="NAME", help="xor, moons, spirals, iris, breast_cancer or digits")
    train.add_argument("--optimizer", metavar="NAME", help="gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw")
    train.add_argument("--lr", type=_float, metavar="F", help="learning rate")
    train.add_argument("--epochs", type=_seed, metavar="N", help="passes over the training set")
    train.add_argument("--batch-size", type=_batch, metavar="N", help='examples per step, or "full"')
    train.add_argument("--seed", type=_seed, metavar="N", help="seed of the split, the initial weights and the batches")
    train.add_argument("--init", metavar="NAME", help="normal (N(0, 0.01²)), uniform, glorot_uniform, glorot_normal, he_uniform, he_normal, standard_normal (N(0, 1))")
    train.add_argument("--schedule", metavar="NAME", help="learning-rate schedule: constant, step or cosine")
    train.add_argument("--clip-value", type=_float, metavar="F", help="clip every gradient entry to [-F, F]")
    train.add_argument("--clip-norm", type=_float, metavar="F", help="scale the gradients down to a global norm of at most F")
    train.add_argument("--format", type=_report_formats, default=("html", "json"), metavar="LIST", help="html, json (default: both)")
    train.add_argument("--out", default="output", metavar="DIR", help="folder to write to (default: ./output)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    flow = commands.add_parser(
        "flow",
        help="measure vanishing and exploding gradients across depth, activations, inits and remedies",
        description="Build a network for every combination of depth, activation, init scheme and remedy, measure "
        "each hidden layer's gradient norms and activations at initialization (over several seeds) and during a short "
        "SGD run, on real data with the compiled gradients, classify each run as vanishing, healthy or exploding, "
        "show gradient clipping at work, and write the report (HTML, JSON, Markdown, LaTeX). With no options, a "
        "default grid that tells the whole story.",
        epilog="A run's verdict: the ratio of the first hidden layer's weight-gradient norm to the last one's, "
        "vanishing below --vanishing (1e-3), exploding above --exploding (1e3). Exit codes: 0 written; 2 bad input "
        "(nothing written).",
    )
    flow.add_argument("spec", nargs="?", metavar="SPEC",
                      help="a TOML network spec whose first hidden layer (width, activation), depth, remedy, data and "
                           "init are the defaults of the grid")  # fmt: skip
    flow.add_argument("--depth", type=_int_list, metavar="LIST", help="hidden layers, e.g. 5,10,20 (default: 5,10,20)")
    flow.add_argument("--width", type=_seed, metavar="N", help="units per hidden layer (default: 32)")
    flow.add_argument("--activation", type=_name_list, metavar="LIST", help="hidden activations, e.g. sigmoid,tanh,relu")
    flow.add_argument("--init", type=_name_list, metavar="LIST",
                      help="init schemes, e.g. standard_normal,glorot_normal,he_normal")  # fmt: skip
    flow.add_argument("--remedy", type=_name_list, metavar="LIST", help="none, batch_norm, residual, clip")
    flow.add_argument("--data", metavar="NAME", help="the data set (default: digits)")
    flow.add_argument("--batch-size", type=_seed, metavar="N", help="rows of the measured batch and of each step (default: 256)")
    flow.add_argument("--epochs", type=_seed, metavar="N", help="epochs of the short SGD runs (default: 10)")
    flow.add_argument("--seed", type=_seed, metavar="N", help="the first seed (default: 0)")
    flow.add_argument("--seeds", type=_seed, metavar="N", help="initializations averaged per run (default: 3)")
    flow.add_argument("--lr", type=_float, metavar="F", help="SGD's learning rate in the short runs (default: 0.1)")
    flow.add_argument("--clip-norm", type=_float, metavar="F", help="the clipping threshold of the clip remedy and study (default: 1)")
    flow.add_argument("--clip-lr", type=_float, metavar="F", help="the clipping study's learning rate (default: 0.5)")
    flow.add_argument("--vanishing", type=_float, metavar="F", help="a ratio below this is vanishing (default: 1e-3)")
    flow.add_argument("--exploding", type=_float, metavar="F", help="a ratio above this is exploding (default: 1e3)")
    flow.add_argument("--format", type=_flow_formats, default=None, metavar="LIST", help="html, json, md, tex (default: all)")
    flow.add_argument("--out", default="output", metavar="DIR", help="folder to write to (default: ./output)")
    flow.add_argument("--quiet", action="store_true", help="no progress lines")
    check = commands.add_parser(
        "check",
        help="check a hand-written gradient function against a formula",
        description="Import FUNCTION from MODULE (a module on the Python path or in the current folder), call it "
        "with the point's values as keyword arguments, and compare what it returns (one number for one --wrt, "
        "else a dict by name) with the derivative of FORMULA, at the point and at two points drawn near it.",
        epilog='Example: chainrule check mygrads:grad_loss --against "log(1+exp(w*x))" --wrt w --at w=0.5,x=2. '
        "Exit codes: 0 right; 1 wrong (the report says which entry and the likely bug); 2 bad input.",
    )
    check.add_argument("target", metavar="MODULE:FUNCTION", help="where the gradient function is, e.g. mygrads:grad_loss")
    check.add_argument("--against", required=True, metavar="FORMULA", help="the function it should be the gradient of")
    check.add_argument("--wrt", action="append", default=[], metavar="NAME", help="a variable (default: every variable)")
    check.add_argument("--at", type=_point, default=None, metavar="NAME=VALUE,...", help="the point (default: 0.5 for each)")
    return parser


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text[:20]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text[:20]!r}")
    return value


def _batch(text: str) -> int | str:
    return "full" if text.strip() == "full" else _seed(text)


def _int_list(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    for part in parts:
        if not re.fullmatch(r"[0-9]{1,6}", part):
            raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, like 5,10,20; got {part[:20]!r}")
    return [int(part) for part in parts]


def _name_list(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    for part in parts:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", part):
            raise argparse.ArgumentTypeError(f"expected names separated by commas, like sigmoid,tanh; got {part[:20]!r}")
    return parts


def _flow_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names or any(n not in ("html", "json", "md", "tex") for n in names):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of html, json, md, tex; got {text[:20]!r}")
    return names


def _report_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names or any(n not in ("html", "json") for n in names):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of html, json; got {text[:20]!r}")
    return names


def _point(text: str) -> dict[str, float]:
    """``x=0.3,y=2`` as {"x": 0.3, "y": 2.0}; names are checked by the formula later."""
    point: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name):
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs separated by commas, like x=0.3,y=2; got {part[:30]!r}")
        if not re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?", value):
            raise argparse.ArgumentTypeError(f"{name}: expected a number, got {value[:30]!r}")
        if name in point:
            raise argparse.ArgumentTypeError(f"{name} is given twice")
        point[name] = float(value)
    return point


def _stem(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) or text.startswith("."):
        raise argparse.ArgumentTypeError(f"must be 1 to 64 letters, digits, '_', '-' or '.', got {text[:30]!r}")
    return text


def _spec_stem(spec: str) -> str:
    """Output files are named after the spec file: its stem, with anything but [A-Za-z0-9_.-] as _."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(spec).stem) or "spec"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"chainrule: {message}", file=sys.stderr)
    return code


def _derive(args: argparse.Namespace) -> int:
    from .derive import derive
    from .network import default_network, load
    from .numeric import NumericError, worked_example
    from .proof import prove
    from .render import DOCUMENT_FORMATS, render_documents
    from .render.summary import FULLEST

    if args.spec is None:
        network, stem = default_network(), "default"
    else:
        network = load(args.spec)
        stem = _spec_stem(args.spec)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {args.out} is a file; give a folder")
    if args.detail == "full" and (count := sum(math.prod(shape) for shape in network.parameter_shapes().values())) > FULLEST:
        return _fail(
            f"--detail: full documents are written for up to {FULLEST} parameters and this network has "
            f"{count}; use --detail brief, or leave it out for a summary"
        )
    derivation = derive(network)
    try:
        example = worked_example(derivation, seed=args.seed)
    except NumericError as exc:
        return _fail(f"{args.spec or '<built-in example>'}: example: {exc}")
    if not example.check.passed:
        check = example.check
        return _fail(
            f"derived gradient of {check.worst} differs from finite differences by {check.max_relative_error:.3g} "
            f"(relative; tolerance {check.tolerance:g}); this is a bug in chainrule, nothing was written",
            EXIT_CHECK_FAILED,
        )
    proof = prove(network)
    if not proof.passed:
        return _fail(
            f"the layer-level rules differ from the scalar derivation at {', '.join(proof.failures[:3])}; "
            "this is a bug in chainrule, nothing was written",
            EXIT_CHECK_FAILED,
        )
    formats = args.format or DOCUMENT_FORMATS
    documents = render_documents(derivation, example, out, stem, formats, proof=proof, detail=args.detail)
    written = _save(documents, args.out)
    if written:
        return written
    print(
        f"loss {example.loss:.10g}; {len(derivation.graph.parameters)} gradients, "
        f"worst relative error against finite differences {example.check.max_relative_error:.2g}"
    )
    return 0


def _save(documents, out: str) -> int:
    """Write the documents and list them (files in a folder of their own, like figures, as one line); 0, or the exit code of a failed write."""
    from .render import save

    try:
        paths = save(documents)
    except OSError as exc:
        return _fail(f"--out: cannot write to {out} ({exc.strerror or exc})")
    folders: dict[Path, int] = {}
    for path in paths:
        if path.parent == Path(out):
            print(path)
        else:
            folders[path.parent] = folders.get(path.parent, 0) + 1
    for folder, count in folders.items():
        print(f"{folder}/ ({count} files)")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import ExplainError, explain
    from .render import DOCUMENT_FORMATS
    from .render.explanation import explanation_documents

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {args.out} is a file; give a folder")
    try:
        explanation = explain(args.formula, args.wrt, args.at, args.order)
    except ExplainError as exc:
        return _fail(str(exc))
    failed = [d for d in explanation.gradient + tuple(h for row in explanation.hessian for h in row) if d.check and not d.check.passed]
    if failed:
        d = failed[0]
        name = "/".join(map(str, d.wrt))
        return _fail(
            f"derivative by {name} differs from central differences by {d.check.relative_error:.3g} (relative); "
            "this is a bug in chainrule, nothing was written",
            EXIT_CHECK_FAILED,
        )
    summary = [
        f"d/d{d.wrt[0]}: {to_formula(d.result)}" + (f" = {d.value:.10g} at the point" if d.value is not None else "")
        for d in explanation.gradient
    ]
    written = _save(explanation_documents(explanation, out, args.name, args.format or DOCUMENT_FORMATS), args.out)
    if written:
        return written
    for line in summary:
        print(line)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .datasets import DATASETS, DataError, load_dataset
    from .model import compile
    from .network import load
    from .optim import NOTATION, OPTIMIZERS, SCHEDULES, worked_step
    from .progress import Progress
    from .render.training import training_documents
    from .train import fit, settings

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {args.out} is a file; give a folder")
    network = load(args.spec)
    overrides = {key: getattr(args, option.removeprefix("--").replace("-", "_")) for key, option in TRAIN_OPTIONS.items()}
    try:
        run = settings(network.training, overrides, network)
    except SpecError as exc:
        # A wrong value is the option's fault when the option gave it, and the spec's otherwise.
        key = exc.field.removeprefix("training.")
        if overrides.get(key) is not None:
            return _fail(f"{TRAIN_OPTIONS[key]}: {exc.message}")
        raise exc.located(args.spec) from None
    features = DATASETS[run.data].features
    if features != network.inputs:
        fitting = [name for name, source in DATASETS.items() if source.features == network.inputs]
        if args.data is not None:
            instead = f"use a data set of {network.inputs} features ({', '.join(fitting)}) or " if fitting else ""
            return _fail(
                f"--data: {run.data} has {features} features; the network of {args.spec} has {network.inputs} "
                f"inputs; {instead}set network.inputs = {features} in it"
            )
        return _fail(
            f"{args.spec}: network.inputs: {run.data} has {features} features; the network has "
            f"{network.inputs} inputs; set inputs = {features}"
        )
    try:
        data = load_dataset(run.data, outputs=network.outputs, targets=network.loss_choice.entry.targets, seed=run.seed)
    except DataError as exc:
        return _fail(f"--data: {exc.message}" if args.data is not None else f"{args.spec}: {exc}")
    model = compile(network)
    progress = Progress(run.epochs, enabled=not args.quiet)
    result = fit(model, data, run, progress.step, progress.epoch, title=network.title or Path(args.spec).stem)
    progress.close()
    optimizer, schedule = OPTIMIZERS[run.optimizer], SCHEDULES[run.schedule]
    update = None
    if result.first_step is not None:
        theta, gradient = result.first_step
        update = worked_step(optimizer, theta, gradient, run.learning_rate, run.hyperparameters)
    stem = _spec_stem(args.spec) + "-training"
    documents = training_documents(result, out, stem, args.format, update, optimizer, schedule, NOTATION)
    written = _save(documents, args.out)
    if written:
        return written
    if result.stopped:
        print(f"chainrule: training stopped: {result.stopped}", file=sys.stderr)
    if result.stall is not None:
        print(f"chainrule: {result.stall.message}", file=sys.stderr)
    if result.test_loss is not None:
        accuracy = "" if result.test_accuracy is None else f", test accuracy {result.test_accuracy:.2%}"
        print(f"test loss {result.test_loss:.4g}{accuracy} after {len(result.history)} epochs")
    return EXIT_CHECK_FAILED if result.stopped and not result.stopped.startswith("interrupted") else 0


def _flow(args: argparse.Namespace) -> int:
    from .flow import FlowError, flow_settings, spec_defaults, study
    from .render.flow import flow_documents, verdict_counts

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {args.out} is a file; give a folder")
    defaults: dict = {}
    stem = "flow"
    if args.spec is not None:
        from .network import load

        try:
            defaults = spec_defaults(load(args.spec))
        except FlowError as exc:
            return _fail(f"{args.spec}: {exc}")
        stem = _spec_stem(args.spec) + "-flow"
    given = {
        "depths": args.depth, "width": args.width, "activations": args.activation, "inits": args.init,
        "remedies": args.remedy, "data": args.data, "batch_size": args.batch_size, "epochs": args.epochs,
        "seed": args.seed, "seeds": args.seeds, "learning_rate": args.lr, "clip_norm": args.clip_norm,
        "clip_learning_rate": args.clip_lr, "vanishing": args.vanishing, "exploding": args.exploding,
    }  # fmt: skip
    try:
        settings = flow_settings(**{**defaults, **{k: v for k, v in given.items() if v is not None}})
    except FlowError as exc:
        return _fail(str(exc))

    def progress(done: int, total: int, label: str) -> None:
        if not args.quiet:
            print(f"chainrule flow: {done}/{total} {label}", file=sys.stderr, flush=True)

    result = study(settings, progress)
    theory = _flow_theory(args.spec)
    written = _save(flow_documents(result, out, stem, args.format or ("html", "json", "md", "tex"), theory), args.out)
    if written:
        return written
    counts = verdict_counts(result)
    print(f"{len(result.runs)} runs: {counts['vanishing']} vanishing, {counts['healthy']} healthy, {counts['exploding']} exploding")
    return 0


def _flow_theory(spec: str | None):
    """The report's symbolic section: for the SPEC's network if it is small enough to derive, else for ``FLOW_EXAMPLE``."""
    from .derive import derive
    from .flow import FLOW_EXAMPLE, THEORY_PARAMETERS
    from .network import load
    from .numeric import worked_example
    from .render.flow import theory

    network, lead = FLOW_EXAMPLE, (
        "Derived for a small network with one hidden layer of each of sigmoid, tanh and relu, so that each "
        "activation's bound appears once, with its own numbers at a worked example."
    )
    if spec is not None:
        given = load(spec)
        size = sum(math.prod(shape) for shape in given.parameter_shapes().values())
        if size <= THEORY_PARAMETERS:
            network, lead = given, f"Derived for the network of {Path(spec).name}, with its own numbers at a worked example."
        else:
            lead += (f" ({Path(spec).name} has {size} parameters; its scalar derivation is left to chainrule derive, "
                     f"and this section shows at most {THEORY_PARAMETERS}.)")  # fmt: skip
    derivation = derive(network)
    return theory(derivation, worked_example(derivation), lead)


def _check(args: argparse.Namespace) -> int:
    import importlib

    from .check import assert_gradient
    from .expr import names, parse

    module_name, _, function_name = args.target.partition(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module_name) or not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*", function_name
    ):
        return _fail(f"MODULE:FUNCTION: expected a module and a function name such as mygrads:grad_loss, got {args.target[:60]!r}")
    variables = names(args.against, what="--against")
    parse(args.against, variables, what="--against")
    point = args.at or {name: 0.5 for name in variables}
    missing = [v for v in variables if v not in point]
    if missing:
        return _fail(f"--at: no value for {', '.join(missing)}; give every variable of the formula, e.g. --at {missing[0]}=0.5")
    wrt = args.wrt or list(variables)
    unknown = [v for v in wrt if v not in point]
    if unknown:
        return _fail(f"--wrt: {unknown[0]!r} is not a variable of the formula ({', '.join(variables)})")
    # The user's own module, imported as pytest would import their tests; its name is checked above.
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return _fail(f"MODULE:FUNCTION: cannot import {module_name} ({exc}); run from the folder that holds it")
    finally:
        sys.path.pop(0)
    function = getattr(module, function_name, None)
    if not callable(function):
        return _fail(f"MODULE:FUNCTION: {module_name} has no function {function_name!r}")
    try:
        assert_gradient(function, args.against, at=point, wrt=wrt)
    except AssertionError as exc:
        print(exc)
        return EXIT_CHECK_FAILED
    shown = ", ".join(f"{k}={v:g}" for k, v in point.items())
    print(f"right: {args.target} is the gradient of {args.against} by {', '.join(wrt)} at {shown} and 2 points near it")
    return 0


def _formula_option(args: argparse.Namespace, extras: list[str]) -> str | None:
    """The formula argparse took for an unknown option ("-log(x)"): the one leftover that is not a --name."""
    if args.command == "explain" and args.formula is None and len(extras) == 1 and not extras[0].startswith("--"):
        return extras[0]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        args.formula = _formula_option(args, extras)
        if args.formula is None:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command == "explain" and args.formula is None:
        parser.exit(EXIT_BAD_INPUT, "chainrule explain: the following arguments are required: FORMULA "
                                    "(see chainrule explain --help)\n")  # fmt: skip
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return {"explain": _explain, "train": _train, "derive": _derive, "check": _check, "flow": _flow}[args.command](args)
    except SpecError as exc:
        return _fail(str(exc))
    except FormulaError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)


#: The options of ``chainrule train`` that override the spec's [training] table, by its key.
TRAIN_OPTIONS = {
    "data": "--data", "optimizer": "--optimizer", "learning_rate": "--lr", "epochs": "--epochs",
    "batch_size": "--batch-size", "seed": "--seed", "init": "--init", "schedule": "--schedule",
    "clip_value": "--clip-value", "clip_norm": "--clip-norm",
}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

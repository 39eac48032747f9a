"""A pytest plugin: the ``gradcheck`` fixture, and ``--chainrule-report DIR`` for one page of every check.

pytest loads it through the ``pytest11`` entry point, so it runs in every session of an
environment where chainrule is installed: it imports only the standard library at load time,
and ``chainrule.check`` (NumPy, SymPy) only when a test asks for ``gradcheck``. A test writes::

    def test_square(gradcheck):
        gradcheck(lambda x: 2 * x, "x**2", at={"x": 3.0})

``gradcheck`` takes what ``chainrule.testing.assert_gradient`` takes. A failure shows the
test's own line and the check's message, not chainrule's frames. Each check is recorded on
the session's config (never in module state); with ``--chainrule-report DIR`` the session's
end writes ``DIR/gradients.html``, one offline page without scripts.

>>> print(expected_text({"x": [[1.0, 2.0], [3.0, 4.0]]}, small=4))
x = [[1, 2], [3, 4]]
>>> print(expected_text({"W": list(range(100))}, small=4))
W: shape (100,), 100 entries from 0 to 99, mean 49.5
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Arrays with at most this many entries are shown whole in the report; larger ones as a summary.
SMALL = 16
REPORT_NAME = "gradients.html"


@dataclass(frozen=True)
class Record:
    """One gradient check a test ran, as the report shows it."""

    test: str
    variables: tuple[str, ...]
    status: str  # "passed", "failed" or "error"
    method: str | None  # "symbolic", "complex step", "Richardson"; None when no reference was computed
    #: Expected gradient by variable, as nested lists of floats.
    expected: Mapping[str, Any]
    #: Symbolic derivative by variable, in the formula language; empty for a function reference.
    formulas: Mapping[str, str]
    message: str = ""
    #: The derivation of each symbolic derivative: one line per rule, indented by depth.
    steps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


RECORDS = pytest.StashKey[list[Record]]()
REPORT_DIR = pytest.StashKey[Path | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("chainrule").addoption(
        "--chainrule-report",
        metavar="DIR",
        default=None,
        help=f"write DIR/{REPORT_NAME}: every gradient checked through the gradcheck fixture",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("chainrule_report")
    config.stash[REPORT_DIR] = Path(directory) if directory else None
    config.stash[RECORDS] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    directory = config.stash.get(REPORT_DIR, None)
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    # Sorted by test id, then in the order each test ran its checks: the same tests give the
    # same page, whatever order they ran in.
    records = sorted(enumerate(config.stash[RECORDS]), key=lambda pair: (pair[1].test, pair[0]))
    (directory / REPORT_NAME).write_text(report_html([r for _, r in records]), encoding="utf-8")


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``assert_gradient`` for this test, recording each check for ``--chainrule-report``."""
    from chainrule import check
    from chainrule.expr import to_formula

    records = request.config.stash[RECORDS]
    detailed = request.config.stash[REPORT_DIR] is not None
    test = request.node.nodeid

    def run(grad_fn, reference, at, wrt=None, rtol=None) -> None:
        __tracebackhide__ = True
        names = tuple(at) if wrt is None else ((wrt,) if isinstance(wrt, str) else tuple(wrt))
        try:
            check.assert_gradient(grad_fn, reference, at, wrt=wrt, rtol=rtol)
        except AssertionError as exc:
            records.append(_record(check, to_formula, test, names, "failed", str(exc), reference, at, detailed))
            # Raised afresh from this hidden frame, so pytest shows the test's line and the message.
            raise AssertionError(str(exc)) from None
        except Exception as exc:
            records.append(Record(test, names, "error", None, {}, {}, f"{type(exc).__name__}: {exc}"))
            raise
        records.append(_record(check, to_formula, test, names, "passed", "", reference, at, detailed))

    return run


def _record(check, to_formula, test: str, names: tuple[str, ...], status: str, message: str, reference, at, detailed: bool) -> Record:
    if not detailed:
        # Without a report nothing reads the expected values: do not compute the reference twice.
        return Record(test, names, status, None, {}, {}, message)
    ref = check.reference_gradient(reference, at, names)
    formulas = {}
    if ref.formulas is not None:
        formulas = {name: _formula_text(to_formula, ref.formulas[name]) for name in names}
    expected = {name: ref.values[name].tolist() for name in names}
    steps = {}
    if ref.formulas is not None:
        steps = {name: _derivation(reference, at, name, to_formula) for name in names}
    return Record(test, names, status, ref.method, expected, formulas, message, steps)


def _derivation(reference, at, name: str, to_formula) -> tuple[str, ...]:
    """The rule-by-rule derivation of ∂reference/∂name, as indented text lines."""
    import sympy as sp

    from chainrule import expr as language
    from chainrule.rules import children, derivative_steps

    expression = language.parse(reference, list(at)) if isinstance(reference, str) else reference
    symbol = next((s for s in expression.free_symbols if s.name == name), sp.Symbol(name, real=True))
    lines: list[str] = []

    def visit(rule, depth: int) -> None:
        written = _formula_text(to_formula, rule.expr)
        lines.append(f"{'  ' * depth}d/d{name} {written} = {_formula_text(to_formula, rule.eval())}   ({rule.title})")
        for child in children(rule):
            visit(child, depth + 1)

    visit(derivative_steps(expression, symbol), 0)
    return tuple(lines)


def _formula_text(to_formula, derivative) -> str:
    try:
        return to_formula(derivative)
    except ValueError:
        # SymPy wrote it with parts the formula language has no words for (atan2, re, im).
        return str(derivative)


# --- the report: build the records above, format them here ------------------------------------


def _number(value: float) -> str:
    return f"{value:.10g}"


def _nested(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return _number(float(value))


def _flat(value) -> list[float]:
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [float(value)]


def _shape(value) -> tuple[int, ...]:
    return (len(value), *_shape(value[0])) if isinstance(value, list) and value else ((0,) if isinstance(value, list) else ())


def expected_text(expected: Mapping[str, Any], small: int = SMALL) -> str:
    """Each variable's expected gradient on a line: whole when small, else its shape and range."""
    out = []
    for name, value in expected.items():
        flat = _flat(value)
        if len(flat) <= small:
            out.append(f"{name} = {_nested(value)}")
        else:
            mean = sum(flat) / len(flat)
            out.append(
                f"{name}: shape {_shape(value)}, {len(flat)} entries from {_number(min(flat))} "
                f"to {_number(max(flat))}, mean {_number(mean)}"
            )
    return "\n".join(out)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
pre { margin: 0; white-space: pre-wrap; font-size: 0.9em; }
.passed { color: #176b1c; font-weight: bold; }
.failed, .error { color: #b00020; font-weight: bold; }
"""


def _row(record: Record) -> str:
    e = html.escape
    formulas = "\n".join(
        f"∂/∂{name} = {text}" + "".join(f"\n  {line}" for line in record.steps.get(name, ()))
        for name, text in record.formulas.items()
    )
    cells = [
        f"<td><code>{e(record.test)}</code></td>",
        f"<td>{e(', '.join(record.variables))}</td>",
        f"<td>{e(record.method or '')}</td>",
        f'<td class="{e(record.status)}">{e(record.status)}</td>',
        f"<td><pre>{e(expected_text(record.expected))}</pre></td>",
        f"<td><pre>{e(formulas)}</pre></td>",
        f"<td><pre>{e(record.message)}</pre></td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def report_html(records: Sequence[Record]) -> str:
    """The whole page: one table row per check, every user-given text escaped, nothing loaded from elsewhere."""
    counts = {status: sum(r.status == status for r in records) for status in ("passed", "failed", "error")}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no checks"
    header = "".join(f"<th>{h}</th>" for h in ("test", "variables", "reference", "result", "expected gradient", "derivative", "message"))
    rows = "\n".join(_row(r) for r in records)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>chainrule: gradients checked</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>Gradients checked</h1>\n<p>{len(records)} checks: {summary}.</p>\n"
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n"
        "</body>\n</html>\n"
    )

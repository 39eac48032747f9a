"""The pytest plugin: the gradcheck fixture, its failure output, and --chainrule-report."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from pytest_chainrule import REPORT_NAME, Record, report_html

pytest_plugins = ["pytester"]

#: The inner runs happen in a temporary folder, away from the repository's pyproject;
#: no cache folder, and warnings are errors there too.
# The inner runs turn warnings into errors; pytest-benchmark, where installed, warns under xdist.
OPTIONS = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:xdist", "-W", "error")

TESTS = '''
import numpy as np


def test_logistic(gradcheck):
    def grad(w, b):
        s = 1 / (1 + np.exp(-(2 * w + b)))
        return {"w": 2 * s, "b": s}

    gradcheck(grad, "log(1 + exp(2*w + b))", at={"w": 0.5, "b": -1.0})


def test_square_<b>(gradcheck):
    gradcheck(lambda x: x, "x**2", at={"x": 3.0})
'''


@pytest.fixture
def two_checks(pytester: pytest.Pytester) -> pytest.Pytester:
    # A test id with markup in it: the report must show it as text.
    pytester.makepyfile(test_grads=TESTS.replace("test_square_<b>", "test_square"))
    pytester.makeconftest(
        'import pytest\n\n@pytest.fixture(params=["<b>bold</b>"])\ndef label(request):\n    return request.param\n'
    )
    pytester.makepyfile(
        test_label="def test_labelled(gradcheck, label):\n"
        '    gradcheck(lambda x: 3 * x**2, "x**3", at={"x": 2.0})\n'
    )
    return pytester


def test_the_entry_point_is_registered() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert found.get("chainrule") == "pytest_chainrule"


def test_a_passing_check_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('def test_cube(gradcheck):\n    gradcheck(lambda w: 3 * w**2, "w**3", at={"w": 2.0})\n')
    pytester.runpytest(*OPTIONS).assert_outcomes(passed=1)


def test_a_failure_shows_the_test_line_and_the_diagnosis_not_chainrule(two_checks: pytest.Pytester) -> None:
    result = two_checks.runpytest(*OPTIONS, "test_grads.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '>*gradcheck(lambda x: x, "x**2", at={"x": 3.0})',
            "E*AssertionError: gradient check failed: 1 wrong entry (reference by symbolic*",
            "E*x: expected 6 = 2*x, got 3 (abs. error 3, rel. error 0.5); a missing factor 2*",
            "test_grads.py:13: AssertionError",
        ]
    )
    output = result.stdout.str()
    assert "chainrule/check.py" not in output and "pytest_chainrule.py" not in output
    assert "__tracebackhide__" not in output and "During handling" not in output


def test_the_report_lists_every_check_escaped(two_checks: pytest.Pytester) -> None:
    result = two_checks.runpytest(*OPTIONS, "--chainrule-report", "out")
    result.assert_outcomes(passed=2, failed=1)
    page = (two_checks.path / "out" / REPORT_NAME).read_text(encoding="utf-8")
    assert page.count("<tr><td>") == 3 and "3 checks: 2 passed, 1 failed." in page
    assert "test_grads.py::test_logistic" in page and "test_grads.py::test_square" in page
    assert "test_label.py::test_labelled[&lt;b&gt;bold&lt;/b&gt;]" in page and "<b>" not in page
    assert "∂/∂x = 2*x" in page and "∂/∂x = 3*x**2" in page and "x = 12" in page
    assert "a missing factor 2" in page and page.count("<td>symbolic</td>") == 3
    assert "<script" not in page and "http" not in page and "src=" not in page
    # The same run writes the same page.
    two_checks.runpytest(*OPTIONS, "--chainrule-report", "again")
    assert (two_checks.path / "again" / REPORT_NAME).read_text(encoding="utf-8") == page


def test_no_report_without_the_option(two_checks: pytest.Pytester) -> None:
    two_checks.runpytest(*OPTIONS).assert_outcomes(passed=2, failed=1)
    assert list(two_checks.path.rglob(REPORT_NAME)) == []


def test_a_function_reference_is_reported_without_a_formula(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import numpy as np\n\n"
        "def test_sum_of_squares(gradcheck):\n"
        "    gradcheck(lambda v: 2 * v, lambda v: np.sum(v**2), at={'v': np.arange(20.0)})\n"
    )
    pytester.runpytest(*OPTIONS, "--chainrule-report", "out").assert_outcomes(passed=1)
    page = (pytester.path / "out" / REPORT_NAME).read_text(encoding="utf-8")
    assert "complex step" in page and "v: shape (20,), 20 entries from 0 to 38, mean 19" in page
    assert "∂/∂" not in page


def test_an_error_is_recorded_and_raised_as_it_was(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('def test_typo(gradcheck):\n    gradcheck(lambda x: 1.0, "x", at={"x": 1.0}, wrt="y")\n')
    result = pytester.runpytest(*OPTIONS, "--chainrule-report", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*ValueError: wrt: 'y' is not one of the inputs in at (x)"])
    assert "1 checks: 1 error." in (pytester.path / "out" / REPORT_NAME).read_text(encoding="utf-8")


def test_report_html_escapes_what_users_write() -> None:
    record = Record("t.py::test[<i>&</i>]", ("x",), "failed", "symbolic", {"x": 1.0}, {"x": "<x>"}, "got <script>")
    page = report_html([record])
    assert "&lt;i&gt;&amp;&lt;/i&gt;" in page and "∂/∂x = &lt;x&gt;" in page and "got &lt;script&gt;" in page
    assert "<i>" not in page and "<script>" not in page


def test_loading_the_plugin_imports_neither_chainrule_nor_numpy_nor_sympy() -> None:
    # pytest loads the plugin in every run of every project where chainrule is installed.
    code = (
        "import sys\n"
        "import pytest_chainrule\n"
        "print(sorted(m for m in sys.modules if m.startswith(('chainrule', 'numpy', 'sympy'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_a_derivative_the_formula_language_cannot_write_is_shown_as_sympy_writes_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import sympy as sp\n\n"
        "def test_abs_sqrt(gradcheck):\n"
        "    x = sp.Symbol('x', real=True)\n"
        "    gradcheck(lambda x: 0.5 / x**0.5, sp.Abs(sp.sqrt(x)), at={'x': 4.0})\n"
    )
    pytester.runpytest(*OPTIONS, "--chainrule-report", "out").assert_outcomes(passed=1)
    page = (pytester.path / "out" / REPORT_NAME).read_text(encoding="utf-8")
    assert "∂/∂x = " in page and "atan2" in page and "x = 0.25" in page


def test_the_report_carries_each_derivation_rule_by_rule() -> None:
    from chainrule.expr import to_formula
    from pytest_chainrule import _derivation

    assert _derivation("x**2", {"x": 3.0}, "x", to_formula) == ("d/dx x**2 = 2*x   (power rule)",)
    lines = _derivation("sin(w*x)", {"w": 0.5, "x": 2.0}, "w", to_formula)
    assert lines[0] == "d/dw sin(w*x) = x*cos(w*x)   (chain rule)"
    assert any(line.startswith("  ") and "(trigonometric rule)" in line for line in lines), lines
    page = report_html([Record("t", ("x",), "passed", "symbolic", {"x": 6.0}, {"x": "2*x"}, "", {"x": ("d/dx x**2 = 2*x   (power rule)",)})])
    assert "d/dx x**2 = 2*x   (power rule)" in page

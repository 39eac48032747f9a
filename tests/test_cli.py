"""The ``chainrule`` command line: what it writes, and how it refuses bad input.

Most runs call ``chainrule.cli.main`` in-process; a few start a real interpreter so that
``python -m chainrule`` itself, its exit code and its stderr are checked as a user sees them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import build_parser, main

ALL = ["default.html", "default.json", "default.md", "default.tex"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` as the shell would see it: exit code, stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits for --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # noqa: BLE001 - an exception out of main is a traceback for the user
        pytest.fail(f"main({argv!r}) raised {type(exc).__name__}: {exc}; the user would see a traceback")
    out, err = capsys.readouterr()
    return code, out, err


def listing(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden and temporary ones included."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- what derive writes -------------------------------------------------------------------


def test_no_spec_writes_the_four_documents_of_the_default_example(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(["derive", "--out", str(out)], capsys)
    assert (code, stderr) == (0, "")
    assert listing(out) == ALL
    for name in ALL:
        assert str(out / name) in stdout.splitlines()
        assert (out / name).stat().st_mode & 0o777 == 0o644
    assert "loss 0.2983711088" in stdout
    doc = json.loads((out / "default.json").read_text(encoding="utf-8"))
    assert doc["title"] == "A 2-2-2 sigmoid network"
    assert doc["parameters"]["W1"]["value"] == [[0.15, 0.2], [0.25, 0.3]]
    assert doc["check"]["passed"] is True
    assert (out / "default.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "\\documentclass" in (out / "default.tex").read_text(encoding="utf-8")
    assert (out / "default.md").read_text(encoding="utf-8").startswith("# A 2-2-2 sigmoid network")


def test_out_folder_is_created_with_its_parents(tmp_path: Path, capsys) -> None:
    out = tmp_path / "a" / "b" / "c"
    code, _, stderr = run(["derive", "--out", str(out), "--format", "json"], capsys)
    assert (code, stderr) == (0, "")
    assert listing(out) == ["default.json"]


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        ("json,md", ["default.json", "default.md"]),
        ("tex", ["default.tex"]),
        (" html , json,html", ["default.html", "default.json"]),
    ],
)
def test_format_writes_only_those(tmp_path: Path, capsys, formats: str, expected: list[str]) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(["derive", "--format", formats, "--out", str(out)], capsys)
    assert (code, stderr) == (0, "")
    assert listing(out) == expected
    assert sorted(line for line in stdout.splitlines() if line.startswith(str(out))) == [str(out / n) for n in expected]


def test_a_spec_names_the_files(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "my net.v2.toml"
    spec.write_text(PARTIAL, encoding="utf-8")
    code, _, stderr = run(["derive", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert (code, stderr) == (0, "")
    assert listing(tmp_path / "out") == ["my_net.v2.html", "my_net.v2.json", "my_net.v2.md", "my_net.v2.tex"]


def test_existing_documents_are_replaced(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "default.json").write_text("stale", encoding="utf-8")
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    code, _, _ = run(["derive", "--out", str(out), "--format", "json"], capsys)
    assert code == 0
    assert json.loads((out / "default.json").read_text(encoding="utf-8"))["loss"] == pytest.approx(0.2983711088, rel=1e-9)
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert listing(out) == ["default.json", "keep.txt"]


# --- --seed ----------------------------------------------------------------------------------

#: Gives x and W1; leaves y, b1, W2, b2 and the learning rate out.
PARTIAL = """\
title = "Partly given"
[network]
inputs = 2
layers = [ { units = 2, activation = "tanh" }, { units = 1, activation = "identity" } ]
loss = "mse"
[example]
x = [0.5, -0.25]
W1 = [[0.1, 0.2], [0.3, 0.4]]
"""


def _derive_json(tmp_path: Path, capsys, spec: Path | None, seed: str, formats: str = "json") -> dict[str, str]:
    out = tmp_path / f"seed{seed}"
    argv = ["derive", *([str(spec)] if spec else []), "--seed", seed, "--format", formats, "--out", str(out)]
    code, _, stderr = run(argv, capsys)
    assert (code, stderr) == (0, "")
    return {p.suffix: p.read_text(encoding="utf-8") for p in out.iterdir()}


def test_seed_changes_nothing_when_the_spec_gives_every_value(tmp_path: Path, capsys) -> None:
    a = _derive_json(tmp_path, capsys, None, "0", "html,tex,md,json")
    b = _derive_json(tmp_path, capsys, None, "12345", "html,tex,md,json")
    for suffix in (".html", ".tex", ".md"):
        assert a[suffix] == b[suffix], suffix
    ja, jb = json.loads(a[".json"]), json.loads(b[".json"])
    assert (ja["example"].pop("seed"), jb["example"].pop("seed")) == (0, 12345)
    assert ja == jb
    assert ja["example"]["drawn"] == []
    assert "Every value comes from the spec" in a[".html"]
    assert "Every value comes from the spec" in a[".md"] and "Every value comes from the spec" in a[".tex"]


def test_seed_draws_only_what_the_spec_leaves_out(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "partial.toml"
    spec.write_text(PARTIAL, encoding="utf-8")
    docs = [json.loads(_derive_json(tmp_path, capsys, spec, seed)[".json"]) for seed in ("1", "2")]
    for doc in docs:
        assert doc["example"]["x"] == [0.5, -0.25]
        assert doc["parameters"]["W1"]["value"] == [[0.1, 0.2], [0.3, 0.4]]
    a, b = docs
    assert a["example"]["y"] != b["example"]["y"]
    for name in ("b1", "W2", "b2"):
        assert a["parameters"][name]["value"] != b["parameters"][name]["value"], name
    for doc in docs:
        values = [doc["example"]["y"], *(doc["parameters"][n]["value"] for n in ("b1", "W2", "b2"))]
        flat = [v for group in values for v in (group if not isinstance(group[0], list) else sum(group, []))]
        assert all(round(v, 2) == v for v in flat)  # drawn values are rounded to two decimals
    assert a["loss"] != b["loss"]
    # The same seed twice draws the same values.
    again = json.loads(_derive_json(tmp_path / "again", capsys, spec, "1")[".json"])
    assert again == a


def _drawn_sentence(text: str) -> str:
    sentence = re.search(r"The spec leaves out (.*?)drawn with seed (\d+)", text, re.DOTALL)
    assert sentence, "the document does not say which values were drawn"
    return sentence.group(0)


def test_documents_say_which_values_were_drawn_and_with_which_seed(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "partial.toml"
    spec.write_text(PARTIAL, encoding="utf-8")
    docs = _derive_json(tmp_path, capsys, spec, "7", "html,tex,md,json")
    assert json.loads(docs[".json"])["example"]["seed"] == 7
    for suffix in (".html", ".tex", ".md"):
        said = re.sub(r"\\(.)", r"\1", _drawn_sentence(docs[suffix]))  # TeX and Markdown escape "_"
        assert "seed 7" in said, suffix
        for name in ("y", "b1", "W2", "b2"):
            assert re.search(rf"\b{name}\b", said), (suffix, name)
        for name in ("x", "W1"):
            assert not re.search(rf"\b{name}\b", said.split("drawn with")[0]), (suffix, name)


def test_documents_do_not_claim_the_default_learning_rate_was_drawn(tmp_path: Path, capsys) -> None:
    """A learning rate the spec leaves out is the fixed default, the same for every seed.

    Documents say the values they list were "drawn with seed N and rounded to two
    decimals"; that must not include the learning rate, which no seed changes.
    """
    spec = tmp_path / "partial.toml"
    spec.write_text(PARTIAL, encoding="utf-8")
    one = _derive_json(tmp_path, capsys, spec, "1", "html,json")
    two = _derive_json(tmp_path, capsys, spec, "2", "html,json")
    assert json.loads(one[".json"])["learning_rate"] == json.loads(two[".json"])["learning_rate"] == 0.5
    said = _drawn_sentence(one[".html"])
    assert "learning_rate" not in said and "learning rate" not in said.split("drawn with")[0], said


# --- --help -------------------------------------------------------------------------------


def test_help_mentions_every_option(capsys) -> None:
    code, top, _ = run(["--help"], capsys)
    assert code == 0
    assert "derive" in top and "--version" in top
    code, text, _ = run(["derive", "--help"], capsys)
    assert code == 0
    derive = next(
        action for action in build_parser()._actions if getattr(action, "choices", None) and "derive" in action.choices
    ).choices["derive"]
    options = [s for action in derive._actions for s in action.option_strings]
    assert {"--format", "--out", "--seed", "--help"} <= set(options)
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", text), option
    assert "SPEC" in text
    for word in ("html", "tex", "md", "json"):
        assert word in text
    assert "Exit codes" in text


def test_version(capsys) -> None:
    from chainrule import __version__

    code, out, _ = run(["--version"], capsys)
    assert (code, out.strip()) == (0, f"chainrule {__version__}")


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    code, out, _ = run([], capsys)
    assert code == 2 and "derive" in out


# --- bad input: exit 2, one line on stderr, nothing written -------------------------------

GOOD_NETWORK = """\
[network]
inputs = 2
layers = [ { units = 2 } ]
loss = "mse"
"""

#: name -> (spec text or None for no file, extra argv, words stderr must contain).
BAD = {
    "unknown activation": (
        '[network]\ninputs = 2\nlayers = [ { units = 2, activation = "swish" } ]\nloss = "mse"\n',
        [],
        ["network.layers[0].activation", "swish"],
    ),
    "misspelt activation": (
        '[network]\ninputs = 2\nlayers = [ { units = 2, activation = "sigmoud" } ]\nloss = "mse"\n',
        [],
        ["network.layers[0].activation: unknown activation 'sigmoud'; did you mean 'sigmoid'? (use identity, sigmoid, tanh"],
    ),
    "misspelt loss": (GOOD_NETWORK.replace('"mse"', '"mes"'), [], ["network.loss: unknown loss 'mes'; did you mean 'mse'?"]),
    "misspelt layer kind": (
        GOOD_NETWORK.replace("{ units = 2 }", '{ units = 2 }, { kind = "dropuot" }'),
        [],
        ["network.layers[1].kind: unknown layer kind 'dropuot'; did you mean 'dropout'? (use dense, batch_norm"],
    ),
    "misspelt key": (
        GOOD_NETWORK + "[example]\nlearning_rat = 0.1\n",
        [],
        ["example.learning_rat: unknown key 'learning_rat'; did you mean 'learning_rate'? (use W1, b1, learning_rate, x or y)"],
    ),
    "W1 with too many columns": (
        GOOD_NETWORK + "[example]\nW1 = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]\n",
        [],
        ["example.W1: must have shape (2, 2): 2 units × 2 inputs of layer 1, one row per unit; row 0 has 3 numbers instead of 2"],
    ),
    "W1 with too few rows": (
        GOOD_NETWORK + "[example]\nW1 = [[0.1, 0.2]]\n",
        [],
        ["example.W1: must have shape (2, 2): 2 units × 2 inputs of layer 1, one row per unit; got 1 row instead of 2"],
    ),
    "b1 too long": (
        GOOD_NETWORK + "[example]\nb1 = [0.1, 0.2, 0.3]\n",
        [],
        ["example.b1: must have shape (2,): one number for each of the 2 units of layer 1; got 3 numbers instead of 2"],
    ),
    "x too short": (
        GOOD_NETWORK + "[example]\nx = [0.1]\n",
        [],
        ["example.x: must have shape (2,): one number for each of the 2 inputs of the network; got 1 number instead of 2"],
    ),
    "y rows of the wrong width": (
        GOOD_NETWORK + "[example]\nx = [[0.1, 0.2], [0.3, 0.4]]\ny = [[1.0, 0.0], [0.0]]\n",
        [],
        ["example.y: must have shape (2, 2): 2 examples × 2 outputs of the network, one row per example; row 1 has 1 number"],
    ),
    "missing loss": ('[network]\ninputs = 2\nlayers = [ { units = 2 } ]\n', [], ["network.loss", "missing"]),
    "missing network table": ('title = "no network"\n', [], ["network"]),
    "malformed TOML": ("[network\ninputs = 2\n", [], ["TOML"]),
    "string for a number in x": (GOOD_NETWORK + '[example]\nx = [0.1, "a"]\n', [], ["example.x[1]"]),
    "string for the learning rate": (GOOD_NETWORK + '[example]\nlearning_rate = "fast"\n', [], ["example.learning_rate"]),
    "string for units": ('[network]\ninputs = 2\nlayers = [ { units = "2" } ]\nloss = "mse"\n', [], ["network.layers[0].units"]),
    "unknown key": (GOOD_NETWORK + "[example]\nW3 = [[1.0]]\n", [], ["example.W3"]),
    "nonexistent file": (None, ["{tmp}/missing.toml"], ["missing.toml"]),
    "unknown format": (None, ["--format", "html,pdf"], ["--format", "pdf"]),
    "empty format": (None, ["--format", ","], ["--format"]),
    "negative seed": (None, ["--seed", "-1"], ["--seed"]),
    "non-numeric seed": (None, ["--seed", "abc"], ["--seed"]),
    "fractional seed": (None, ["--seed", "1.5"], ["--seed"]),
    "out is a file": (None, ["--out", "{tmp}/a-file"], ["--out", "a-file"]),
    "out below a file": (None, ["--out", "{tmp}/a-file/sub"], ["--out", "a-file"]),
    "unknown option": (None, ["--fromat", "json"], ["--fromat"]),
    "an integer too long to convert": ("[network]\ninputs = 1" + "0" * 5000 + "\n", [], ["too large"]),
    "arrays nested too deeply": ("[network]\ninputs = " + "[" * 5000 + "]" * 5000 + "\n", [], ["nested"]),
    # Finite numbers whose forward pass overflows a float are bad input too.
    "example values that overflow": (
        '[network]\ninputs = 2\nlayers = [ { units = 1, activation = "identity" } ]\nloss = "mse"\n'
        "[example]\nx = [1e300, 1e300]\n",
        [],
        [],
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, capsys, name: str) -> None:
    text, extra, words = BAD[name]
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    before = listing(tmp_path)
    argv = ["derive"]
    if text is not None:
        spec = tmp_path / "bad-spec.toml"
        spec.write_text(text, encoding="utf-8")
        before = listing(tmp_path)
        argv.append(str(spec))
        words = [str(spec), *words]
    out = tmp_path / "out"
    argv += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    if "--out" not in argv:
        argv += ["--out", str(out)]
    code, stdout, stderr = run(argv, capsys)
    assert code == 2, (code, stderr)
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("chainrule"), stderr
    for word in words:
        assert word in stderr, (word, stderr)
    assert stdout == ""
    assert listing(tmp_path) == before
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "not a folder"


#: explain's bad formulas: (argv after "explain", the whole line on stderr).
BAD_FORMULAS = {
    "misspelt function": (
        ["sinn(x)"],
        (
            "chainrule: formula, column 1: unknown function 'sinn'; did you mean 'sin'? (use abs, acos, asin, atan, cos, "
            "cosh, dirac, erf, exp, heaviside, log, max, min, relu, sigmoid, sign, sin, sinh, softplus, sqrt, step, tan "
            "or tanh) (near 'sinn(x)')"
        ),
    ),
    "misspelt function in a longer formula": (
        ["x*sigmiod(w*x + b)"],
        (
            "chainrule: formula, column 3: unknown function 'sigmiod'; did you mean 'sigmoid'? (use abs, acos, asin, atan, "
            "cos, cosh, dirac, erf, exp, heaviside, log, max, min, relu, sigmoid, sign, sin, sinh, softplus, sqrt, step, "
            "tan or tanh) (near 'x*sigmiod(w*x + b)')"
        ),
    ),
    "function far from every function": (
        ["gamma(x)"],
        (
            "chainrule: formula, column 1: unknown function 'gamma'; use abs, acos, asin, atan, cos, cosh, dirac, erf, exp, "
            "heaviside, log, max, min, relu, sigmoid, sign, sin, sinh, softplus, sqrt, step, tan or tanh (near 'gamma(x)')"
        ),
    ),
}


@pytest.mark.parametrize("name", list(BAD_FORMULAS))
def test_explain_bad_formula_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, capsys, name: str) -> None:
    argv, line = BAD_FORMULAS[name]
    code, stdout, stderr = run(["explain", *argv, "--out", str(tmp_path / "out")], capsys)
    assert (code, stdout, stderr) == (2, "", line + "\n")
    assert listing(tmp_path) == []


# --- a real process ------------------------------------------------------------------------


def _chainrule(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": ""},
        timeout=300,
    )


def test_python_m_chainrule_derive(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    result = _chainrule("derive", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert listing(out) == ALL
    assert json.loads((out / "default.json").read_text(encoding="utf-8"))["loss"] == pytest.approx(0.298371109, rel=1e-8)


def test_default_out_is_output_in_the_working_folder(tmp_path: Path) -> None:
    result = _chainrule("derive", "--format", "md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path) == ["output", "output/default.md"]


def test_bad_spec_in_a_real_process(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(BAD["unknown activation"][0], encoding="utf-8")
    result = _chainrule("derive", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "bad.toml" in result.stderr and "network.layers[0].activation" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("activation", ['"z**z"', '"sqrt(z)"', '"log(z)"'])
def test_a_custom_formula_outside_its_domain_is_bad_input(tmp_path, activation):
    """Complex or NaN values at the example (z**z at a negative z) are one line and exit 2, not a traceback."""
    spec = tmp_path / "s.toml"
    spec.write_text(f'[network]\ninputs = 2\nlayers = [ {{ units = 2, activation = {activation} }} ]\nloss = "mse"\n')
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "derive", str(spec), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "domain" in result.stderr
    assert not (tmp_path / "out").exists()

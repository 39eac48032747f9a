"""Did you mean: every table's unknown name is answered with the closest entry, the same way.

The tables are the ones the package looks names up in; each is tested through the entry point
a user reaches it by (a spec file and ``chainrule derive``, ``chainrule explain``, the Python
API), with a one-letter slip of every entry, and with a name near none of them.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainrule import suggest
from chainrule.catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from chainrule.cli import main
from chainrule.datasets import DATASETS, TARGETS, DataError, load_dataset
from chainrule.expr import CONSTANTS, FUNCTIONS, FormulaError, parse
from chainrule.flow import REMEDIES, FlowError, elementwise_activations, flow_settings
from chainrule.kinds import KINDS
from chainrule.model import INIT_SCHEMES, compile
from chainrule.network import Dense, Network, loads
from chainrule.optim import OPTIMIZERS
from chainrule.spec import SpecError

#: Every table a name is looked up in, by what a message calls its entries.
TABLES = {
    "activation": list(ACTIVATIONS),
    "loss": list(LOSSES),
    "regularizer": list(REGULARIZERS),
    "layer kind": list(KINDS),
    "init scheme": list(INIT_SCHEMES),
    "data set": list(DATASETS),
    "kind of targets": list(TARGETS),
    "function": sorted(FUNCTIONS),
    "optimizer": list(OPTIMIZERS),
    "remedy": list(REMEDIES),
}
#: Near no entry of any table.
FAR = "qqqqqq"
ALPHABET = string.ascii_lowercase + string.digits + "_"


def one_slip(word: str) -> Iterator[tuple[str, str]]:
    """Every (kind of slip, word) one typing slip away: a letter added, dropped, changed or swapped."""
    for i in range(len(word) + 1):
        for letter in ALPHABET:
            yield f"insert {letter} at {i}", word[:i] + letter + word[i:]
        if i == len(word):
            break
        yield f"drop {i}", word[:i] + word[i + 1 :]
        for letter in ALPHABET:
            yield f"change {i} to {letter}", word[:i] + letter + word[i + 1 :]
        if i + 1 < len(word):
            yield f"swap {i}", word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def typo(word: str) -> str:
    """The slip every entry-point test makes: the middle letter typed twice."""
    middle = len(word) // 2
    return word[:middle] + word[middle] + word[middle:]


def cases() -> list[tuple[str, str]]:
    return [(what, entry) for what, names in TABLES.items() for entry in names]


# --- closest: the rule, over every table ----------------------------------------------------


@pytest.mark.parametrize(("what", "entry"), cases())
def test_every_unambiguous_slip_of_every_entry_is_suggested_back(what: str, entry: str) -> None:
    names = TABLES[what]
    # A slip that is also one slip from another entry could mean either; the rest must find entry.
    others = {near for other in names if other != entry for _, near in one_slip(other)} | set(names)
    checked = 0
    for slip, word in one_slip(entry):
        if word and word not in others:
            assert suggest.closest(word, names) == entry, (slip, word)
            checked += 1
    assert checked >= len(entry)  # every table entry has slips nobody else is near


@pytest.mark.parametrize("what", list(TABLES))
def test_a_far_off_name_gets_no_suggestion(what: str) -> None:
    message = suggest.unknown(what, FAR, TABLES[what])
    assert message == f"unknown {what} '{FAR}'; use {suggest.listing(TABLES[what])}"


def test_a_name_that_shares_letters_but_not_spelling_gets_no_suggestion() -> None:
    # difflib alone rates "mnist" 0.6 like "moons"; it is three slips away.
    assert suggest.closest("mnist", DATASETS) is None
    assert suggest.closest("xent", LOSSES) is None


def test_of_two_names_the_one_fewer_slips_away_wins() -> None:
    # difflib rates "abx" alike for "abs" and "max"; "abs" is one slip away, "max" two.
    assert suggest.closest("abx", FUNCTIONS) == "abs"
    assert suggest.closest("erx", FUNCTIONS) == "erf"  # not "exp", which difflib ranks alike


def test_names_equally_near_are_all_offered() -> None:
    # "l3" is one slip from l1 and from l2: naming one would be a guess.
    with pytest.raises(SpecError) as caught:
        loads(spec_with(extra='regularizer = "l3"\n'))
    assert caught.value.message == "unknown regularizer 'l3'; did you mean 'l1' or 'l2'? (use l1 or l2)"


def test_a_pasted_paragraph_is_compared_quickly_and_shown_short() -> None:
    message = suggest.unknown("activation", "sigmoid" * 20_000, ACTIVATIONS)
    assert message.startswith("unknown activation 'sigmoidsigmoidsigmoidsigmoidsi…'; use identity")
    assert len(message) < 300


def test_listing_with_another_choice_and_a_limit() -> None:
    assert suggest.listing(["mse", "mae"], otherwise="a formula") == "mse, mae, or a formula"
    assert suggest.listing([f"x{i}" for i in range(20)], limit=3) == "x0, x1, x2, … (20 in all)"


# --- through the entry points ----------------------------------------------------------------


def derive(text: str, tmp_path: Path, capsys) -> str:
    """``chainrule derive spec`` on a bad spec: its one line of stderr, after checking it failed cleanly."""
    spec = tmp_path / "bad.toml"
    spec.write_text(text, encoding="utf-8")
    code = main(["derive", str(spec), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    return err


def spec_with(layer: str = '{ units = 1, activation = "identity" }', loss: str = '"mse"', extra: str = "") -> str:
    return f"[network]\ninputs = 2\nlayers = [ {layer} ]\nloss = {loss}\n{extra}"


ENTRY_POINTS = {
    "activation": lambda name: spec_with(layer=f'{{ units = 1, activation = "{name}" }}'),
    "loss": lambda name: spec_with(loss=f'"{name}"'),
    "regularizer": lambda name: spec_with(extra=f'regularizer = "{name}"\n'),
    "layer kind": lambda name: spec_with(layer=f'{{ units = 2 }}, {{ kind = "{name}" }}'),
}


@pytest.mark.parametrize(("what", "entry"), [case for case in cases() if case[0] in ENTRY_POINTS])
def test_a_spec_file_with_a_slip_is_told_the_entry(what: str, entry: str, tmp_path: Path, capsys) -> None:
    err = derive(ENTRY_POINTS[what](typo(entry)), tmp_path, capsys)
    names = TABLES[what]
    # Activations and losses may be formulas too; regularizers and layer kinds only names.
    choices = f"{', '.join(names)}, or a formula in" if what in ("activation", "loss") else f"{', '.join(names[:-1])} or {names[-1]})"
    assert f"unknown {what} '{typo(entry)}'; did you mean '{entry}'? (use {choices}" in err
    with pytest.raises(SpecError) as caught:
        loads(ENTRY_POINTS[what](typo(entry)))
    assert f"; did you mean '{entry}'? " in caught.value.message


@pytest.mark.parametrize("what", list(ENTRY_POINTS))
def test_a_spec_file_with_a_far_off_name_is_told_every_name(what: str, tmp_path: Path, capsys) -> None:
    err = derive(ENTRY_POINTS[what](FAR), tmp_path, capsys)
    assert f"unknown {what} '{FAR}'; use {', '.join(TABLES[what][:-1])}" in err and "did you mean" not in err


def test_a_formula_in_a_spec_says_the_whole_choice() -> None:
    with pytest.raises(SpecError) as caught:
        loads(spec_with(loss='"mes"'))
    assert caught.value.message == (
        "unknown loss 'mes'; did you mean 'mse'? (use " + ", ".join(LOSSES)
        + ', or a formula in yhat and y such as "log(cosh(yhat - y))")'
    )


@pytest.mark.parametrize("entry", sorted(FUNCTIONS))
def test_explain_with_a_slip_in_a_function_is_told_the_function(entry: str, tmp_path: Path, capsys) -> None:
    formula = f"{typo(entry)}(x)"
    code = main(["explain", formula, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (
        f"chainrule: formula, column 1: unknown function '{typo(entry)}'; did you mean '{entry}'? "
        f"(use {suggest.listing(sorted(FUNCTIONS))}) (near {formula!r})\n"
    )
    assert not (tmp_path / "out").exists()


def test_explain_with_a_far_off_function_is_told_every_function(tmp_path: Path, capsys) -> None:
    code = main(["explain", f"{FAR}(x)", "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2 and f"unknown function '{FAR}'; use abs, acos, asin" in err and "did you mean" not in err


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("z/(1 + abs(zz))", ["z"], "unknown variable 'zz'; did you mean 'z'? (use z, pi or e)"),
        ("(yhat - yy)**2", ["yhat", "y"], "unknown variable 'yy'; did you mean 'y'? (use yhat, y, pi or e)"),
        ("2*pii", ["x"], "unknown variable 'pii'; did you mean 'pi'? (use x, pi or e)"),
        ("w1*x + q", ["w1", "x"], "unknown variable 'q'; use w1, x, pi or e"),
        ("2*q", [], "unknown name 'q'; this formula has no variables, only the constants pi and e"),
        ("x0 + q", [f"x{i}" for i in range(20)], "unknown variable 'q'; use x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, … (22 in all)"),
    ],
)
def test_an_unknown_variable_is_told_the_closest_variable(text: str, variables: list[str], message: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse(text, variables)
    assert caught.value.message == message


def test_a_slip_in_a_spec_formula_names_the_variable(tmp_path: Path, capsys) -> None:
    err = derive(spec_with(layer='{ units = 1, activation = "z/(1 + abs(zz))" }'), tmp_path, capsys)
    assert "network.layers[0].activation: activation, column 12: unknown variable 'zz'; did you mean 'z'? (use z, pi or e)" in err


@pytest.mark.parametrize("entry", list(INIT_SCHEMES))
def test_init_params_with_a_slip_is_told_the_scheme(entry: str) -> None:
    model = compile(Network(2, (Dense(1, "identity"),), "mse"))
    with pytest.raises(ValueError, match=f"^unknown init scheme '{typo(entry)}'; did you mean '{entry}'\\? \\(use normal, "):
        model.init_params(scheme=typo(entry))
    with pytest.raises(ValueError, match=f"^unknown init scheme '{FAR}'; use normal, uniform, "):
        model.init_params(scheme=FAR)


@pytest.mark.parametrize("entry", list(DATASETS))
def test_load_dataset_with_a_slip_is_told_the_data_set(entry: str) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset(typo(entry), outputs=1)
    assert str(caught.value) == f"data: unknown data set '{typo(entry)}'; did you mean '{entry}'? (use {suggest.listing(DATASETS)})"


@pytest.mark.parametrize("entry", list(TARGETS))
def test_load_dataset_with_a_slip_in_the_targets_is_told_the_kind(entry: str) -> None:
    with pytest.raises(DataError, match=f"^targets: unknown kind of targets '{typo(entry)}'; did you mean '{entry}'\\?"):
        load_dataset("xor", outputs=1, targets=typo(entry))


FLOW_OPTIONS = {
    "--activation": ("activation", "activations", elementwise_activations()),
    "--init": ("init scheme", "inits", tuple(INIT_SCHEMES)),
    "--remedy": ("remedy", "remedies", REMEDIES),
}


@pytest.mark.parametrize(
    ("option", "entry"), [(option, entry) for option, (_, _, table) in FLOW_OPTIONS.items() for entry in table]
)
def test_flow_options_with_a_slip_are_told_the_entry(option: str, entry: str) -> None:
    what, keyword, table = FLOW_OPTIONS[option]
    with pytest.raises(FlowError) as caught:
        flow_settings(**{keyword: [typo(entry)]})
    assert str(caught.value) == f"{option}: unknown {what} '{typo(entry)}'; did you mean '{entry}'? (use {suggest.listing(table)})"


@pytest.mark.parametrize("entry", list(DATASETS))
def test_flow_data_with_a_slip_is_told_the_data_set(entry: str) -> None:
    with pytest.raises(FlowError, match=f"^--data: unknown data set '{typo(entry)}'; did you mean '{entry}'\\?"):
        flow_settings(data=typo(entry))


#: Each table of keys a spec has, and a spec whose table has the slip.
KEYS = {
    "title": ("", 'title = "t"\n' + spec_with()),
    "network.inputs": ("network", spec_with()),
    "network.layers": ("network", spec_with()),
    "network.loss": ("network", spec_with()),
    "network.regularizer": ("network", spec_with(extra='regularizer = "l2"\n')),
    "example.learning_rate": ("example", spec_with(extra="[example]\nlearning_rate = 0.5\n")),
    "example.W1": ("example", spec_with(extra="[example]\nW1 = [[0.1, 0.2]]\n")),
    "network.layers[0].units": ("network.layers[0]", spec_with()),
    "network.layers[0].activation": ("network.layers[0]", spec_with()),
    "network.layers[1].momentum": ("network.layers[1]", spec_with(layer='{ units = 2 }, { kind = "batch_norm", momentum = 0.1 }')),
}


@pytest.mark.parametrize("field", list(KEYS))
def test_a_slip_in_a_key_is_told_the_key(field: str) -> None:
    table, text = KEYS[field]
    key = field.rsplit(".", 1)[-1]
    slipped = typo(key)
    spelt = text.replace(f"{key} = ", f"{slipped} = ", 1)
    assert spelt != text
    with pytest.raises(SpecError) as caught:
        loads(spelt)
    place = f"{table}.{slipped}" if table else slipped
    assert caught.value.field == place
    assert caught.value.message.startswith(f"unknown key '{slipped}'; did you mean '{key}'? (use ")


def test_a_slip_in_an_activation_parameter_is_told_the_parameter() -> None:
    with pytest.raises(SpecError) as caught:
        loads(spec_with(layer='{ units = 1, activation = { name = "leaky_relu", alpah = 0.1 } }'))
    assert caught.value.field == "network.layers[0].activation.alpah"
    assert caught.value.message == "unknown key 'alpah'; did you mean 'alpha'? (use alpha)"


def test_constants_are_names_a_variable_slip_may_mean() -> None:
    assert set(CONSTANTS) == {"pi", "e"}  # the listing in the variable messages above names these two


# --- from_torch: the names its caller gives ----------------------------------------------------


def _torch_module():
    torch = pytest.importorskip("torch")

    class MySigmoid(torch.nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    return torch.nn.Sequential(torch.nn.Linear(2, 2), MySigmoid())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"custom": {"MySigmoid": "sigmod"}}, "from_torch: custom['MySigmoid']: unknown activation 'sigmod'; did you mean 'sigmoid'? (use identity, "),
        ({"loss": "cros_entropy"}, "from_torch: loss: unknown loss 'cros_entropy'; did you mean 'cross_entropy'? (use half_sse, "),
        ({"custom": {"MySigmiod": "sigmoid"}}, "from_torch: custom: unknown module class 'MySigmiod'; did you mean 'MySigmoid'? (use Sequential, Linear or MySigmoid)"),
        ({"custom": {"Conv2d": "sigmoid"}}, "from_torch: custom: unknown module class 'Conv2d'; use Sequential, Linear or MySigmoid"),
    ],
)
def test_from_torch_names_the_argument_with_a_slip(arguments: dict, message: str) -> None:
    from chainrule.from_torch import from_torch

    module = _torch_module()
    with pytest.raises(ValueError) as caught:
        from_torch(module, **arguments)
    assert str(caught.value).startswith(message), str(caught.value)
    assert from_torch(module, custom={"MySigmoid": "sigmoid"}).network.layers == (Dense(2, "sigmoid"),)

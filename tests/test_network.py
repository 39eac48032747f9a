"""Network specs: the Python API, TOML loading, and one precise error per kind of bad spec."""

from __future__ import annotations

import math
import time

import pytest
import sympy as sp

from chainrule import catalog
from chainrule.functions import sigmoid
from chainrule.network import (
    MAX_LAYERS,
    MAX_UNITS,
    MAX_VALUE,
    Dense,
    Example,
    Network,
    SpecError,
    default_network,
    from_dict,
    load,
    loads,
)

SOURCE = "spec.toml"

VALID = """\
title = "a small net"
[network]
inputs = 2
layers = [ { units = 3, activation = "tanh" }, { units = 1, activation = "identity", bias = false } ]
loss = "mse"
[example]
x = [0.5, -1]
y = [2.0]
learning_rate = 0.1
W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
b1 = [0.0, -0.5, 1]
W2 = [[1.0, -1.0, 0.25]]
"""

NETWORK = """\
[network]
inputs = 2
layers = [ { units = 2 }, { units = 1, activation = "identity" } ]
loss = "mse"
"""

#: A message must stay short however much text the user supplied.
MESSAGE_LIMIT = 300


def spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, source=SOURCE)
    return info.value


def assert_well_formed(error: SpecError, field: str) -> None:
    """``source: field: message`` on one line, short, naming ``field``."""
    text = str(error)
    assert error.field == field
    assert error.source == SOURCE
    assert text == f"{SOURCE}: {field}: {error.message}" if field else text == f"{SOURCE}: {error.message}"
    assert error.message
    assert "\n" not in text and "\r" not in text
    length = len(text)
    assert length <= MESSAGE_LIMIT


# --- valid specs ----------------------------------------------------------------------


def test_valid_spec_loads_every_field():
    net = loads(VALID, source=SOURCE)
    assert net.title == "a small net"
    assert net.inputs == 2
    assert net.layers == (Dense(3, "tanh", True), Dense(1, "identity", False))
    assert net.loss == "mse"
    assert net.sizes == (2, 3, 1)
    assert net.outputs == 1
    assert net.parameter_shapes() == {"W1": (3, 2), "b1": (3,), "W2": (1, 3)}
    ex = net.example
    assert ex.x == (0.5, -1.0) and ex.y == (2.0,) and ex.learning_rate == 0.1
    assert ex.parameters["W1"] == ((0.1, 0.2), (0.3, 0.4), (0.5, 0.6))
    assert ex.parameters["b1"] == (0.0, -0.5, 1.0)
    assert all(isinstance(v, float) for v in ex.parameters["b1"])  # integers become floats
    assert set(ex.parameters) == {"W1", "b1", "W2"}


def test_defaults_sigmoid_bias_and_no_example():
    net = loads('[network]\ninputs = 1\nlayers = [{ units = 1 }]\nloss = "half_sse"\n')
    assert net.layers == (Dense(1, "sigmoid", True),)
    assert net.example is None and net.title is None


def test_example_may_give_only_some_values():
    net = loads(NETWORK + "[example]\nx = [1, 2]\n")
    assert net.example.x == (1.0, 2.0)
    assert net.example.y is None and net.example.learning_rate is None and dict(net.example.parameters) == {}


@pytest.mark.parametrize("activation", sorted(catalog.ACTIVATIONS))
@pytest.mark.parametrize("loss", sorted(catalog.LOSSES))
def test_every_catalog_name_is_accepted_where_it_fits(activation, loss):
    text = f'[network]\ninputs = 1\nlayers = [{{ units = 2, activation = "{activation}" }}]\nloss = "{loss}"\n'
    required = catalog.LOSSES[loss].requires
    if required is not None and required != activation:
        with pytest.raises(SpecError, match=f"network.loss: {loss} expects a {required} output layer"):
            loads(text)
        return
    net = loads(text)
    assert net.layers[0].activation == activation and net.loss == loss
    assert net.activations[0].entry is catalog.ACTIVATIONS[activation]
    assert net.loss_choice.entry is catalog.LOSSES[loss]


@pytest.mark.parametrize("name", sorted(catalog.REGULARIZERS))
def test_every_regularizer_is_accepted(name):
    net = loads(NETWORK.replace('loss = "mse"', f'loss = "mse"\nregularizer = {{ name = "{name}", coefficient = 0.25 }}'))
    assert net.regularizer_choice.entry is catalog.REGULARIZERS[name]
    assert net.regularizer_choice.values == {"coefficient": 0.25}
    assert loads(NETWORK.replace('loss = "mse"', f'loss = "mse"\nregularizer = "{name}"')).regularizer_choice.values == {
        "coefficient": 0.01
    }


def test_parameters_in_inline_tables():
    net = loads(
        '[network]\ninputs = 1\nlayers = [{ units = 2, activation = { name = "leaky_relu", alpha = 0.1 } }, '
        '{ units = 1, activation = "prelu" }]\nloss = { name = "huber", delta = 0.5 }\n'
    )
    assert net.activations[0].values == {"alpha": 0.1}
    assert net.activations[0].label == "leaky_relu (α = 0.1)"
    assert net.activations[1].values == {"alpha": 0.25}  # PyTorch's starting value, learned
    assert net.loss_choice.values == {"delta": 0.5}
    assert net.parameter_shapes()["alpha2"] == ()


def test_custom_formulas_are_derived_like_built_ins():
    net = loads(
        '[network]\ninputs = 1\nlayers = [{ units = 2, activation = "z/(1+abs(z))" }, '
        '{ units = 1, activation = { formula = "z*sigmoid(beta*z)", beta = 1.5 } }]\n'
        'loss = { formula = "log(cosh(yhat - y))", reduction = "mean" }\n'
    )
    z, beta = catalog.Z, sp.Symbol("beta", real=True)
    assert net.activations[0].entry.formula == z / (1 + sp.Abs(z))
    assert sp.simplify(net.activations[0].entry.derivative - sp.diff(z / (1 + sp.Abs(z)), z)) == 0
    assert net.activations[1].entry.formula == z * sigmoid(beta * z)
    assert net.activations[1].values == {"beta": 1.5}
    assert net.loss_choice.entry.term == sp.log(sp.cosh(catalog.P - catalog.Y))
    assert net.loss_choice.entry.reduction == "mean"


#: Hostile text where a spec file takes a formula or a name: each is refused with the
#: field it came from, nothing runs, and the refusal is quick.
HOSTILE_SPEC_TEXT = [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "z.__class__",
    "exp.__globals__",
    'f"{z}"',
    "lambda: 1",
    "9**9**9",
    "((9**9)**9999)**9999",
    "factorial(10**7)",
    "(" * 300 + "z" + ")" * 300,
    "z" * 100_000,
    "ｚ + 1",
    "open('/etc/passwd')",
    "z if z else 1",
    "[c for c in ()]",
    "z; import os",
]


@pytest.mark.parametrize("text", HOSTILE_SPEC_TEXT, ids=range(len(HOSTILE_SPEC_TEXT)))
@pytest.mark.parametrize("where", ["activation", "loss", "constant", "constant value"])
def test_hostile_formulas_and_names_in_spec_files_are_refused(text, where, monkeypatch):
    import builtins
    import os

    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system was called"))
    monkeypatch.setattr(builtins, "__import__", _guarded_import(builtins.__import__))
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    if where == "activation":
        spec, field = f'[network]\ninputs = 1\nlayers = [{{ units = 1, activation = "{quoted}" }}]\nloss = "mse"\n', "network.layers[0].activation"
    elif where == "loss":
        spec, field = f'[network]\ninputs = 1\nlayers = [{{ units = 1 }}]\nloss = "{quoted}"\n', "network.loss"
    elif where == "constant":
        spec = f'[network]\ninputs = 1\nlayers = [{{ units = 1, activation = {{ formula = "k*z", "{quoted}" = 1 }} }}]\nloss = "mse"\n'
        field = "network.layers[0].activation"
    else:
        spec = f'[network]\ninputs = 1\nlayers = [{{ units = 1, activation = {{ formula = "k*z", k = "{quoted}" }} }}]\nloss = "mse"\n'
        field = "network.layers[0].activation"
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        loads(spec, source="hostile.toml")
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert message.startswith(f"hostile.toml: {field}")
    assert "\n" not in message and len(message) < 400


def _guarded_import(real):
    def guarded(name, *args, **kwargs):
        if name in ("os", "subprocess", "shutil") and args and args[0] is not None and args[0].get("__name__", "").startswith("chainrule"):
            pytest.fail(f"chainrule imported {name} while reading a spec")
        return real(name, *args, **kwargs)

    return guarded


def test_limits_are_inclusive():
    net = loads(f'[network]\ninputs = 1\nlayers = [{{ units = {MAX_UNITS} }}]\nloss = "mse"\n')
    assert net.layers[0].units == MAX_UNITS
    layers = ", ".join(["{ units = 1 }"] * MAX_LAYERS)
    assert len(loads(f'[network]\ninputs = 1\nlayers = [{layers}]\nloss = "mse"\n').layers) == MAX_LAYERS


def test_largest_example_value_is_accepted():
    net = loads(NETWORK + f"[example]\nx = [{MAX_VALUE}, {-MAX_VALUE}]\n")
    assert net.example.x == (MAX_VALUE, -MAX_VALUE)


def test_from_dict_equals_loads():
    data = {"network": {"inputs": 2, "layers": [{"units": 2}, {"units": 1, "activation": "relu"}], "loss": "mse"}}
    assert from_dict(data) == loads(NETWORK.replace('"identity"', '"relu"'))


def test_python_api_equals_spec():
    net = Network(2, [Dense(2), Dense(1, "identity")], "mse")
    assert net == loads(NETWORK)
    assert isinstance(net.layers, tuple)


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text(VALID, encoding="utf-8")
    assert load(path) == loads(VALID)
    assert load(str(path)) == loads(VALID)


def test_load_names_the_file_in_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(NETWORK.replace('"mse"', '"xent"'), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: network.loss: ")


def test_default_network_is_mazurs_example():
    net = default_network()
    assert net.sizes == (2, 2, 2)
    assert [l.activation for l in net.layers] == ["sigmoid", "sigmoid"]
    assert net.loss == "half_sse"
    assert net.example.x == (0.05, 0.10) and net.example.y == (0.01, 0.99)
    assert net.example.parameters["W2"] == ((0.40, 0.45), (0.50, 0.55))


# --- bad TOML specs: every kind, with the field it names ------------------------------

WITH_EXAMPLE = NETWORK + "[example]\n"
LAYERS = 'layers = [ { units = 2 }, { units = 1, activation = "identity" } ]\n'

BAD_SPECS = {
    "unknown activation": (NETWORK.replace('"identity"', '"swish2"'), "network.layers[1].activation", "swish2"),
    "softmax on a hidden layer": (
        NETWORK.replace('{ units = 2 }', '{ units = 2, activation = "softmax" }'),
        "network.layers[0].activation",
        "only supported on the output layer",
    ),
    "cross_entropy without softmax": (NETWORK.replace('"mse"', '"cross_entropy"'), "network.loss", "softmax output layer"),
    "unknown activation parameter": (
        NETWORK.replace('"identity"', '{ name = "leaky_relu", beta = 1 }'),
        "network.layers[1].activation.beta",
        "unknown key",
    ),
    "negative elu alpha": (
        NETWORK.replace('"identity"', '{ name = "elu", alpha = -1 }'),
        "network.layers[1].activation.alpha",
        "positive",
    ),
    "bad formula": (NETWORK.replace('"identity"', '"z +* 2"'), "network.layers[1].activation", "column"),
    "formula in an unknown variable": (NETWORK.replace('"identity"', '"x*2"'), "network.layers[1].activation", "x"),
    "unknown regularizer": (NETWORK.replace('loss = "mse"', 'loss = "mse"\nregularizer = "l3"'), "network.regularizer", "l3"),
    "one-hot targets for cross_entropy": (
        NETWORK.replace('"identity"', '"softmax"').replace("units = 1", "units = 2").replace('"mse"', '"cross_entropy"')
        + "[example]\ny = [0.5, 0.6]\n",
        "example.y",
        "adding up to 1",
    ),
    "activation not a string": (NETWORK.replace('"identity"', "3"), "network.layers[1].activation", "number 3"),
    "unknown loss": (NETWORK.replace('"mse"', '"xent"'), "network.loss", "xent"),
    "loss not a string": (NETWORK.replace('"mse"', "[1]"), "network.loss", "array"),
    # A wrong shape is named whole, with what its axes count, at the array's field.
    "W1 with too few rows": (
        WITH_EXAMPLE + "W1 = [[1, 2]]\n", "example.W1",
        "must have shape (2, 2): 2 units × 2 inputs of layer 1, one row per unit; got 1 row instead of 2",
    ),
    "W1 with too many rows": (WITH_EXAMPLE + "W1 = [[1, 2], [3, 4], [5, 6]]\n", "example.W1", "(2, 2): 2 units × 2 inputs of layer 1, one row per unit; got 3 rows instead of 2"),
    "W1 with a short row": (WITH_EXAMPLE + "W1 = [[1, 2], [3]]\n", "example.W1", "(2, 2): 2 units × 2 inputs of layer 1, one row per unit; row 1 has 1 number instead of 2"),
    "W1 with a long row": (WITH_EXAMPLE + "W1 = [[1, 2, 3], [3, 4]]\n", "example.W1", "; row 0 has 3 numbers instead of 2"),
    "W1 flat": (WITH_EXAMPLE + "W1 = [1, 2]\n", "example.W1", "; row 0 is the number 1, not an array of 2 numbers"),
    "W2 a number": (WITH_EXAMPLE + "W2 = 3\n", "example.W2", "(1, 2): 1 unit × 2 inputs of layer 2, one row per unit; got the number 3, not an array of 1 row"),
    "b1 too short": (WITH_EXAMPLE + "b1 = [1]\n", "example.b1", "(2,): one number for each of the 2 units of layer 1; got 1 number instead of 2"),
    "b2 too long": (WITH_EXAMPLE + "b2 = [1, 2]\n", "example.b2", "(1,): one number for the one unit of layer 2; got 2 numbers instead of 1"),
    "x wrong length": (WITH_EXAMPLE + "x = [1, 2, 3]\n", "example.x", "(2,): one number for each of the 2 inputs of the network; got 3 numbers instead of 2"),
    "y wrong length": (WITH_EXAMPLE + "y = []\n", "example.y", "(1,): one number for the one output of the network; got 0 numbers instead of 1"),
    "x rows of different lengths": (
        WITH_EXAMPLE + "x = [[1, 2], [3]]\ny = [[1], [2]]\n", "example.x",
        "(2, 2): 2 examples × 2 inputs of the network, one row per example; row 1 has 1 number instead of 2",
    ),
    "y flat while x is rows": (
        WITH_EXAMPLE + "x = [[1, 2], [3, 4]]\ny = [0.5]\n", "example.y",
        "(2, 1): 2 examples × 1 output of the network, one row per example; row 0 is the number 0.5, not an array of 1 number",
    ),
    "an array for a number": (WITH_EXAMPLE + "x = [[1], 2]\n", "example.x[0]", "must be a number, got an array of 1 item"),
    "y rows fewer than x rows": (
        WITH_EXAMPLE + "x = [[1, 2], [3, 4]]\ny = [[1]]\n", "example.y",
        "(2, 1): 2 examples × 1 output of the network, one row per example; got 1 row instead of 2",
    ),
    "bias for a layer without one": (
        NETWORK.replace("{ units = 2 }", "{ units = 2, bias = false }") + "[example]\nb1 = [1, 2]\n",
        "example.b1",
        "unknown key",
    ),
    "parameters of a layer that does not exist": (WITH_EXAMPLE + "W3 = [[1]]\n", "example.W3", "unknown key"),
    "missing inputs": (NETWORK.replace("inputs = 2\n", ""), "network.inputs", "missing"),
    "missing layers": (NETWORK.replace(LAYERS, ""), "network.layers", "missing"),
    "missing loss": (NETWORK.replace('loss = "mse"\n', ""), "network.loss", "missing"),
    "missing network table": ('title = "x"\n', "network", "missing"),
    "network not a table": ("network = 3\n", "network", "table"),
    "example not a table": ("example = 3\n" + NETWORK, "example", "table"),
    "layers not an array": (NETWORK.replace(LAYERS, "layers = 3\n"), "network.layers", "non-empty"),
    "layer not a table": (NETWORK.replace("{ units = 2 }", "2"), "network.layers[0]", "table"),
    "string for inputs": (NETWORK.replace("inputs = 2", 'inputs = "2"'), "network.inputs", "string '2'"),
    "string for units": (NETWORK.replace("units = 2", 'units = "2"'), "network.layers[0].units", "string"),
    "string in x": (WITH_EXAMPLE + 'x = ["a", 1]\n', "example.x[0]", "string 'a'"),
    "string for learning rate": (WITH_EXAMPLE + 'learning_rate = "0.5"\n', "example.learning_rate", "string"),
    "string in W": (WITH_EXAMPLE + 'W2 = [[1, "2"]]\n', "example.W2[0][1]", "string"),
    "string for title": ("title = 3\n" + NETWORK, "title", "number 3"),
    "float for units": (NETWORK.replace("units = 2", "units = 2.0"), "network.layers[0].units", "2.0"),
    "boolean for inputs": (NETWORK.replace("inputs = 2", "inputs = true"), "network.inputs", "boolean true"),
    "boolean for units": (NETWORK.replace("units = 2", "units = true"), "network.layers[0].units", "boolean"),
    "boolean in x": (WITH_EXAMPLE + "x = [true, 1]\n", "example.x[0]", "boolean true"),
    "boolean in y": (WITH_EXAMPLE + "y = [false]\n", "example.y[0]", "boolean false"),
    "boolean in b": (WITH_EXAMPLE + "b1 = [1, true]\n", "example.b1[1]", "boolean"),
    "boolean for learning rate": (WITH_EXAMPLE + "learning_rate = true\n", "example.learning_rate", "boolean"),
    "string for bias": (NETWORK.replace("{ units = 2 }", '{ units = 2, bias = "no" }'), "network.layers[0].bias", "true or false"),
    "number for bias": (NETWORK.replace("{ units = 2 }", "{ units = 2, bias = 1 }"), "network.layers[0].bias", "true or false"),
    "nan learning rate": (WITH_EXAMPLE + "learning_rate = nan\n", "example.learning_rate", "finite"),
    "inf learning rate": (WITH_EXAMPLE + "learning_rate = inf\n", "example.learning_rate", "finite"),
    "nan in x": (WITH_EXAMPLE + "x = [nan, 1]\n", "example.x[0]", "finite"),
    "inf in y": (WITH_EXAMPLE + "y = [inf]\n", "example.y[0]", "finite"),
    "-inf in W": (WITH_EXAMPLE + "W2 = [[1, -inf]]\n", "example.W2[0][1]", "finite"),
    "nan in b": (WITH_EXAMPLE + "b2 = [-nan]\n", "example.b2[0]", "finite"),
    "number too large in x": (WITH_EXAMPLE + "x = [1e7, 1]\n", "example.x[0]", "from -"),
    "number too large in W": (WITH_EXAMPLE + "W2 = [[1, -2e6]]\n", "example.W2[0][1]", "from -"),
    "learning rate too large": (WITH_EXAMPLE + "learning_rate = 1e300\n", "example.learning_rate", "from -"),
    "zero learning rate": (WITH_EXAMPLE + "learning_rate = 0\n", "example.learning_rate", "positive"),
    "negative learning rate": (WITH_EXAMPLE + "learning_rate = -0.5\n", "example.learning_rate", "positive"),
    "unknown top-level key": ("foo = 1\n" + NETWORK, "foo", "unknown key"),
    "unknown key in network": (NETWORK + "foo = 1\n", "network.foo", "unknown key"),
    "unknown key in a layer": (NETWORK.replace("{ units = 2 }", "{ units = 2, size = 3 }"), "network.layers[0].size", "unknown key"),
    "unknown key in example": (WITH_EXAMPLE + "eta = 1\n", "example.eta", "unknown key"),
    "unknown table": (NETWORK + "[trainer]\nepochs = 3\n", "trainer", "unknown key"),
    "zero inputs": (NETWORK.replace("inputs = 2", "inputs = 0"), "network.inputs", "1 to"),
    "negative inputs": (NETWORK.replace("inputs = 2", "inputs = -1"), "network.inputs", "1 to"),
    "zero units": (NETWORK.replace("units = 2", "units = 0"), "network.layers[0].units", "1 to"),
    "too many units": (NETWORK.replace("units = 2", f"units = {MAX_UNITS + 1}"), "network.layers[0].units", str(MAX_UNITS)),
    "too many inputs": (NETWORK.replace("inputs = 2", "inputs = 100000"), "network.inputs", "1 to"),
    "empty layers list": (NETWORK.replace(LAYERS, "layers = []\n"), "network.layers", "non-empty"),
    "too many layers": (
        NETWORK.replace(LAYERS, "layers = [" + ", ".join(["{ units = 1 }"] * (MAX_LAYERS + 1)) + "]\n"),
        "network.layers",
        str(MAX_LAYERS),
    ),
    "title too long": (f'title = "{"t" * 201}"\n' + NETWORK, "title", "200"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_names_its_field(case):
    text, field, hint = BAD_SPECS[case]
    error = spec_error(text)
    assert_well_formed(error, field)
    assert hint in error.message


@pytest.mark.parametrize(
    "text",
    [
        NETWORK + "inputs = \n",  # no value
        "[network\n",
        NETWORK + "inputs = 3\n",  # a key given twice
        'title = "unterminated\n' + NETWORK,
    ],
    ids=["no value", "unclosed table", "duplicate key", "unterminated string"],
)
def test_malformed_toml(text):
    error = spec_error(text)
    assert_well_formed(error, "")
    assert error.message.startswith("malformed TOML: ")
    assert "line" in error.message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "net.toml"
    with pytest.raises(SpecError) as info:
        load(path)
    error = info.value
    assert error.field == ""
    assert error.source == str(path)
    assert str(error) == f"{path}: {error.message}"
    assert "no such file" in error.message


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "net.toml"
    path.write_bytes(b"\xff\xfe[network]\n")
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.field == "" and str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_error_is_a_value_error_and_relocatable():
    error = spec_error(NETWORK.replace('"mse"', '"xent"'))
    assert isinstance(error, ValueError)
    moved = error.located("other.toml")
    assert str(moved) == f"other.toml: network.loss: {error.message}"


# --- messages stay one short line whatever the user wrote -----------------------------

HUGE = 2_000_000


@pytest.mark.parametrize(
    "text, field",
    [
        (NETWORK.replace('"identity"', f'"{"q" * HUGE}"'), "network.layers[1].activation"),
        (NETWORK.replace('"mse"', f'"{"q" * HUGE}"'), "network.loss"),
        (WITH_EXAMPLE + f'learning_rate = "{"z" * HUGE}"\n', "example.learning_rate"),
        (WITH_EXAMPLE + f'x = ["{"z" * HUGE}", 1]\n', "example.x[0]"),
        (f'title = "{"t" * HUGE}"\n' + NETWORK, "title"),
        (NETWORK.replace('"identity"', '"line one\\nline two"'), "network.layers[1].activation"),
        (NETWORK + f'x = "{"z" * HUGE}\n', ""),  # malformed: unterminated string
    ],
    ids=["activation", "loss", "learning rate", "x entry", "title", "newline in a value", "malformed"],
)
def test_message_does_not_echo_user_text(text, field):
    error = spec_error(text)
    assert_well_formed(error, field)


@pytest.mark.parametrize(
    "text, where",
    [
        (f'"{"k" * HUGE}" = 1\n' + NETWORK, ""),
        (NETWORK + f'"{"k" * HUGE}" = 1\n', "network."),
        (NETWORK.replace("{ units = 2 }", f'{{ units = 2, "{"k" * HUGE}" = 1 }}'), "network.layers[0]."),
        (WITH_EXAMPLE + f'"{"k" * HUGE}" = 1\n', "example."),
    ],
    ids=["top level", "network", "layer", "example"],
)
def test_unknown_key_message_does_not_echo_a_huge_key(text, where):
    """A 2 MB key must not come back as a 2 MB field name and message."""
    error = spec_error(text)
    assert error.field[: len(where)] == where
    assert "unknown key" in error.message[:100]
    length = len(str(error))
    assert length <= MESSAGE_LIMIT


def test_unknown_key_with_control_characters_stays_on_one_line():
    error = spec_error(NETWORK + '"a\\nb\\u2028c" = 1\n')
    assert_well_formed(error, "network.a\\nb\\u2028c")


# --- the Python API gets the same checks ----------------------------------------------

PYTHON_ERRORS = {
    "zero inputs": (lambda: Network(0, (Dense(1),)), "network.inputs"),
    "float inputs": (lambda: Network(2.0, (Dense(1),)), "network.inputs"),
    "boolean inputs": (lambda: Network(True, (Dense(1),)), "network.inputs"),
    "no layers": (lambda: Network(2, ()), "network.layers"),
    "too many layers": (lambda: Network(2, (Dense(1),) * (MAX_LAYERS + 1)), "network.layers"),
    "not a Dense": (lambda: Network(2, (Dense(1), {"units": 1})), "network.layers[1]"),
    "zero units": (lambda: Network(2, (Dense(0),)), "network.layers[0].units"),
    "boolean units": (lambda: Network(2, (Dense(True),)), "network.layers[0].units"),
    "too many units": (lambda: Network(2, (Dense(MAX_UNITS + 1),)), "network.layers[0].units"),
    "unknown activation": (lambda: Network(2, (Dense(1, "swish2"),)), "network.layers[0].activation"),
    "bad formula": (lambda: Network(2, (Dense(1, "z**"),)), "network.layers[0].activation"),
    "bias not a bool": (lambda: Network(2, (Dense(1, bias=1),)), "network.layers[0].bias"),
    "unknown loss": (lambda: Network(2, (Dense(1),), "xent"), "network.loss"),
    "long title": (lambda: Network(2, (Dense(1),), title="t" * 201), "title"),
    "example not an Example": (lambda: Network(2, (Dense(1),), example={"x": (1.0, 2.0)}), "example"),
    "x of wrong length": (lambda: Network(2, (Dense(1),), example=Example(x=(1.0,))), "example.x"),
    "nan in y": (lambda: Network(2, (Dense(1),), example=Example(y=(math.nan,))), "example.y[0]"),
    "zero learning rate": (lambda: Network(2, (Dense(1),), example=Example(learning_rate=0.0)), "example.learning_rate"),
    "W1 of wrong shape": (
        lambda: Network(2, (Dense(1),), example=Example(parameters={"W1": ((1.0, 2.0, 3.0),)})),
        "example.W1",
    ),
    "bias for a layer without one": (
        lambda: Network(2, (Dense(1, bias=False),), example=Example(parameters={"b1": (1.0,)})),
        "example.b1",
    ),
}


@pytest.mark.parametrize("case", sorted(PYTHON_ERRORS))
def test_python_api_raises_spec_error(case):
    build, field = PYTHON_ERRORS[case]
    with pytest.raises(SpecError) as info:
        build()
    assert info.value.field == field
    assert str(info.value).startswith(f"<network>: {field}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("layers", [None, Dense(1), 3], ids=["None", "a bare Dense", "a number"])
def test_python_api_layers_that_are_not_a_list(layers):
    """A spec file with ``layers = 3`` gets a SpecError naming network.layers; so should Python."""
    with pytest.raises(SpecError) as info:
        Network(2, layers)
    assert info.value.field == "network.layers"


@pytest.mark.parametrize(
    "build",
    [lambda: Network("x" * HUGE, (Dense(1),)), lambda: Network(2, (Dense("x" * HUGE),))],
    ids=["inputs", "units"],
)
def test_python_api_message_does_not_echo_a_huge_value(build):
    with pytest.raises(SpecError) as info:
        build()
    length = len(str(info.value))
    assert length <= MESSAGE_LIMIT

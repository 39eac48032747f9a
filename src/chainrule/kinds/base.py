"""What every layer kind supplies, and the records its builders return.

A kind is one entry of ``KINDS``. It turns its spec (``Dense(3, "tanh")``,
``BatchNorm()``) into *stages* — numbered steps of the network, each with one output
a⁽ˡ⁾ — and for each stage it supplies, through the builders it is handed:

- ``graph``: its scalar definition as named graph nodes (``graph.py`` hands it a
  ``GraphBuilder``);
- ``forward`` and ``backward``: its batch-level rules with their NumPy lines
  (``layers.py`` hands it a ``RuleBuilder``); the backward rules start from G⁽ˡ⁾ = ∂L/∂A⁽ˡ⁾
  and contribute to the G of the stages that feed it;
- ``equations``: its layer-level equations for documents, in vector form and entry by entry;
- its parameters with their shapes and initial values, its running state, its title and
  picture, and its PyTorch counterpart (``from_torch.py``).

The graph, the reverse walk, ``compile``, ``prove`` and the renderers call these and never
name a kind.

>>> Stage(3, "dropout", None, 4, 4, 2).source
2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

#: A grid of symbols: one row per example of the batch, one column per unit (or one row
#: for per-unit quantities such as a batch mean, one column for per-example ones).
Grid = tuple[tuple[sp.Symbol, ...], ...]


@dataclass(frozen=True)
class Stage:
    """One numbered step of the flattened network: its kind, its spec and its widths."""

    number: int
    kind: str
    spec: Any
    inputs: int  # width of a⁽ˡ⁻¹⁾
    units: int  # width of a⁽ˡ⁾
    source: int  # the stage whose output it reads (0: the inputs x)
    #: A residual sum's second input: the stage before its block (a⁽ˡ⁾ = a⁽ˢᵏⁱᵖ⁾ + F).
    skip: int | None = None
    #: The activation of a dense stage, resolved from the catalog.
    choice: Any = None
    #: Where the spec wrote it, for messages: "network.layers[2].layers[0]".
    where: str = ""
    #: The numbers of the stages inside a residual block (its F), for titles and pictures.
    inner: tuple[int, ...] = ()


@dataclass(frozen=True)
class Layer:
    """The symbols of one stage, for documents, pictures, numbers and the proof."""

    number: int
    kind: str
    #: "2 sigmoid units", "batch normalization over 3 units".
    title: str
    #: a⁽ˡ⁻¹⁾ and a⁽ˡ⁾ by example and unit.
    input_grid: Grid
    output_grid: Grid
    #: Parameter arrays by the name their array has ("W2", "gamma3") as nested tuples of symbols.
    arrays: Mapping[str, Any]
    #: Arrays the batch-level code computes, by name, with the scalar symbols of their entries.
    forward: Mapping[str, Grid]
    #: Arrays of adjoints the code computes: entry [n, j] is ∂L/∂(symbol [n][j]).
    backward: Mapping[str, Grid]
    #: Per-example leaves that are neither inputs nor parameters (dropout's mask), by array name.
    leaves: Mapping[str, Grid]
    #: The nodes of the stage, in the order the forward pass computes them.
    nodes: tuple[sp.Symbol, ...]
    #: Dense stages: the activation's label, weights [j][k], biases, z, a and δ, flat by
    #: example then unit; other stages leave them empty.
    activation: str | None = None
    weights: tuple[tuple[sp.Symbol, ...], ...] = ()
    biases: tuple[sp.Symbol, ...] | None = None
    z: tuple[sp.Symbol, ...] = ()
    deltas: tuple[sp.Symbol, ...] = ()
    #: Learned parameters of the activation, by the name their array has ("alpha1" of prelu).
    learned: tuple[tuple[str, sp.Symbol], ...] = ()
    skip: int | None = None
    #: The parameter arrays named in words, for documents: "weights of layer 1" (else the array's name).
    array_words: Mapping[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[sp.Symbol, ...]:
        return tuple(s for row in self.input_grid for s in row)

    @property
    def a(self) -> tuple[sp.Symbol, ...]:
        return tuple(s for row in self.output_grid for s in row)


@dataclass(frozen=True)
class Kernel:
    """An elementwise function the generated code calls: ``name(*args) = expr``, entry by entry."""

    name: str
    args: tuple[sp.Symbol, ...]
    expr: sp.Expr
    #: What it is, for documents: "f′ of layer 1", "∂ℓ/∂ŷ".
    title: str


@dataclass(frozen=True)
class VectorRule:
    """One batch-level equation ``lhs = rhs`` and the NumPy line(s) that compute it."""

    #: "forward", "activation", "loss", "BP1" … "BP4", "parameter", "penalty", "gradient",
    #: or a kind's own ("normalize", "dropout", "residual").
    label: str
    layer: int | None
    lhs: sp.Basic
    rhs: sp.Basic
    code: str
    #: Why the rule has this form, when it is not the general one ("the targets add up to 1").
    note: str | None = None


@dataclass(frozen=True)
class LayerEquation:
    """A layer's equation in vector form (BP1–BP4, the batch-norm backward), written out entry by entry."""

    label: str
    layer: int
    lhs: sp.Expr
    rhs: sp.Expr
    #: The same right-hand side as an explicit matrix of forward symbols and δs.
    explicit: sp.ImmutableMatrix
    #: What the equation says, for documents ("BP2, the error passed back through the weights").
    title: str = ""
    #: Where the entries of ``explicit`` are ∂L/∂(symbol): those symbols, in the same shape (else empty).
    of: tuple = ()
    #: Why this step follows from the one before, for documents.
    because: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "explicit", sp.ImmutableMatrix(self.explicit))


@dataclass(frozen=True)
class Picture:
    """How the network picture draws a stage: as units (dense), a box, masked units, or a sum with its skip arc."""

    #: "units", "box" (a normalization), "mask" (dropout: units some of which are crossed out), "sum" (a residual ⊕).
    style: str
    #: The short label in the picture: "BN", "LN", "p = 0.2", "+".
    label: str
    #: A caption for the legend: "batch normalization: μ, σ² over the batch, then γ x̂ + β".
    caption: str


class Kind:
    """The interface of a layer kind; each method's docstring says what it must return."""

    #: The name a spec file uses: ``kind = "batch_norm"``.
    name: str = ""
    #: The dataclass a Python user writes (``BatchNorm``).
    spec: type = object
    #: The keys its spec table takes beside ``kind``, for messages.
    keys: tuple[str, ...] = ()
    #: True when its scalar definition couples the examples of a batch (batch norm).
    couples_batch: bool = False
    #: PyTorch module classes it reads, by name (``from_torch.py``).
    torch_modules: tuple[str, ...] = ()

    def parse(self, table: Mapping[str, Any], where: str, parse_layers) -> Any:
        """The spec from a TOML table; ``parse_layers(value, where)`` parses nested layer lists."""
        raise NotImplementedError

    def stages(self, spec: Any, number: int, width: int, where: str, flatten) -> list[Stage]:
        """The numbered stages of ``spec`` starting at ``number`` after a layer of ``width``.

        ``flatten(specs, number, width, where)`` flattens nested layers (residual blocks).
        """
        raise NotImplementedError

    def narrowed(self, spec: Any, width: int, narrow) -> Any:
        """The spec with its widths capped at ``width`` (``prove`` checks the rules on a narrow copy);
        ``narrow(layers, width)`` narrows nested layers. Kinds that set no width keep their spec."""
        return spec

    def parameters(self, stage: Stage) -> dict[str, tuple[int, ...]]:
        """``{"W2": (units, inputs), ...}``: the stage's parameter arrays and their shapes."""
        return {}

    def penalized(self, stage: Stage) -> list[str]:
        """The parameter arrays a regularizer's penalty applies to (dense weights, never biases)."""
        return []

    def initial(self, stage: Stage, name: str, shape: tuple[int, ...]) -> float | None:
        """The value a parameter array starts at when it is not drawn (γ = 1, β = 0), or None."""
        return None

    def draw(self, stage: Stage, name: str, shape: tuple[int, ...], rng) -> Any:
        """A worked example's value of a parameter array, drawn from ``rng`` (then rounded):
        around 1 for what starts at 1 (γ), else from −0.5 to 0.5."""
        start = self.initial(stage, name, shape)
        return rng.uniform(-0.5, 0.5, shape) + (1.0 if start == 1.0 else 0.0)

    def draw_leaf(self, stage: Stage, name: str, shape: tuple[int, ...], rng) -> Any:
        """A worked example's value of a per-example leaf (dropout's mask), drawn from ``rng``."""
        raise NotImplementedError

    def state(self, stage: Stage) -> dict[str, tuple[int, ...]]:
        """Running state kept between training steps (batch norm's statistics), with shapes."""
        return {}

    def leaves(self, stage: Stage, batch: int) -> dict[str, tuple[int, ...]]:
        """Per-example leaves of the stage (dropout's mask), with their shapes."""
        return {}

    def title(self, stage: Stage) -> str:
        raise NotImplementedError

    def describe(self, stage: Stage) -> dict[str, Any]:
        """The stage as the JSON document lists it: its kind, width and options (not its inner layers)."""
        options = {k: v for k, v in vars(stage.spec).items() if k != "layers"}
        if stage.choice is not None:
            options = {"activation": stage.choice.name, "parameters": dict(stage.choice.values)}
        return {"kind": self.name, "units": stage.units, **options}

    def picture(self, stage: Stage) -> Picture:
        """How the network picture shows the stage."""
        return Picture("units", "", self.title(stage))

    def graph(self, stage: Stage, g) -> Layer:
        """Add the stage's nodes to the ``GraphBuilder`` and return its symbols."""
        raise NotImplementedError

    def forward(self, stage: Stage, r, training: bool) -> None:
        """Emit the stage's forward rules (training or evaluation) to the ``RuleBuilder``."""
        raise NotImplementedError

    def backward(self, stage: Stage, r) -> None:
        """Emit the stage's backward rules, from G⁽ˡ⁾, contributing to the G of its inputs."""
        raise NotImplementedError

    def planted_bugs(self, stage: Stage, rules) -> list[tuple[str, Any]]:
        """The classic mistakes in writing this stage's backward by hand, each as ``(words, rules)``:
        what the bug is, and the network's ``LayerRules`` with it planted (``diagnose`` compiles them
        and names the bug whose gradients a user's equal)."""
        return []

    def equations(self, stage: Stage, layer: Layer, d) -> tuple[LayerEquation, ...]:
        """The stage's layer-level equations; ``d`` gives adjoints, vector symbols and the graph."""
        return ()


def with_backward_code(rules, target: str, old: str, new: str):
    """``rules`` with ``old`` replaced by ``new`` in the backward rule whose code assigns ``target``;
    None when no such rule holds ``old``.

    >>> from chainrule.network import Network, Dense
    >>> from chainrule.layers import layer_rules
    >>> rules = layer_rules(Network(2, (Dense(2, "tanh"), Dense(1, "identity")), "mse"))
    >>> with_backward_code(rules, "G1", "D2 @ W2", "D2").backward[3].code
    'G1 = D2'
    """
    from dataclasses import replace

    for rule in rules.backward:
        if rule.code.startswith(f"{target} =") and old in rule.code:
            broken = replace(rule, code=rule.code.replace(old, new, 1))
            return replace(rules, backward=tuple(broken if r is rule else r for r in rules.backward))
    return None

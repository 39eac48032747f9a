"""The closest known name to a misspelt one, for every table's "unknown name" message.

Every lookup in a table (activations, losses, layer kinds, optimizers, schedules, inits, data
sets, formula functions) says what it expected the same way:

>>> unknown("activation", "sigmoud", ["identity", "sigmoid", "tanh", "relu"])
"unknown activation 'sigmoud'; did you mean 'sigmoid'? (use identity, sigmoid, tanh or relu)"
>>> unknown("optimizer", "zzz", ["sgd", "adam"])
"unknown optimizer 'zzz'; use sgd or adam"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How much of a user's string a message repeats: enough to recognize it, never a whole file.
SHOWN = 30

#: difflib's similarity ratio a name must reach to be suggested (0.6 is difflib's default,
#: which misses one-letter slips in short names such as "adm" for "adam").
CUTOFF = 0.5


def closest(name: str, names: Iterable[str]) -> str | None:
    """The known name nearest to ``name``, or None when none is near.

    Case is ignored when comparing, so "ReLU" finds "relu".

    >>> closest("adm", ["sgd", "adam", "adamw"])
    'adam'
    >>> closest("ReLU", ["relu", "tanh"])
    'relu'
    >>> closest("q", ["relu", "tanh"]) is None
    True
    """
    known = list(dict.fromkeys(names))
    by_folded = {n.lower(): n for n in reversed(known)}
    match = difflib.get_close_matches(name.lower(), list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[match[0]] if match else None


def listing(names: Iterable[str]) -> str:
    """``a, b or c``: a table's names as a sentence lists them.

    >>> listing(["a"]), listing(["a", "b"]), listing(["a", "b", "c"])
    ('a', 'a or b', 'a, b or c')
    """
    known = list(dict.fromkeys(names))
    return known[0] if len(known) == 1 else f"{', '.join(known[:-1])} or {known[-1]}"


def unknown(what: str, name: str, names: Iterable[str]) -> str:
    """The message for an unknown name: what it is, the closest known name, and every known name."""
    known = list(dict.fromkeys(names))
    near = closest(name, known)
    shown = repr(name[:SHOWN] + ("…" if len(name) > SHOWN else ""))
    if near is None:
        return f"unknown {what} {shown}; use {listing(known)}"
    return f"unknown {what} {shown}; did you mean {near!r}? (use {listing(known)})"

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
#: At most this share of a known name's letters may be slips for it to be suggested: "mnist"
#: shares three letters with "moons" (difflib's ratio 0.6) but is three slips away.
SLIPS = 1 / 3


def closest(name: str, names: Iterable[str]) -> str | None:
    """The known name nearest to ``name``, or None when none is near.

    Case is ignored when comparing, so "ReLU" finds "relu". A name is near when difflib's
    ratio reaches ``CUTOFF`` and it is a few typing slips away (a letter left out, added,
    changed or two swapped: one, or a third of the known name's letters); of the near names,
    the fewest slips away wins, so "abx" finds "abs" rather than "max", which difflib's ratio
    ranks alike. Ties go to the higher ratio, then to the table's order.

    >>> closest("adm", ["sgd", "adam", "adamw"])
    'adam'
    >>> closest("ReLU", ["relu", "tanh"])
    'relu'
    >>> closest("abx", ["max", "abs"])
    'abs'
    >>> closest("q", ["relu", "tanh"]) is None
    True
    >>> closest("mnist", ["moons", "digits"]) is None
    True
    """
    best = nearest(name, names)
    return best[0] if best else None


def nearest(name: str, names: Iterable[str]) -> list[str]:
    """Every known name as near to ``name`` as the closest one (in the table's order); [] when none is near.

    >>> nearest("l3", ["l1", "l2"]), nearest("sigmoud", ["sigmoid", "softmax"]), nearest("q", ["relu"])
    (['l1', 'l2'], ['sigmoid'], [])
    """
    folded = name.lower()
    near = []
    for index, known in enumerate(dict.fromkeys(names)):
        allowed = max(1, round(len(known) * SLIPS))
        # Lengths this far apart are more slips apart than allowed: a pasted paragraph is compared with nothing.
        if abs(len(folded) - len(known)) > allowed:
            continue
        ratio = difflib.SequenceMatcher(None, folded, known.lower()).ratio()
        distance = slips(folded, known.lower())
        if ratio >= CUTOFF and distance <= allowed:
            near.append((distance, -ratio, index, known))
    near.sort()
    return [entry[3] for entry in near if entry[:2] == near[0][:2]]


def slips(a: str, b: str) -> int:
    """How many letters left out, added, changed or swapped with a neighbour turn ``a`` into ``b``.

    (The optimal string alignment distance: Damerau-Levenshtein without editing a part twice.)

    >>> slips("sigmoud", "sigmoid"), slips("sigomid", "sigmoid"), slips("elu", "relu"), slips("", "abc")
    (1, 1, 1, 3)
    """
    previous: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        before, previous, row = previous, row, [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]


def listing(names: Iterable[str], otherwise: str = "", limit: int | None = None) -> str:
    """``a, b or c``: a table's names as a sentence lists them.

    ``otherwise`` is one more choice that is not a name (", or a formula in z ..."); past
    ``limit`` names, the list ends with how many there are in all.

    >>> listing(["a"]), listing(["a", "b"]), listing(["a", "b", "c"])
    ('a', 'a or b', 'a, b or c')
    >>> listing(["a", "b"], otherwise="a formula"), listing("abcdef", limit=3)
    ('a, b, or a formula', 'a, b, c, … (6 in all)')
    """
    known = list(dict.fromkeys(names))
    if limit is not None and len(known) > limit:
        return f"{', '.join(known[:limit])}, … ({len(known)} in all)"
    if otherwise:
        return ", ".join([*known, f"or {otherwise}"])
    return known[0] if len(known) == 1 else f"{', '.join(known[:-1])} or {known[-1]}"


def unknown(what: str, name: str, names: Iterable[str], *, otherwise: str = "", limit: int | None = None) -> str:
    """The message for an unknown name: what it is, the closest known name, and every known name.

    ``otherwise`` and ``limit`` are passed to ``listing``.

    >>> print(unknown("loss", "mes", ["mse", "mae"], otherwise='a formula such as "(yhat - y)**2"'))
    unknown loss 'mes'; did you mean 'mse'? (use mse, mae, or a formula such as "(yhat - y)**2")
    >>> print(unknown("regularizer", "l3", ["l1", "l2"]))
    unknown regularizer 'l3'; did you mean 'l1' or 'l2'? (use l1 or l2)
    """
    known = list(dict.fromkeys(names))
    near = nearest(name, known)
    shown = repr(name[:SHOWN] + ("…" if len(name) > SHOWN else ""))
    choices = listing(known, otherwise, limit)
    if not near:
        return f"unknown {what} {shown}; use {choices}"
    # Names equally near are all offered: "l3" is as likely l1 as l2.
    return f"unknown {what} {shown}; did you mean {listing(map(repr, near))}? (use {choices})"

"""One line in a test to check a hand-written gradient (issue 5 builds the rest of this API).

>>> from chainrule.testing import assert_gradient
>>> assert_gradient(lambda w: 3 * w**2, "w**3", at={"w": 2.0})
"""

from .check import assert_gradient, diagnose, reference_gradient

__all__ = ["assert_gradient", "diagnose", "reference_gradient"]

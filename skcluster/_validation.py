"""Parameter checks shared by the estimators and functions of the package.

Each returns the value as a plain Python ``int`` / ``float`` (or ``None``)
and raises a ``ValueError`` that names the step (when given), the parameter,
what was expected and the value received. Booleans are refused where a
number is expected (``True`` is an ``int`` to Python, never a sensible
``batch_size``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_positive_int", "check_positive_number", "rows_text"]


def _fail(value, name, step, kind, allow_none):
    prefix = f"{step}: " if step else ""
    none = "None or " if allow_none else ""
    raise ValueError(f"{prefix}{name} must be {none}{kind}, got {value!r}")


def check_positive_int(value, name, step=None, *, allow_none=False, minimum=1):
    """``int(value)`` after checking it is an integer >= ``minimum`` (not a bool).

    Parameters
    ----------
    value : object
    name : str
        Parameter name for the message.
    step : str, default=None
        Estimator or function name put in front of the message.
    allow_none : bool, default=False
        Accept (and return) None.
    minimum : int, default=1
        Smallest allowed value (0 for "non-negative").
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        _fail(value, name, step, kind, allow_none)
    return int(value)


def check_positive_number(value, name, step=None, *, allow_none=False, allow_zero=False):
    """``float(value)`` after checking it is a finite real number > 0 (>= 0 with ``allow_zero``)."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value < 0 if allow_zero else value <= 0):
        kind = "a finite number >= 0" if allow_zero else "a positive finite number"
        _fail(value, name, step, kind, allow_none)
    return float(value)


def rows_text(rows, values=None, limit=5):
    """``'row 3: nan, row 7: -1.0 and 4 more'`` for error messages."""
    rows = np.asarray(rows)
    if values is None:
        shown = ", ".join(f"row {int(i)}" for i in rows[:limit])
    else:
        shown = ", ".join(f"row {int(i)}: {values[i]!r}" for i in rows[:limit])
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return shown + more

"""Parameter checks shared by the estimators and functions of the package.

Each returns the value as a plain Python ``int`` / ``float`` (or ``None``)
and raises a ``ValueError`` that names the step (when given), the parameter,
what was expected and the value received (an :class:`InvalidParameterError`,
also a ``TypeError``, when the value is not even of the right type). Booleans are refused where a
number is expected (``True`` is an ``int`` to Python, never a sensible
``batch_size``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["InvalidParameterError", "check_fraction", "check_positive_int", "check_positive_number", "rows_text"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type: both a ``ValueError`` and a ``TypeError``.

    The checks below raise ``ValueError`` throughout; where the value is not
    even of the right type (``2.5`` or ``"3"`` for an integer) they raise
    this subclass, so that code catching either exception (as the public
    functions promised before they shared these checks) keeps working.
    scikit-learn's own parameter validation does the same.
    """


def _fail(value, name, step, kind, allow_none, wrong_type=False):
    prefix = f"{step}: " if step else ""
    none = "None or " if allow_none else ""
    error = InvalidParameterError if wrong_type else ValueError
    raise error(f"{prefix}{name} must be {none}{kind}, got {value!r}")


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
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Integral)
    if wrong_type or value < minimum:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, f"an integer >= {minimum}")
        _fail(value, name, step, kind, allow_none, wrong_type)
    return int(value)


def check_positive_number(value, name, step=None, *, allow_none=False, allow_zero=False, unit=None):
    """``float(value)`` after checking it is a finite real number > 0 (>= 0 with ``allow_zero``).

    Parameters
    ----------
    value : object
    name : str
        Parameter name for the message.
    step : str, default=None
        Estimator or function name put in front of the message.
    allow_none : bool, default=False
        Accept (and return) None.
    allow_zero : bool, default=False
        Accept 0.
    unit : str, default=None
        The unit the number is in, named in the message ("a positive
        finite number of arcsec").
    """
    if value is None and allow_none:
        return None
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if wrong_type or not math.isfinite(value) or (value < 0 if allow_zero else value <= 0):
        kind = "a finite number >= 0" if allow_zero else "a positive finite number"
        if unit:
            kind += f" of {unit}"
        _fail(value, name, step, kind, allow_none, wrong_type)
    return float(value)


def check_fraction(value, name, step=None):
    """``float(value)`` after checking it is a real number strictly between 0 and 1 (not a bool)."""
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if wrong_type or not 0 < value < 1:  # NaN fails the comparison too
        _fail(value, name, step, "a number strictly between 0 and 1", False, wrong_type)
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

"""Old keyword names kept working, with a ``FutureWarning`` (scikit-learn's convention)."""

from __future__ import annotations

import functools
import warnings

__all__ = ["renamed_keyword"]


def renamed_keyword(**renames):
    """A decorator: ``old=value`` is passed on as ``new=value`` with a FutureWarning.

    ``@renamed_keyword(bands_keV="bands")`` keeps ``f(bands_keV=...)``
    working; giving both names is a ``TypeError``.
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got {old}= and {new}=; {old} is the old name "
                                        f"of {new}: give {new}= only")
                    warnings.warn(f"{func.__name__}({old}=...) is renamed {new}=; {old}= will stop working "
                                  "in a future release", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)
        return wrapper
    return decorate

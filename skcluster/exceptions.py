"""Warning and error classes of skcluster.

Errors subclass the built-in exception a user would catch anyway
(``ValueError``, ``KeyError``), so ``except ValueError`` keeps working; the
subclasses let the command line map them to exit codes.
"""

__all__ = [
    "SkclusterWarning",
    "IncompleteCutoutWarning",
    "DataFormatError",
    "CutoutError",
]


class SkclusterWarning(UserWarning):
    """Base class of every warning skcluster emits."""


class IncompleteCutoutWarning(SkclusterWarning):
    """A cut-out ran off the edge of an image and was padded (and flagged)."""


class DataFormatError(ValueError):
    """A file or table does not have the layout or units skcluster expects."""


class CutoutError(ValueError):
    """A cut-out could not be made (off the image, or partial in strict mode)."""

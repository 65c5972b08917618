"""Transitional alias of the speed-and-memory harness, ``benchmarks/perf_harness.py``.

The harness is a development tool of the source checkout, not part of the
installed package. This module only lets ``skcluster benchmark --perf``
find it from a checkout; elsewhere importing it raises
``ModuleNotFoundError``, which the command line reports as "not part of
this installation". Remove it once the command line no longer imports
``skcluster.perf``.
"""

import importlib.util
import sys
from pathlib import Path

_HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "perf_harness.py"
if not _HARNESS.is_file():
    raise ModuleNotFoundError(
        "the speed and memory harness is benchmarks/perf_harness.py of a source checkout of "
        "skcluster; it is not installed with the package", name=__name__)
_spec = importlib.util.spec_from_file_location("skcluster_perf_harness", _HARNESS)
_harness = sys.modules.get(_spec.name)
if _harness is None:
    _harness = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _harness
    _spec.loader.exec_module(_harness)
run_perf = _harness.run_perf
PeakRSS = _harness.PeakRSS
__all__ = ["PeakRSS", "run_perf"]

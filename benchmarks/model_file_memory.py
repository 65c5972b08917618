"""Peak memory of ``skcluster.persist.load`` by model-file size, each load in a fresh process.

Two kinds of file:

* ``trained``: the standard pipeline (``make_mass_pipeline``, 16 x 16 pixels,
  one convolution block of 16 channels) with a 2-member ensemble whose dense
  layer is ``--widths`` wide, trained one epoch on 30 mock clusters and saved
  with ``persist.save`` (weights plus Adam's two moments: the file is about
  24 bytes per network parameter);
* ``--at-caps``: two forged files holding the most
  :data:`skcluster.persist.LIMITS` lets through: one array of
  ``arrays_bytes`` and one tensor of ``tensors_bytes`` (1 GiB each),
  referenced once each in a ``Resizer``'s fitted state; and a
  ``model.json`` of nearly ``json_nodes`` values (a dict of 4 million
  distinct keys, about 45 MiB of JSON, deflated in the zip). They load:
  they are what an accepted file can cost.

For each file a fresh ``python`` imports skcluster, torch and safetensors,
records its resident memory (RSS), loads the file and reports the peak RSS
above that baseline (``VmHWM`` of ``/proc/self/status``, so Linux only;
``ru_maxrss`` would carry the parent's peak across ``exec``), the RSS kept
after the load, and the load time. Needs a few GB of free memory and disk for ``--at-caps``.

Usage::

    python benchmarks/model_file_memory.py                  # trained files
    python benchmarks/model_file_memory.py --at-caps        # and the file at the caps
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

_CHILD = r"""
import json, sys, time, torch, safetensors.numpy, safetensors.torch
from skcluster import persist

def status(key):  # kB lines of /proc/self/status; VmHWM is this process's peak RSS (reset by exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

base = status("VmRSS")
start = time.perf_counter()
model = persist.load(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"baseline": base, "peak_above": status("VmHWM") - base, "after_above": status("VmRSS") - base,
                  "seconds": seconds}))
"""


def _trained(folder, width):
    import torch

    from skcluster import persist
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    torch.set_num_threads(1)
    data = make_survey("efeds", n_clusters=30, random_state=0, verbose=False)
    pipe = make_mass_pipeline(n_estimators=2, max_epochs=1, channels=(16,), dense=(width,), npix=16,
                              random_state=0, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(data.X, data.y)
    return persist.save(pipe, folder / f"trained_{width}.skc")


def _at_caps(folder):
    import zipfile

    import numpy as np
    import safetensors.numpy
    import safetensors.torch
    import torch

    from skcluster.persist import LIMITS

    n_array = LIMITS["arrays_bytes"] // 8 - 16  # (the safetensors header takes a few bytes of the cap)
    n_tensor = LIMITS["tensors_bytes"] // 4 - 32
    root = {"__object__": "skcluster.preprocessing.resize:Resizer", "params": {"__dict__": {}},
            "state": {"__dict__": {"big_array_": {"__ndarray__": "a0"}, "big_tensor_": {"__tensor__": "t0"}}}}
    manifest = {"format": "skcluster-model", "format_version": 1, "root": root}
    path = folder / "at_caps.skc"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.json", json.dumps(manifest))
        zf.writestr("arrays.safetensors", safetensors.numpy.save({"a0": np.ones(n_array, np.float64)}))
        zf.writestr("tensors.safetensors", safetensors.torch.save({"t0": torch.ones(n_tensor)}))
    return path


def _cpu():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _json_at_caps(folder):
    """The most values model.json may hold, as one dict of distinct keys in a Resizer's fitted state."""
    import zipfile

    from skcluster.persist import LIMITS

    n = LIMITS["json_nodes"] - 100
    entries = ",".join(f'"{i:x}":0' for i in range(n))
    root = ('{"__object__": "skcluster.preprocessing.resize:Resizer", "params": {"__dict__": {}}, '
            '"state": {"__dict__": {"x_": {"__dict__": {' + entries + '}}}}}')
    text = '{"format": "skcluster-model", "format_version": 1, "root": ' + root + "}"
    assert len(text) <= LIMITS["json_bytes"], len(text)
    path = folder / "json_at_caps.skc"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", text)
    return path


def _measure(path):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 2048, 8192, 32768],
                    help="dense-layer widths of the trained files")
    ap.add_argument("--at-caps", action="store_true", help="also the forged file at the caps (about 2 GiB)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [("trained", w, _trained(folder, w)) for w in args.widths]
        if args.at_caps:
            files.append(("arrays and tensors at the caps", None, _at_caps(folder)))
            files.append(("model.json at the caps", None, _json_at_caps(folder)))
        mib = 2**20
        print(f"machine: {_cpu()}, python {platform.python_version()}")
        print("| file | size (MiB) | peak RSS above baseline (MiB) | ratio | kept after load (MiB) | load (s) |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind, width, path in files:
            size = path.stat().st_size
            m = _measure(path)
            name = f"{kind}, dense {width}" if width else kind
            if kind.startswith("model.json"):
                with zipfile.ZipFile(path) as zf:
                    size = zf.getinfo("model.json").file_size
                name += " (size: uncompressed JSON)"
            print(f"| {name} | {size / mib:.1f} | {m['peak_above'] / mib:.0f} | {m['peak_above'] / size:.2f} | "
                  f"{m['after_above'] / mib:.0f} | {m['seconds']:.2f} |")
            path.unlink()


if __name__ == "__main__":
    main()

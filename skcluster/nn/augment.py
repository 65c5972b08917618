"""Training-time augmentation and input scaling of band cubes (torch, batched).

All functions act on a batch ``images`` of shape (n, B, H, W) on any device
and draw their randomness from an explicit :class:`torch.Generator` (on the
same device as ``images``), so a fit is reproducible and independent of
other work in the same process.

The cut-outs are centred on the cluster and square, and the sky has no
preferred orientation or handedness, so all 8 symmetries of the square
(rotations by multiples of 90 degrees, with and without a flip) map a valid
image to a valid image with the same mass. Non-square images only admit the
4 symmetries that keep the shape (identity, two flips, 180 degrees).
"""

from __future__ import annotations

import torch

__all__ = [
    "INPUT_SCALINGS",
    "add_gaussian_noise",
    "dihedral",
    "poisson_resample",
    "random_dihedral",
    "scale_images",
]


def dihedral(images, k):
    """Apply symmetry number ``k`` (0-7) of the square to the last two axes.

    ``k % 4`` quarter turns counter-clockwise, then a left-right flip when
    ``k >= 4``. ``k = 0`` is the identity.
    """
    k = int(k)
    if not 0 <= k < 8:
        raise ValueError(f"dihedral symmetry index must be in 0..7, got {k}")
    out = torch.rot90(images, k % 4, dims=(-2, -1)) if k % 4 else images
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


def random_dihedral(images, generator=None):
    """Apply an independent, uniformly drawn symmetry of the square to each image.

    Parameters
    ----------
    images : torch.Tensor of shape (n, B, H, W)
    generator : torch.Generator, default=None
        On the device of ``images``; ``None`` uses torch's global generator.

    Returns
    -------
    torch.Tensor of shape (n, B, H, W)
        A new tensor; ``images`` is not modified. For H != W only the four
        shape-preserving symmetries (0, 2, 4, 6) are drawn.
    """
    return _apply_dihedral(images, _draw_dihedral(images.shape, generator, images.device))


def _draw_dihedral(shape, generator, device):
    """Symmetry numbers (n,) for a batch of ``shape`` (n, B, H, W), uniform over those that keep the shape."""
    n, h, w = shape[0], shape[-2], shape[-1]
    allowed = torch.arange(8) if h == w else torch.tensor([0, 2, 4, 6])
    pick = torch.randint(0, len(allowed), (n,), generator=generator, device=device)
    return allowed.to(device)[pick]


def _apply_dihedral(images, ks):
    """A new tensor with symmetry ``ks[i]`` applied to ``images[i]`` (one operation per distinct k)."""
    out = images.clone()
    for k in ks.unique().tolist():
        if k == 0:
            continue
        sel = ks == k
        out[sel] = dihedral(images[sel], k)
    return out


def poisson_resample(images, generator=None):
    """Draw new counts: each pixel ~ Poisson(pixel value).

    Only meaningful when ``images`` are expected counts or observed counts
    (``meta["image_unit"] == "counts"``), i.e. *before* any scaling: a
    resampled observed image is a plausible other realisation of the same
    cluster at the same exposure (a parametric bootstrap of the photon
    noise). Values must be >= 0.
    """
    if images.dtype not in (torch.float32, torch.float64):
        images = images.float()
    return torch.poisson(images, generator=generator)


def add_gaussian_noise(images, sigma, generator=None):
    """``images + sigma * N(0, 1)``: the input-noise regularisation sigma_N.

    The seed study (Krippendorf et al. 2023, arXiv:2305.00016) compared
    sigma_N = 0, 0.01, 0.1 and 0.2 added to the standardised inputs.
    """
    if not sigma:
        return images
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images + float(sigma) * noise


def _log1p(x):
    return torch.log1p(x)


def _asinh(x):
    return torch.asinh(x)


def _sqrt(x):
    # Anscombe's variance-stabilising transform of Poisson counts
    # (Anscombe 1948, Biometrika 35, 246): variance ~1 for counts >~ 4.
    return 2.0 * torch.sqrt(x + 0.375)


#: Names accepted by ``CNNRegressor(input_scaling=...)``.
INPUT_SCALINGS = {"log1p": _log1p, "asinh": _asinh, "anscombe": _sqrt}


def scale_images(images, scaling):
    """Apply a named input scaling (``None``: return ``images`` unchanged)."""
    if scaling is None:
        return images
    try:
        fn = INPUT_SCALINGS[scaling]
    except KeyError:
        raise ValueError(
            f"input_scaling must be None or one of {sorted(INPUT_SCALINGS)}, got {scaling!r}"
        ) from None
    return fn(images)

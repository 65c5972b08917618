"""What the mock does not know: a prior over its uncertain physics, drawn once per realisation.

Every number of the mock that the literature knows only to within a range
gets a distribution here, with that range's source; :func:`draw_physics`
draws one set of :class:`~skcluster.datasets.SurveyParameters` overrides
from it, for one mock realisation::

    overrides = draw_physics(random_state=3)          # e.g. {"lx_slope": 1.49, ...}
    data = make_survey("efeds", n_clusters=3000, random_state=3, **overrides)

A deep ensemble whose members each train on their own draw carries the
physics uncertainty in its spread (issue 35's physics-marginalised
ensemble builds on this). ``width`` scales every range about its centre
(0: the centres, at or near the mock's defaults; 1: the ranges below).

The ranges (uniform; [uncertain] where no paper gives the spread):

* L_X-M normalisation +-0.1 dex: the eFEDS fit (Liu et al. 2022 luminosities
  against Chiu et al. 2022 masses) and the selection-modelled relation of
  Chiu et al. 2022 (A&A 661, A11) differ by up to ~0.1 dex over 1e14-1e15
  Msun (:func:`skcluster.physics.relations.chiu22_lx_parameters`).
* L_X-M mass slope 1.44-1.72: Chiu et al. 2022's 1.44 to the eFEDS fit's 1.58
  and as far above it.
* (1+z) exponent of L_X-M beyond E(z)^2, -0.51 to +0.51: Chiu et al. 2022
  fitted -0.51; self-similar is 0.
* ln-scatter of L_X at fixed mass 0.25-0.40 (the range the parameter's
  documentation gives: the eFEDS fit's 0.185 dex rms understates it).
* median core radius r_c / r500 0.10-0.29: the 16-84% range of the eFEDS
  clusters' beta-model fits (Liu et al. 2022).
* mean beta 0.57-0.77: 0.67 +- 0.1 [uncertain] (eSASS fits fix 2/3, Brunner et
  al. 2022).
* cool-core fraction 0.3-0.5 (30-50%, Ghirardini et al. 2022's smooth
  cool-core transition in eFEDS, as the parameter documents).
* central-AGN fraction 0.05-0.2 and PSF width x0.9-1.1 [uncertain: no paper
  gives these spreads; kept narrow].
* background level x0.95-1.05: the eFEDS field's measured background and the
  catalogue's ML_BKG / ML_EXP agree to 2%
  (:data:`skcluster.datasets.background.MEASURED_BACKGROUND_FIELD`); 5% also
  covers the field's Poisson errors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from sklearn.utils import check_random_state

from .parameters import SurveyParameters

__all__ = ["PhysicsPrior", "DEFAULT_PHYSICS_PRIOR", "draw_physics"]

_DEFAULTS = SurveyParameters()


@dataclasses.dataclass(frozen=True)
class PhysicsPrior:
    """Uniform ranges ``{parameter: (low, high)}`` over :class:`SurveyParameters` fields, each with its source.

    ``sources`` maps each parameter to the text that justifies its range.
    """

    ranges: dict
    sources: dict

    def __post_init__(self):
        names = {f.name: f for f in dataclasses.fields(SurveyParameters)}
        for name, (lo, hi) in self.ranges.items():
            if name not in names:
                raise ValueError(f"physics prior: {name!r} is not a SurveyParameters field")
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"physics prior: the range of {name!r} must be finite with low <= high, "
                                 f"got ({lo!r}, {hi!r})")
            md = names[name].metadata
            if (md.get("lo") is not None and lo < md["lo"]) or (md.get("hi") is not None and hi > md["hi"]):
                raise ValueError(f"physics prior: the range of {name!r} ({lo}, {hi}) leaves the parameter's "
                                 f"valid range [{md['lo']}, {md['hi']}]")
            if name not in self.sources:
                raise ValueError(f"physics prior: {name!r} has no source")


def _around(name, half_width):
    centre = float(getattr(_DEFAULTS, name))
    return (centre - half_width, centre + half_width)


DEFAULT_PHYSICS_PRIOR = PhysicsPrior(
    ranges={
        "lx_log10_norm": _around("lx_log10_norm", 0.1),
        "lx_slope": _around("lx_slope", 0.14),
        "lx_1pz_slope": _around("lx_1pz_slope", 0.51),
        "sigma_ln_lx": (0.25, 0.40),
        "rc_r500_median": (0.10, 0.29),
        "beta_mean": (0.57, 0.77),
        "cool_core_fraction": (0.3, 0.5),
        "central_agn_fraction": (0.05, 0.2),
        "psf_scale": (0.9, 1.1),
        "background_scale": (0.95, 1.05),
    },
    sources={
        "lx_log10_norm": "eFEDS fit vs Chiu et al. 2022 (A&A 661, A11): up to ~0.1 dex apart over 1e14-1e15 Msun",
        "lx_slope": "Chiu et al. 2022: 1.44; the eFEDS fit: 1.58",
        "lx_1pz_slope": "Chiu et al. 2022: (1+z)^-0.51 beyond E(z)^2; self-similar 0",
        "sigma_ln_lx": "0.25-0.40 (the parameter's documented range)",
        "rc_r500_median": "eFEDS rc/r500 16-84% range 0.10-0.29 (Liu et al. 2022)",
        "beta_mean": "0.67 +- 0.1 [uncertain]; eSASS fits fix 2/3 (Brunner et al. 2022)",
        "cool_core_fraction": "30-50% (Ghirardini et al. 2022)",
        "central_agn_fraction": "[uncertain]",
        "psf_scale": "[uncertain]",
        "background_scale": "eFEDS field vs catalogue ML_BKG/ML_EXP: 2% apart (Brunner et al. 2022; Liu et al. 2022)",
    },
)


def draw_physics(prior=DEFAULT_PHYSICS_PRIOR, random_state=None, width=1.0):
    """One draw of the mock's uncertain physics: ``SurveyParameters`` overrides.

    Parameters
    ----------
    prior : PhysicsPrior, default=DEFAULT_PHYSICS_PRIOR
    random_state : int, numpy RandomState/Generator or None
    width : float, default=1.0
        Scales every range about its centre (0 gives the centres).

    Returns
    -------
    dict
        ``{parameter: value}``, in the prior's order, for
        :func:`~skcluster.datasets.make_survey`'s keywords.
    """
    width = float(width)
    if not (math.isfinite(width) and width >= 0.0):
        raise ValueError(f"width must be a finite number >= 0, got {width!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) else check_random_state(random_state)
    u = rng.random(len(prior.ranges))
    out = {}
    for ui, (name, (lo, hi)) in zip(u, prior.ranges.items()):
        centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        out[name] = float(centre + width * half * (2.0 * ui - 1.0))
    return out

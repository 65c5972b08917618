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
(0: the centres, which are the mock's defaults; 1: the ranges below).

Every range is centred on the eFEDS preset's value (a test checks it): a
prior whose centre sits off the preset trains a marginalised ensemble on
another population on average, and its mean is then biased against the
fixed model by the offset, not only spread by the uncertainty.
:func:`buildable_pair` draws two realisations mirrored about the centre
(antithetic draws), so that the first-order effect of the drawn numbers on
the ensemble's mean cancels within each pair instead of averaging down as
one over the square root of the number of draws (chosen forms do not cancel
that way: the halves of a pair take different forms).

The ranges (uniform; [uncertain] where no paper gives the spread):

* L_X-M normalisation +-0.1 dex: the eFEDS fit (Liu et al. 2022 luminosities
  against Chiu et al. 2022 masses) and the selection-modelled relation of
  Chiu et al. 2022 (A&A 661, A11) differ by up to ~0.1 dex over 1e14-1e15
  Msun (:func:`skcluster.physics.relations.chiu22_lx_parameters`).
* L_X-M mass slope 1.44-1.72: Chiu et al. 2022's 1.44 to the eFEDS fit's 1.58
  and as far above it.
* (1+z) exponent of L_X-M beyond E(z)^2, -0.51 to +0.51: Chiu et al. 2022
  fitted -0.51; self-similar is 0.
* ln-scatter of L_X at fixed mass 0.25-0.35: the preset's 0.30 +- the
  distance to the low end of the range the parameter documents (0.25-0.40;
  the eFEDS fit's 0.185 dex rms understates it).
* median core radius r_c / r500 0.10-0.27: the preset's 0.185 (the eFEDS
  clusters' median) +- the distance to the 16% point, 0.10, of their
  beta-model fits (16-84% range 0.10-0.29, Liu et al. 2022).
* mean beta 0.57-0.77: 0.67 +- 0.1 [uncertain] (eSASS fits fix 2/3, Brunner et
  al. 2022).
* cool-core fraction 0.3-0.5 (30-50%, Ghirardini et al. 2022's smooth
  cool-core transition in eFEDS, as the parameter documents).
* central-AGN fraction 0.05-0.15 and PSF width x0.9-1.1 [uncertain: no paper
  gives these spreads; kept narrow].
* background level x0.95-1.05: the eFEDS field's measured background and the
  catalogue's ML_BKG / ML_EXP agree to 2%
  (:data:`skcluster.datasets.background.MEASURED_BACKGROUND_FIELD`); 5% also
  covers the field's Poisson errors.
* the halo mass function, a choice of form: Tinker et al. 2008 (dark matter
  only; the preset's) or Bocquet et al. 2016 (the Magneticum hydrodynamical
  fit, baryons included), one of each per mirrored pair.
* the ICM profile, a choice of form: the beta model (the preset's) or a
  Sersic profile with the same half-light radius (Sersic fits to cluster
  X-ray surface brightness: Demarco et al. 2003, A&A 407, 437;
  Andrade-Santos et al. 2012, ApJ 746, 139), index 0.5-1.5 [uncertain].
* the PSF, a choice of form: King (the preset's) or a Gaussian core with
  exponential wings of the same half-energy radius (the ROSAT PSPC form of
  Boese 2000, A&AS 141, 507, without its power-law wing).
* curvature of log L_X-M, -0.2 to +0.2 per dex^2 (0 is the eFEDS fit's
  power law): the local slope at 10^13.5 Msun, 0.8 dex below the pivot, then
  differs from the pivot's by up to 0.32, about 1.5 times the error of the
  selection-corrected group slope of Lovisari et al. 2015 (A&A 573, A118:
  1.66 +- 0.22, steeper than the clusters', read as a gradual change of the
  relation with mass); a 10^13.5 Msun group's mean L_X moves by up to 0.13
  dex, a 10^15 Msun cluster's by 0.1 (the normalisation's range). Set from
  that paper, not from the held-out family's break.

Two families of forms
---------------------
Where the literature offers more than one functional form, the forms are
fields of :class:`~skcluster.datasets.SurveyParameters`
(:data:`FORM_PARAMETERS`; :func:`physics_forms` names a parameter set's):

=================  ==============================  ===================================
ingredient         built-in family (drawn: the     other family (OTHER_PHYSICS_PRIOR)
                   preset's first, then a third)
=================  ==============================  ===================================
ICM profile        beta model + cuspy core         Vikhlinin et al. 2006 emission
                   component (``"beta"``), or a    measure, cusp alpha, steepening
                   Sersic profile, index 0.5-1.5   beyond rs (``"vikhlinin"``)
                   (``"sersic"``)
PSF                King (``"king"``), or a         Gaussian, same half-energy radius
                   Gaussian core with exponential  (``"gaussian"``)
                   wings (``"gauss_exp"``)
mass function      Tinker et al. 2008 or           Despali et al. 2016
                   Bocquet et al. 2016
L_X-M              a power law curved by +-0.2     broken power law, steeper below
                   per dex^2 (0: straight)         0.7-1.5e14 Msun
=================  ==============================  ===================================

:data:`DEFAULT_PHYSICS_PRIOR` varies numbers within the built-in forms and
chooses, per draw, between two forms of profile, PSF and mass function
(one each per mirrored pair) and curves its L_X-M, so a model trained on it
(``make_survey(physics="marginalised")``, the physics-marginalised
ensemble) sees more than one form of each ingredient but never a form of
the other family; :data:`OTHER_PHYSICS_PRIOR` (``make_survey(physics="other")``)
draws the other family, for the held-out test or for training the other way
round, with the built-in ranges for the numbers both share except the L_X
scatter, 0.30-0.40 (its profiles alone give ~0.29, so the built-in
0.25-0.35 would leave most mirrored pairs unbuildable). The third forms sit
between the two families in places (the Gaussian-core PSF's wings between
the King's and none; a curvature that steepens groups like the broken
power law's break): the held-out forms are never drawn, but the training
forms now come nearer them. :data:`OTHER_PHYSICS`
is its centre. :func:`shift_physics` moves the physics a given number of
half-widths from a prior's centre, for plots of the uncertainty against
the distance from the training physics.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from .parameters import SurveyParameters, resolve_parameters

__all__ = ["PhysicsPrior", "DEFAULT_PHYSICS_PRIOR", "PRESET_FORMS_PHYSICS_PRIOR", "OTHER_PHYSICS_PRIOR",
           "OTHER_PHYSICS", "FORM_PARAMETERS", "SHIFT_DIRECTION", "draw_physics", "buildable_draw",
           "buildable_pair", "shift_physics", "physics_forms", "physics_record"]

_DEFAULTS = SurveyParameters()


@dataclasses.dataclass(frozen=True)
class PhysicsPrior:
    """Uniform ranges ``{parameter: (low, high)}`` over :class:`SurveyParameters` fields, each with its source.

    ``sources`` maps each parameter (ranged, fixed or chosen) to the text
    that justifies it. ``fixed`` holds parameters every draw sets to one
    value: the functional *forms* of a family (``profile_form``,
    ``psf_form``, ``mass_function_model``, ...). ``choices`` holds forms
    the literature leaves open, ``{parameter: (first, other, ...)}``: each
    draw takes one of them with equal probability (the centre, width 0,
    takes the first, which should be the preset's).
    """

    ranges: dict
    sources: dict
    fixed: dict = dataclasses.field(default_factory=dict)
    choices: dict = dataclasses.field(default_factory=dict)

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
        for name in self.fixed:
            if name not in names:
                raise ValueError(f"physics prior: fixed {name!r} is not a SurveyParameters field")
            if name in self.ranges:
                raise ValueError(f"physics prior: {name!r} is both fixed and drawn")
            if name not in self.sources:
                raise ValueError(f"physics prior: fixed {name!r} has no source")
        if self.fixed:
            SurveyParameters(**self.fixed)  # a fixed value out of its valid range is refused here
        for name, values in self.choices.items():
            if name not in names:
                raise ValueError(f"physics prior: chosen {name!r} is not a SurveyParameters field")
            if name in self.ranges or name in self.fixed:
                raise ValueError(f"physics prior: {name!r} is both chosen and drawn or fixed")
            if name not in self.sources:
                raise ValueError(f"physics prior: chosen {name!r} has no source")
            if not (isinstance(values, (tuple, list)) and 2 <= len(values) <= MAX_CHOICES
                    and len(set(values)) == len(values)):
                raise ValueError(f"physics prior: the choices of {name!r} must be 2 to {MAX_CHOICES} distinct "
                                 f"values, got {str(values)[:80]}")
            for value in values:
                SurveyParameters(**{name: value})  # each choice valid


#: Most values a chosen form may take (:attr:`PhysicsPrior.choices`).
MAX_CHOICES = 8


def _around(name, half_width):
    centre = float(getattr(_DEFAULTS, name))
    return (centre - half_width, centre + half_width)


DEFAULT_PHYSICS_PRIOR = PhysicsPrior(
    ranges={
        "lx_log10_norm": _around("lx_log10_norm", 0.1),
        "lx_slope": _around("lx_slope", 0.14),
        "lx_1pz_slope": _around("lx_1pz_slope", 0.51),
        "sigma_ln_lx": _around("sigma_ln_lx", 0.05),
        "rc_r500_median": _around("rc_r500_median", 0.085),
        "beta_mean": (0.57, 0.77),
        "cool_core_fraction": (0.3, 0.5),
        "central_agn_fraction": _around("central_agn_fraction", 0.05),
        "psf_scale": _around("psf_scale", 0.1),
        "background_scale": _around("background_scale", 0.05),
        "lx_curvature": _around("lx_curvature", 0.2),
        "sersic_n": _around("sersic_n", 0.5),
    },
    sources={
        "lx_log10_norm": "eFEDS fit vs Chiu et al. 2022 (A&A 661, A11): up to ~0.1 dex apart over 1e14-1e15 Msun",
        "lx_slope": "Chiu et al. 2022: 1.44; the eFEDS fit: 1.58",
        "lx_1pz_slope": "Chiu et al. 2022: (1+z)^-0.51 beyond E(z)^2; self-similar 0",
        "sigma_ln_lx": "0.30 +- 0.05: the low end of the parameter's documented range 0.25-0.40, mirrored",
        "rc_r500_median": "eFEDS median rc/r500 0.185 +- its distance to the 16% point 0.10 (16-84%: 0.10-0.29, "
                          "Liu et al. 2022)",
        "beta_mean": "0.67 +- 0.1 [uncertain]; eSASS fits fix 2/3 (Brunner et al. 2022)",
        "cool_core_fraction": "30-50% (Ghirardini et al. 2022)",
        "central_agn_fraction": "0.10 +- 0.05 [uncertain]",
        "psf_scale": "[uncertain]",
        "background_scale": "eFEDS field vs catalogue ML_BKG/ML_EXP: 2% apart (Brunner et al. 2022; Liu et al. 2022)",
        "mass_function_model": "Tinker et al. 2008 (ApJ 688, 709; dark matter only, the preset's) or Bocquet et al. "
                               "2016 (MNRAS 456, 2361; Magneticum, baryons included), one each per mirrored pair; "
                               "Despali et al. 2016 is left to the other family",
        "lx_curvature": "0 +- 0.2 per dex^2: the local slope at 1e13.5 Msun up to 0.32 steeper or flatter than at "
                        "the pivot, ~1.5x the error of the selection-corrected group slope 1.66 +- 0.22 (Lovisari et "
                        "al. 2015, A&A 573, A118: groups steeper than clusters, a gradual change with mass)",
        "sersic_n": "1 +- 0.5 [uncertain]: exponential-like Sersic fits to cluster X-ray surface brightness "
                    "(Demarco et al. 2003, A&A 407, 437); used by the draws that choose the Sersic profile",
        "profile_form": "the beta model (the eFEDS fits', the preset's) or a Sersic profile with the same "
                        "half-light radius (Demarco et al. 2003; Andrade-Santos et al. 2012, ApJ 746, 139), one "
                        "each per mirrored pair; Vikhlinin et al. 2006 is left to the other family",
        "psf_form": "the survey King PSF (the preset's) or a Gaussian core with exponential wings and the same "
                    "half-energy radius (Boese 2000, A&AS 141, 507), one each per mirrored pair; the wingless "
                    "Gaussian is left to the other family",
    },
    choices={"mass_function_model": ("tinker08", "bocquet16"), "profile_form": ("beta", "sersic"),
             "psf_form": ("king", "gauss_exp")},
)

#: The ranged parameters of :data:`DEFAULT_PHYSICS_PRIOR` that only its own forms use (the curvature of
#: its L_X-M, the index of its Sersic profile): the other family, with its own forms, leaves them out.
_BUILT_IN_FORM_RANGES = ("lx_curvature", "sersic_n")


def _with_preset_forms(prior):
    """``prior`` with each chosen form fixed at its first value (the preset's), less the ranges only the forms use."""
    fixed = {name: values[0] for name, values in prior.choices.items()}
    return PhysicsPrior(
        ranges={k: v for k, v in prior.ranges.items() if k not in _BUILT_IN_FORM_RANGES},
        sources={**{k: v for k, v in prior.sources.items() if k not in _BUILT_IN_FORM_RANGES and k not in fixed},
                 **{k: f"{fixed[k]!r}, the preset's form (the full prior draws {' or '.join(map(repr, values))})"
                    for k, values in prior.choices.items()}},
        fixed={**prior.fixed, **fixed})


#: :data:`DEFAULT_PHYSICS_PRIOR`'s numbers on the preset's forms: the beta model, the King PSF, Tinker et al.
#: 2008 and a straight L_X-M fixed (no curvature, no Sersic index), so that mirrored pairs centre the
#: marginalised mean on the preset's physics (``skcluster train --physics-forms preset``).
PRESET_FORMS_PHYSICS_PRIOR = _with_preset_forms(DEFAULT_PHYSICS_PRIOR)


def _unit_draw(prior, random_state):
    """Uniform coefficients in [-1, 1], one per range of the prior, then one per choice."""
    rng = random_state if isinstance(random_state, np.random.Generator) else check_random_state(random_state)
    return 2.0 * rng.random(len(prior.ranges) + len(prior.choices)) - 1.0


def _check_width(width):
    """``width`` as a float, refused unless finite and >= 0."""
    width = float(width)
    if not (math.isfinite(width) and width >= 0.0):
        raise ValueError(f"width must be a finite number >= 0, got {width!r}")
    return width


def _at(prior, scale, coeffs):
    """The prior's fixed values, its choices and each range's centre + scale x half-width x its coefficient.

    ``coeffs`` in [-1, 1]: one per range, then (optionally) one per choice,
    which picks value ``floor((c + 1) / 2 x n)`` of the ``n`` choices, so
    that ``-c`` picks them in reverse order (a mirrored pair takes the
    other of two forms); without its coefficient, or at scale 0, a choice
    takes its first value.
    """
    coeffs = [float(c) for c in coeffs]
    out = dict(prior.fixed)
    for k, (name, values) in enumerate(prior.choices.items()):
        c = coeffs[len(prior.ranges) + k] if len(coeffs) > len(prior.ranges) + k and scale > 0 else -1.0
        out[name] = values[min(int(0.5 * (c + 1.0) * len(values)), len(values) - 1)]
    for c, (name, (lo, hi)) in zip(coeffs, prior.ranges.items()):
        centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        out[name] = float(centre + scale * half * c)
    return out


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
        ``{parameter: value}``: the prior's fixed values, its chosen forms,
        then its ranges in its order, for
        :func:`~skcluster.datasets.make_survey`'s keywords.
    """
    return _at(prior, _check_width(width), _unit_draw(prior, random_state))


#: The default direction of :func:`shift_physics`: toward a brighter L_X at the pivot with a flatter
#: slope and negative (1+z) evolution (the way Chiu et al. 2022, A&A 661, A11, differ from the eFEDS fit,
#: and beyond), larger and steeper cores, more cool cores and central AGN, a wider PSF and more
#: background. sigma_ln_lx stays at its centre: beyond one half-width the mock cannot be built either
#: way (below, the drawn structure alone gives more L_X scatter; above, the L_X-T correlation
#: rho_lx_t would need a core-excised correlation above 1).
SHIFT_DIRECTION = {"lx_log10_norm": 1.0, "lx_slope": -1.0, "lx_1pz_slope": -1.0, "rc_r500_median": 1.0,
                   "beta_mean": 1.0, "cool_core_fraction": 1.0, "central_agn_fraction": 1.0, "psf_scale": 1.0,
                   "background_scale": 1.0}


def shift_physics(prior=DEFAULT_PHYSICS_PRIOR, size=1.0, direction=None):
    """Physics moved a given distance from the prior's centre: ``SurveyParameters`` overrides.

    The knob of "how far from the training physics": each parameter of
    the prior goes to centre + ``size`` x half-width x ``direction[name]``,
    so ``size`` is the distance in units of the prior's half-widths along
    the largest component of ``direction`` (0: the centre; 1: the prior's
    edge; 2-3: as far again outside it, where no member of a
    physics-marginalised ensemble trained). The prior's fixed forms are
    kept, and its choices take their first value (the preset's).

    Parameters
    ----------
    prior : PhysicsPrior, default=DEFAULT_PHYSICS_PRIOR
    size : float, default=1.0
        Distance, >= 0, in half-widths.
    direction : dict, default=None
        ``{parameter: coefficient}`` with coefficients in [-1, 1], over the
        prior's parameters (those left out stay at the centre). ``None``:
        :data:`SHIFT_DIRECTION` (its parameters the prior varies), along
        which the mock stays buildable up to size 3 for both families.

    Returns
    -------
    dict
        ``{parameter: value}`` for :func:`~skcluster.datasets.make_survey`.

    Raises
    ------
    ValueError
        A negative or non-finite size, an unknown parameter or a
        coefficient outside [-1, 1] in ``direction``, or a shift that
        leaves a parameter's valid range (the message names it).
    """
    size = float(size)
    if not (math.isfinite(size) and size >= 0.0):
        raise ValueError(f"size must be a finite number >= 0, got {size!r}")
    if direction is None:
        direction = {name: c for name, c in SHIFT_DIRECTION.items() if name in prior.ranges}
    unknown = sorted(set(direction) - set(prior.ranges))
    if unknown:
        raise ValueError(f"direction names {unknown}, which the prior does not vary; it varies {list(prior.ranges)}")
    for name, c in direction.items():
        if isinstance(c, bool) or not (isinstance(c, numbers.Real) and -1.0 <= c <= 1.0):
            raise ValueError(f"direction[{name!r}] must be a number in [-1, 1], got {c!r}")
    out = _at(prior, size, [float(direction.get(name, 0.0)) for name in prior.ranges])
    try:
        SurveyParameters(**out)
    except ValueError as err:
        raise ValueError(f"shift_physics(size={size:g}) leaves the valid range: {err}") from None
    return out


#: The fields of :class:`SurveyParameters` that choose a functional form.
FORM_PARAMETERS = ("profile_form", "psf_form", "mass_function_model", "lx_break_msun", "lx_curvature")
#: The forms of :data:`FORM_PARAMETERS` added after model files began to record forms: a file written before
#: them does not name them (the loader accepts their absence).
LATER_FORM_PARAMETERS = ("lx_curvature",)


def physics_forms(params):
    """The functional forms of a parameter set: profile, PSF, mass function and L_X-M.

    Parameters
    ----------
    params : SurveyParameters

    Returns
    -------
    dict
        ``profile`` ('beta', 'vikhlinin' or 'sersic'), ``psf`` ('king',
        'gaussian' or 'gauss_exp'), ``mass_function`` (colossus model),
        ``lx_m`` ('power law', 'broken power law', 'curved power law' or
        'curved broken power law').
    """
    lx_m = "broken power law" if params.lx_break_msun > 0 else "power law"
    return {"profile": params.profile_form, "psf": params.psf_form, "mass_function": params.mass_function_model,
            "lx_m": f"curved {lx_m}" if params.lx_curvature != 0 else lx_m}


#: A prior over another *family* of physics: every functional form differs
#: from the built-in mock's (see :func:`physics_forms`), the numbers the
#: two families share keep :data:`DEFAULT_PHYSICS_PRIOR`'s ranges. The
#: held-out test family of issue 35: train on one family, test on the
#: other (``make_survey(physics="other")`` draws from it).
OTHER_PHYSICS_PRIOR = PhysicsPrior(
    ranges={
        **{k: v for k, v in DEFAULT_PHYSICS_PRIOR.ranges.items() if k not in _BUILT_IN_FORM_RANGES},
        "sigma_ln_lx": (0.30, 0.40),
        "vik_alpha_cc": (0.5, 1.5),
        "vik_rs_r500": (0.6, 1.5),
        "vik_epsilon": (2.0, 4.0),
        "lx_break_msun": (7e13, 1.5e14),
        "lx_slope_below_break": (1.9, 2.5),
    },
    sources={
        **{k: v for k, v in DEFAULT_PHYSICS_PRIOR.sources.items()
           if k not in _BUILT_IN_FORM_RANGES and k not in DEFAULT_PHYSICS_PRIOR.choices},
        "sigma_ln_lx": "0.30-0.40, the upper part of the parameter's documented range 0.25-0.40: the Vikhlinin "
                       "profiles' cusps and steepening alone give ~0.29 of structural L_X scatter, so lower "
                       "values are rarely buildable",
        "profile_form": "Vikhlinin et al. 2006 (ApJ 640, 691), Eq. 3, gamma = 3: the density steepens "
                        "continuously with radius, not a beta model",
        "core_cusp_cc": "0: the core component is Vikhlinin et al.'s second term, a 3-D beta model; the cusp "
                        "moves to the extended component (vik_alpha_cc)",
        "vik_alpha_cc": "3-D cusp 0.5-1.5 (projecting to S ~ R^-0.5 at most), within the projected cusps 0-1.5 of "
                        "cool cores (Ghirardini et al. 2019, A&A 621, A41) [uncertain]; steeper cusps give more "
                        "L_X scatter than sigma_ln_lx allows",
        "vik_rs_r500": "steepening near r500 (Vikhlinin et al. 2006) [uncertain: 0.6-1.5 r500]",
        "vik_epsilon": "epsilon < 5 in Vikhlinin et al. 2006's fits [uncertain: 2-4]",
        "lx_break_msun": "groups below ~1e14 Msun steeper than clusters [uncertain: break 0.7-1.5e14 Msun]",
        "lx_slope_below_break": "[uncertain: 1.9-2.5 below the break, against 1.44-1.72 above]",
        "psf_form": "a Gaussian with the King PSF's half-energy radius and no wings "
                    "(skcluster.physics.instrument); the detection step still assumes the King form",
        "mass_function_model": "Despali et al. 2016 (MNRAS 456, 2486) instead of Tinker et al. 2008",
    },
    fixed={"profile_form": "vikhlinin", "core_cusp_cc": 0.0, "psf_form": "gaussian",
           "mass_function_model": "despali16"},
)

#: The centre of :data:`OTHER_PHYSICS_PRIOR`: one fixed set of overrides of
#: the other family (``make_survey(**OTHER_PHYSICS)``).
OTHER_PHYSICS = shift_physics(OTHER_PHYSICS_PRIOR, 0.0)


#: Most draws of a physics prior tried for one realisation (see :func:`buildable_draw`).
MAX_DRAW_TRIES = 100


def _first_buildable(make, survey, overrides, what):
    """``(draws, tries)``: the first list ``make()`` returns whose physics the mock can build, all of it."""
    from .scaling import core_calibration

    overrides = dict(overrides or {})
    why = None
    for tries in range(1, MAX_DRAW_TRIES + 1):
        draws = make()
        try:
            for draw in draws:
                core_calibration(resolve_parameters(survey, **{**draw, **overrides}))  # cached: the survey reuses it
        except ValueError as exc:
            why = exc
            continue
        return draws, tries
    raise ValueError(f"none of {MAX_DRAW_TRIES} {what} of the physics prior gives physics the mock can build "
                     f"(skcluster.datasets.scaling.core_calibration; the last: {why}); widen the prior's "
                     "sigma_ln_lx, narrow its structure ranges or its width")


def buildable_draw(prior, rng, survey="efeds", overrides=None, width=1.0):
    """``(draw, tries)``: the first draw of ``rng`` whose physics the mock can build, and how many it took.

    A draw the mock cannot build is one whose L_X scatter ``sigma_ln_lx``
    the drawn structure cannot give (below what the core radii, beta and
    the cool-core mixture alone give, e.g. small cores with sigma_ln_lx near
    0.25, or too large for the L-T correlation), so that
    :func:`~skcluster.datasets.scaling.core_calibration` has no solution
    (about 1 in 5 draws of :data:`DEFAULT_PHYSICS_PRIOR`, mostly Sersic-profile draws, whose
    structure gives more L_X scatter than the beta model's): it is replaced
    by the next draw of the same stream, so the draws follow the prior
    truncated to what the mock can build. Explicit ``overrides`` win over
    the draw (and bad ones fail at once).
    """
    width = _check_width(width)
    (draw,), tries = _first_buildable(lambda: [_at(prior, width, _unit_draw(prior, rng))], survey, overrides,
                                      "draws")
    return draw, tries


def buildable_pair(prior, rng, survey="efeds", overrides=None, width=1.0):
    """``((draw, mirror), tries)``: two draws mirrored about the prior's centre, both buildable.

    Antithetic draws: ``mirror`` puts every ranged parameter as far on the
    other side of its centre (coefficients ``c`` and ``-c`` of
    :func:`draw_physics`'s half-widths) and takes the other of each chosen
    pair of forms; the fixed forms are shared. A
    pair is kept only when the mock can build both (see
    :func:`buildable_draw`), so the truncation to buildable physics stays
    symmetric about the centre and the pairs' mean numbers are the centre's
    exactly (about 6 in 10 pairs of :data:`DEFAULT_PHYSICS_PRIOR` are kept: 61 of 100 with its third
    forms, about 7 in 10 before them).
    Averaged over a pair, whatever responds linearly to the numbers (a
    model's bias, to first order) is at the centre's value; the chosen
    forms are the prior's mixture of them, not the preset's.
    """
    width = _check_width(width)

    def make():
        c = _unit_draw(prior, rng)
        return [_at(prior, width, c), _at(prior, width, -c)]

    draws, tries = _first_buildable(make, survey, overrides, "pairs of draws")
    return tuple(draws), tries


def physics_record(prior, width, draws, survey="efeds", overrides=None):
    """What a marginalised sample (and a model trained on it) records of its physics.

    Parameters
    ----------
    prior : PhysicsPrior
    width : float
        The width the draws were made with (:func:`draw_physics`).
    draws : list of dict
        The physics of each draw, ``{parameter: value}`` (the prior's fixed
        forms, e.g. :data:`~skcluster.datasets.OTHER_PHYSICS_PRIOR`'s
        ``profile_form``, may be among them).
    survey : str or SurveyParameters, default="efeds"
        The preset whose other physics every draw kept.
    overrides : dict, default=None
        The parameters fixed for every draw (they won over the draws).

    Returns
    -------
    dict
        ``{"prior": {"ranges": {name: [low, high]}, "sources": {name: text},
        "fixed": {name: value}, "choices": {name: [value, ...]}}, "width":
        float, "draws": [dict, ...], "forms": [dict, ...]}``: plain numbers
        and strings only (a model file stores it). ``sources`` covers the
        ranged, fixed and chosen parameters; ``fixed`` holds the prior's
        fixed values (its functional forms), ``choices`` (only where the
        prior has some) the forms each draw chose among; each
        draw gives the prior's ranged parameters as numbers; ``forms`` gives,
        per draw, the functional forms it was simulated with
        (:data:`~skcluster.datasets.physics_prior.FORM_PARAMETERS`: profile, PSF, mass
        function and the L_X-M break, 0 for one power law), from the preset,
        the prior's fixed values and ``overrides``.
    """
    overrides = dict(overrides or {})
    forms = []
    for d in draws:
        params = resolve_parameters(survey, **{**prior.fixed, **d, **overrides})
        forms.append({k: _plain(getattr(params, k)) for k in FORM_PARAMETERS})
    record = {"ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in prior.ranges.items()},
              "sources": {k: str(prior.sources[k]) for k in (*prior.ranges, *prior.fixed, *prior.choices)},
              "fixed": {k: _plain(v) for k, v in prior.fixed.items()}}
    if prior.choices:
        record["choices"] = {k: [_plain(v) for v in values] for k, values in prior.choices.items()}
    return {
        "prior": record,
        "width": float(width),
        "draws": [{k: float(overrides.get(k, d[k])) for k in prior.ranges} for d in draws],
        "forms": forms,
    }


def _plain(value):
    """A parameter value as a model file stores it: a string, or a float."""
    return value if isinstance(value, str) else float(value)

"""Loading, step four: each built step's parameters in their valid ranges and consistent with its fitted state.

Building one of these steps allocates nothing (its constructor only stores
parameters), but what the file sets decides what ``transform`` will cost:
an image of ``npix`` x ``npix`` pixels per band, a resized image, a
smoothing kernel, a solver's iterations per cluster. These checks run on
the built step, before :func:`~skcluster.persist.load` returns it, and
refuse values outside the ranges ``fit`` accepts, a fitted state that
contradicts the parameters, and sizes over :data:`~skcluster.persist.LIMITS`.
Each raises ``ValueError`` (or ``TypeError``), which the builder turns into a
:class:`~skcluster.persist.ModelFileError` naming the place in the file.
"""

from __future__ import annotations

import math

import numpy as np

from ._format import LIMITS

__all__ = []


def _pair(value, name, step):
    from ..preprocessing._base import check_shape2

    return check_shape2(value, name, step)


def _image_values(step, n_bands, shape, what):
    from .._validation import check_positive_int

    n_bands = check_positive_int(n_bands, "n_bands_", step)
    values = n_bands * shape[0] * shape[1]
    if values > LIMITS["image_values"]:
        raise ValueError(f"{step}: {what} of {n_bands} x {shape[0]} x {shape[1]} = {values} values per cluster, "
                         f"over the cap of {LIMITS['image_values']} (skcluster.persist.LIMITS)")


_IMAGE_CONTRACT = ("n_bands_", "image_shape_", "bands_keV_")  # what an image step records in fit, together


def images(obj):
    """Any step: its fitted image shapes are pairs of positive integers within the cap, recorded together."""
    step = type(obj).__name__
    if hasattr(obj, "_record_images"):
        have = [a for a in _IMAGE_CONTRACT if a in obj.__dict__]
        if have and len(have) < len(_IMAGE_CONTRACT):
            raise ValueError(f"{step}: its fitted state has {', '.join(have)} but not "
                             f"{', '.join(a for a in _IMAGE_CONTRACT if a not in have)}")
    for attr in ("image_shape_", "output_shape_"):
        shape = obj.__dict__.get(attr)
        if shape is not None:
            _image_values(step, obj.__dict__.get("n_bands_", 1), _pair(shape, attr, step), attr)


def band_binner(obj):
    """BandBinner: valid parameters; ``image_shape_`` is ``(npix, npix)``, its bands those it bins."""
    step = type(obj).__name__
    bands, _, npix = obj._params()
    _image_values(step, len(bands), (npix, npix), "images")
    state = obj.__dict__
    if "image_shape_" in state and tuple(state["image_shape_"]) != (npix, npix):
        raise ValueError(f"{step}: image_shape_ {state['image_shape_']!r} contradicts npix={npix}")
    if "n_bands_" in state and state["n_bands_"] != len(bands):
        raise ValueError(f"{step}: n_bands_={state['n_bands_']!r} contradicts its {len(bands)} bands")
    images(obj)


def resizer(obj):
    """Resizer: ``shape`` a pair of positive integers, equal to ``output_shape_``, within the cap."""
    step = type(obj).__name__
    _fitted_together(obj, (*_IMAGE_CONTRACT, "output_shape_"))
    shape = _pair(obj.shape, "shape", step)
    state = obj.__dict__
    if "output_shape_" in state and _pair(state["output_shape_"], "output_shape_", step) != shape:
        raise ValueError(f"{step}: output_shape_ {state['output_shape_']!r} contradicts shape={obj.shape!r}")
    _image_values(step, state.get("n_bands_", 1), shape, "shape")
    images(obj)


def smoother(obj):
    """GaussianSmoother: valid parameters equal to ``sigma_``; no kernel wider than the image."""
    step = type(obj).__name__
    _fitted_together(obj, (*_IMAGE_CONTRACT, "sigma_"))
    sb, sy, sx = obj._params()
    state = obj.__dict__
    if "sigma_" in state and tuple(state["sigma_"]) != (sb, sy, sx):
        raise ValueError(f"{step}: sigma_ {state['sigma_']!r} contradicts sigma={obj.sigma!r}, "
                         f"sigma_bands={obj.sigma_bands!r}")
    images(obj)
    truncate = float(obj.truncate)
    if "image_shape_" in state:
        h, w = _pair(state["image_shape_"], "image_shape_", step)
        for sigma, side, what in ((sy, h, "rows"), (sx, w, "columns"), (sb, state.get("n_bands_", 1), "bands")):
            if truncate * sigma > side:
                raise ValueError(f"{step}: truncate={truncate!r} x sigma={sigma!r} gives a kernel over {side} "
                                 f"{what}, wider than the image (a kernel at most as wide as the image needs "
                                 "truncate * sigma <= its size)")


_OBSERVABLES_FITTED = ("bands_keV_", "n_bands_", "source_", "image_shape_", "pixel_arcsec_", "size_arcmin_",
                       "count_bands_", "hardness_pairs_", "background_annulus_arcmin_", "observable_columns_")


def observables(obj):
    """ScalarObservables: a solver of at most ``LIMITS["max_iter"]`` iterations and a positive tolerance."""
    from .._validation import check_positive_int, check_positive_number

    step = type(obj).__name__
    _fitted_together(obj, _OBSERVABLES_FITTED)
    if check_positive_int(obj.max_iter, "max_iter", step) > LIMITS["max_iter"]:
        raise ValueError(f"{step}: max_iter={obj.max_iter!r}, over the cap of {LIMITS['max_iter']} "
                         "(skcluster.persist.LIMITS)")
    check_positive_number(obj.tol, "tol", step)  # (finite and > 0)
    images(obj)


def pipeline(obj):
    """Pipeline: ``steps`` a list of (name, step) pairs that scikit-learn accepts."""
    obj._validate_steps()


def ensemble(obj):
    """DeepEnsembleRegressor: fitted, it holds a non-empty list of members that predict, and says if they give a std."""
    state = obj.__dict__
    if not any(a in state for a in ("estimators_", "member_has_std_", "seeds_")):
        return  # unfitted
    members = state.get("estimators_")
    if not (isinstance(members, list) and members and all(hasattr(m, "predict") for m in members)):
        raise TypeError(f"{type(obj).__name__}: estimators_ must be a non-empty list of fitted members")
    if not isinstance(state.get("member_has_std_"), (bool, np.bool_)):
        raise TypeError(f"{type(obj).__name__}: member_has_std_ must be true or false, got "
                         f"{state.get('member_has_std_')!r}")
    groups = state.get("member_groups_")
    if groups is not None:
        _member_groups(type(obj).__name__, obj.member_groups, groups, len(members))
    physics = state.get("physics_")
    if physics is not None:
        if groups is None and getattr(obj, "member_groups", None) is not None:
            raise ValueError(f"{type(obj).__name__}: physics_ is recorded, but no member_groups_")
        # with groups, one draw per group; without (one set of members for all rows), the sample's draws
        n_draws = np.unique(groups).size if groups is not None else \
            len(physics["draws"]) if isinstance(physics, dict) and isinstance(physics.get("draws"), list) else -1
        _physics_record(type(obj).__name__, physics, n_draws)


def _member_groups(step, column, groups, n_members):
    """``member_groups_``: one integer label per member, every group with equally many, under ``member_groups``."""
    if not isinstance(column, str):
        raise TypeError(f"{step}: member_groups_ is recorded, but member_groups is {str(column)[:80]!r}, "
                        "not a column name")
    if not (isinstance(groups, np.ndarray) and groups.dtype.kind in "iu" and groups.shape == (n_members,)):
        what = f"{groups.dtype} {groups.shape}" if isinstance(groups, np.ndarray) else type(groups).__name__
        raise TypeError(f"{step}: member_groups_ must be an integer array of one label per member "
                        f"({n_members}), got {what}")
    counts = np.unique(groups, return_counts=True)[1]
    if np.any(counts != counts[0]):
        raise ValueError(f"{step}: member_groups_ gives the groups unequal numbers of members {counts.tolist()[:10]}")


def _physics_record(step, record, n_groups):
    """``physics_``: a :class:`~skcluster.datasets.PhysicsPrior`'s ranges, sources, fixed values and choices, a
    width, ``n_groups`` draws (one per member group, or the sample's without groups) and the forms each draw used.

    Files written before the fixed values, forms and choices were recorded
    (no ``fixed``, no ``forms``, no ``choices``) still load; where recorded,
    they are checked.
    """
    from ..datasets import PhysicsPrior
    from ..datasets.physics_prior import FORM_PARAMETERS, LATER_FORM_PARAMETERS, MAX_CHOICES

    keys = {"prior", "width", "draws"}
    if not (isinstance(record, dict) and set(record) in (keys, keys | {"forms"})):
        raise TypeError(f"{step}: physics_ must be a dict of 'prior', 'width', 'draws' and 'forms', got "
                        f"{str(record)[:80]}")
    prior, draws = record["prior"], record["draws"]
    if not (isinstance(prior, dict) and set(prior) in ({"ranges", "sources"}, {"ranges", "sources", "fixed"},
                                                       {"ranges", "sources", "fixed", "choices"})
            and all(isinstance(v, dict) for v in prior.values())):
        raise TypeError(f"{step}: physics_['prior'] must be a dict of 'ranges', 'sources', 'fixed' and 'choices'")
    ranges, sources, fixed = prior["ranges"], prior["sources"], prior.get("fixed", {})
    choices = prior.get("choices", {})
    if set(sources) != set(ranges) | set(fixed) | set(choices):
        raise ValueError(f"{step}: physics_ must give one source for each range, fixed value and choice of its prior")
    for name, text in sources.items():
        if not isinstance(text, str) or len(text) > LIMITS["physics_source_chars"]:
            raise ValueError(f"{step}: the source of {str(name)[:40]!r} in physics_ must be a text of at most "
                             f"{LIMITS['physics_source_chars']} characters (skcluster.persist.LIMITS)")
    for name, pair in ranges.items():
        _plain_numbers(step, f"physics_ range of {str(name)[:40]!r}", pair, 2)
    for name, value in fixed.items():
        _plain_value(step, f"physics_ fixed value of {str(name)[:40]!r}", value)
    for name, values in choices.items():
        if not (isinstance(values, list) and 2 <= len(values) <= MAX_CHOICES):
            raise ValueError(f"{step}: physics_ choices of {str(name)[:40]!r} must be a list of 2 to {MAX_CHOICES} "
                             f"values, got {str(values)[:80]}")
        for value in values:
            _plain_value(step, f"physics_ choice of {str(name)[:40]!r}", value)
    # the names, ranges, sources, fixed values and choices as a prior would accept them (a frozen dataclass of
    # these dicts, which checks the fixed and chosen values as SurveyParameters; no other object)
    PhysicsPrior(ranges={k: tuple(float(v) for v in pair) for k, pair in ranges.items()}, sources=sources,
                 fixed=dict(fixed), choices={k: tuple(values) for k, values in choices.items()})
    _plain_numbers(step, "physics_['width']", [record["width"]], 1)
    if record["width"] < 0:
        raise ValueError(f"{step}: physics_['width'] must be >= 0, got {record['width']!r}")
    if not (isinstance(draws, list) and len(draws) == n_groups and n_groups >= 1):
        raise ValueError(f"{step}: physics_['draws'] must be a list of one draw per member group ({n_groups}), "
                         "or of at least one draw without member groups")
    for k, draw in enumerate(draws):
        if not (isinstance(draw, dict) and set(draw) == set(ranges)):
            raise ValueError(f"{step}: physics_ draw {k} must give a value to each parameter of the prior")
        _plain_numbers(step, f"physics_ draw {k}", list(draw.values()), len(ranges))
    if "forms" in record:
        _physics_forms(step, record["forms"], draws, FORM_PARAMETERS, LATER_FORM_PARAMETERS)


def _physics_forms(step, forms, draws, names, later=()):
    """``physics_['forms']``: per draw, the forms ``names`` it used (all of them, or, in a file written before the
    ``later`` ones existed, all but those), as SurveyParameters accepts them, agreeing with the draw's own numbers
    where the prior draws a form's parameter (an override may replace a fixed one)."""
    from ..datasets import SurveyParameters

    if not (isinstance(forms, list) and len(forms) == len(draws)):
        raise ValueError(f"{step}: physics_['forms'] must be a list of the forms of each draw ({len(draws)})")
    for k, (form, draw) in enumerate(zip(forms, draws)):
        if not (isinstance(form, dict) and set(form) in (set(names), set(names) - set(later))):
            raise ValueError(f"{step}: physics_ forms of draw {k} must name exactly {list(names)}")
        for name, value in form.items():
            _plain_value(step, f"physics_ form {name!r} of draw {k}", value)
        try:
            SurveyParameters(**form)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{step}: physics_ forms of draw {k}: {str(exc)[:300]}") from None
        for name in set(form) & set(draw):
            if form[name] != draw[name]:
                raise ValueError(f"{step}: physics_ forms of draw {k} give {name}={repr(form[name])[:40]}, but "
                                 f"the draw has {repr(draw[name])[:40]}")


def _plain_value(step, name, value):
    """``value`` a string of at most ``LIMITS["physics_source_chars"]`` characters or a finite int or float."""
    if isinstance(value, str):
        if len(value) <= LIMITS["physics_source_chars"]:
            return
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return
    raise ValueError(f"{step}: {name} must be a text of at most {LIMITS['physics_source_chars']} characters or a "
                     f"finite number, got {str(value)[:80]}")


def _plain_numbers(step, name, values, n):
    """``values`` a list or tuple of ``n`` finite ints or floats (no strings, bools or arrays)."""
    if not (isinstance(values, (list, tuple)) and len(values) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)):
        raise ValueError(f"{step}: {name} must be {n} finite numbers, got {str(values)[:80]}")


def _numbers(step, name, value, n=None, positive=False):
    """``value`` a 1-D sequence of finite real numbers (``n`` of them; each > 0 where ``positive``)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or (n is not None and arr.shape[0] != n) or not np.isfinite(arr).all() \
            or (positive and not (arr > 0).all()):
        what = f"{n} " if n is not None else ""
        raise ValueError(f"{step}: {name} must be {what}finite{' positive' if positive else ''} numbers, got "
                         f"{str(value)[:80]}")


def _fitted_together(obj, names):
    """The fitted attributes ``names`` all present or all absent; True when present."""
    have = [a for a in names if a in obj.__dict__]
    if have and len(have) < len(names):
        raise ValueError(f"{type(obj).__name__}: its fitted state has {', '.join(have)} but not "
                         f"{', '.join(a for a in names if a not in have)}")
    return bool(have)


def count_scaler(obj):
    """CountScaler: softening, mean and scale, one finite number per band (scale > 0)."""
    if _fitted_together(obj, (*_IMAGE_CONTRACT, "softening_", "mean_", "scale_")):
        step, n = type(obj).__name__, obj.n_bands_
        _numbers(step, "softening_", obj.softening_, n)
        _numbers(step, "mean_", obj.mean_, n)
        _numbers(step, "scale_", obj.scale_, n, positive=True)
    images(obj)


def redshift_joiner(obj):
    """RedshiftJoiner: a name, a mean and a scale (> 0) per joined scalar."""
    if _fitted_together(obj, (*_IMAGE_CONTRACT, "scalar_names_", "scalar_mean_", "scalar_scale_")):
        step, names = type(obj).__name__, obj.scalar_names_
        if not (isinstance(names, list) and all(isinstance(k, str) for k in names)):
            raise ValueError(f"{step}: scalar_names_ must be a list of names, got {str(names)[:80]}")
        _numbers(step, "scalar_mean_", obj.scalar_mean_, len(names))
        _numbers(step, "scalar_scale_", obj.scalar_scale_, len(names), positive=True)
    images(obj)


def radial_profile(obj):
    """RadialProfile: a box, radii and annulus areas of finite positive numbers (one area more than radii)."""
    if _fitted_together(obj, (*_IMAGE_CONTRACT, "area_arcmin2_", "box_arcmin_", "radii_arcmin_")):
        step = type(obj).__name__
        _numbers(step, "box_arcmin_", obj.box_arcmin_, 2, positive=True)
        _numbers(step, "radii_arcmin_", obj.radii_arcmin_, positive=True)
        _numbers(step, "area_arcmin2_", obj.area_arcmin2_, len(obj.radii_arcmin_) + 1, positive=True)
    images(obj)


def network(net, state):
    """CNNRegressor, before its network is built: settings bounded, the network the shape of the saved weights.

    The network is first built on torch's ``meta`` device (shapes only,
    no memory), from ``module__*`` and ``input_shape_``, and compared with
    the saved ``module_state`` tensor by tensor; only a match is built
    for real. ``ValueError`` otherwise (a refused model file).
    """
    import torch

    from .._validation import check_positive_int, check_positive_number

    where = type(net).__name__
    net._check_params()
    device = torch.device(net.device)  # (a malformed device string raises here)
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{where}: device {str(net.device)[:40]!r} is not a device to predict on "
                         "('cpu', 'cuda' or 'mps')")
    shape = getattr(net, "input_shape_", None)
    if not (isinstance(shape, tuple) and len(shape) == 3
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        raise ValueError(f"{where}: input_shape_ must be (bands, H, W) of positive integers, got {shape!r}")
    if math.prod(shape) > LIMITS["image_values"]:
        raise ValueError(f"{where}: input_shape_ {shape} holds {math.prod(shape)} values per cluster, over "
                         f"the cap of {LIMITS['image_values']} (skcluster.persist.LIMITS)")
    check_positive_int(net.n_scalars_, "n_scalars_", where, minimum=0)
    for name in ("y_mean_", "y_scale_"):
        value = getattr(net, name, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    check_positive_number(net.y_scale_, "y_scale_", where)
    for key, value in net.get_params_for("module").items():
        if isinstance(value, (list, tuple)) and len(value) > LIMITS["network_layers"]:
            raise ValueError(f"{where}: module__{key} has {len(value)} entries, over the cap of "
                             f"{LIMITS['network_layers']} (skcluster.persist.LIMITS)")
    saved = state.get("module_state")
    if not (isinstance(saved, dict) and all(isinstance(t, torch.Tensor) for t in saved.values())):
        raise ValueError(f"{where}: module_state must map names to tensors")
    with torch.device("meta"):
        shapes = {k: (tuple(t.shape), t.dtype) for k, t in net._build_module().state_dict().items()}
    if set(shapes) != set(saved):
        missing, extra = sorted(set(shapes) - set(saved)), sorted(set(saved) - set(shapes))
        raise ValueError(f"{where}: the saved weights do not fit the network its parameters build (missing "
                         f"{missing[:5]}, unexpected {[k[:40] for k in extra[:5]]})")
    for key, (expected, dtype) in shapes.items():
        if tuple(saved[key].shape) != expected or saved[key].dtype != dtype:
            raise ValueError(f"{where}: the network its parameters build has {key} of shape {expected} "
                             f"({dtype}), the saved weights {tuple(saved[key].shape)} ({saved[key].dtype})")

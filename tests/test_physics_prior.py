"""The prior over the mock's uncertain physics: draws, bounds, reproducibility, and a survey from a draw."""

import dataclasses

import numpy as np
import pytest

from skcluster.datasets import make_survey
from skcluster.datasets.parameters import SurveyParameters
from skcluster.datasets.physics_prior import DEFAULT_PHYSICS_PRIOR, PhysicsPrior, draw_physics


def test_draws_stay_in_the_ranges_and_are_reproducible():
    draws = [draw_physics(random_state=s) for s in range(200)]
    for name, (lo, hi) in DEFAULT_PHYSICS_PRIOR.ranges.items():
        v = np.array([d[name] for d in draws])
        assert v.min() >= lo and v.max() <= hi
        assert v.max() - v.min() > 0.8 * (hi - lo)  # the whole range is used
    assert draw_physics(random_state=7) == draw_physics(random_state=7)
    assert draw_physics(random_state=7) != draw_physics(random_state=8)
    centre = draw_physics(random_state=7, width=0.0)
    for name, (lo, hi) in DEFAULT_PHYSICS_PRIOR.ranges.items():
        assert centre[name] == pytest.approx(0.5 * (lo + hi))
    half = draw_physics(random_state=7, width=0.5)
    full = draw_physics(random_state=7)
    for name in full:
        assert half[name] - centre[name] == pytest.approx(0.5 * (full[name] - centre[name]))


def test_every_draw_is_a_valid_parameter_set():
    for s in range(50):
        SurveyParameters(**draw_physics(random_state=s))  # validates every field


def test_prior_refuses_unknown_names_bad_ranges_and_missing_sources():
    with pytest.raises(ValueError, match="'nope' is not a SurveyParameters field"):
        PhysicsPrior({"nope": (0.0, 1.0)}, {"nope": "x"})
    with pytest.raises(ValueError, match="leaves the parameter's valid range"):
        PhysicsPrior({"cool_core_fraction": (0.5, 1.5)}, {"cool_core_fraction": "x"})
    with pytest.raises(ValueError, match="low <= high"):
        PhysicsPrior({"cool_core_fraction": (0.5, 0.4)}, {"cool_core_fraction": "x"})
    with pytest.raises(ValueError, match="has no source"):
        PhysicsPrior({"cool_core_fraction": (0.3, 0.5)}, {})
    with pytest.raises(ValueError, match="width"):
        draw_physics(random_state=0, width=-1)


def test_a_survey_from_a_draw_carries_it():
    over = draw_physics(random_state=3)
    data = make_survey("efeds", area_deg2=5, random_state=3, verbose=False, **over)
    for name, v in over.items():
        assert getattr(data.params, name) == pytest.approx(v)
    assert dataclasses.replace(data.params, **over) == data.params


def test_make_survey_draws_its_physics_from_its_own_seed():
    a = make_survey("efeds", area_deg2=3, random_state=11, verbose=False, physics="marginalised")
    b = make_survey("efeds", area_deg2=3, random_state=11, verbose=False, physics="marginalised")
    c = make_survey("efeds", area_deg2=3, random_state=12, verbose=False, physics="marginalised")
    assert a.physics_draw == b.physics_draw != c.physics_draw
    np.testing.assert_array_equal(a.y, b.y)
    for name, v in a.physics_draw.items():
        assert getattr(a.params, name) == pytest.approx(v)
    # explicit overrides win over the draw; without physics nothing is drawn and the survey is the plain one
    d = make_survey("efeds", area_deg2=3, random_state=11, verbose=False, physics="marginalised", lx_slope=1.5)
    assert d.params.lx_slope == 1.5 and d.physics_draw["lx_slope"] != 1.5
    plain = make_survey("efeds", area_deg2=3, random_state=11, verbose=False)
    assert plain.physics_draw == {} and plain.params == make_survey("efeds", area_deg2=0.5, random_state=1,
                                                                       verbose=False).params
    with pytest.raises(ValueError, match="physics must be None, 'marginalised' or a PhysicsPrior"):
        make_survey("efeds", area_deg2=3, random_state=11, verbose=False, physics="everything")

"""Other functional forms of the mock (issue 35): the Vikhlinin et al. 2006 profile, the mass-function model,
and the default mock left bit for bit as it was."""

import hashlib

import numpy as np
import pytest
from scipy import integrate, stats

from skcluster.datasets import make_survey, resolve_parameters
from skcluster.datasets import morphology as morph
from skcluster.datasets.survey import tile_catalog
from skcluster.datasets.validation import fit_scaling_relation


def _survey_digest(data):
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.y).tobytes())
    for name in data.catalog.colnames:
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(data.catalog[name], dtype=np.float64)).tobytes())
    for ev in data.X["events"]:
        h.update(np.ascontiguousarray(ev).tobytes())
    return h.hexdigest()


#: sha256 of make_survey("efeds", area_deg2=2, random_state=5) (y, every catalogue column, every event list),
#: computed on main at 5628467, before the forms existed (numpy 2, the project's venv); the mock version v1 since
#: v2 became the default.
MAIN_DIGEST = "9201e0393462631c6dbcdb8b2a256b038eed54d66d0000cb98ac174f275935da"


def test_mock_version_v1_is_bit_for_bit_unchanged():
    data = make_survey("efeds", area_deg2=2, random_state=5, verbose=False, sky="v1")
    assert len(data.y) > 0
    assert _survey_digest(data) == MAIN_DIGEST
    # the forms' defaults are the built-in ones, spelled out or not
    spelled = make_survey("efeds", area_deg2=2, random_state=5, verbose=False, sky="v1", profile_form="beta",
                          psf_form="king", mass_function_model="tinker08", lx_break_msun=0.0)
    assert _survey_digest(spelled) == MAIN_DIGEST


# -- the Vikhlinin et al. (2006) profile ------------------------------------------
def _vikhlinin_emission(r, alpha, beta, rs, eps):
    return r ** -alpha / (1 + r * r) ** (3 * beta - alpha / 2) / (1 + (r / rs) ** 3) ** (eps / 3)


def _cylinder_fraction(x, alpha, beta, rs, eps):
    """Luminosity within a cylinder of radius x over the whole, by quadrature over the 3-D shells (independent
    of the package's line-of-sight table): a shell of radius r > x puts 1 - sqrt(1 - x^2/r^2) of itself inside."""
    def shell(lnr, inside):
        r = np.exp(lnr)
        w = 1.0 if inside else 1.0 - np.sqrt(max(0.0, 1.0 - (x / r) ** 2))
        return 4 * np.pi * r ** 3 * _vikhlinin_emission(r, alpha, beta, rs, eps) * w

    opts = dict(limit=400, epsabs=0, epsrel=1e-10)
    inner = integrate.quad(shell, np.log(1e-12), np.log(x), args=(True,), **opts)[0]
    outer = sum(integrate.quad(shell, a, b, args=(False,), **opts)[0]
                for a, b in [(np.log(x), np.log(x) + 1), (np.log(x) + 1, np.log(1e12))])
    whole = sum(integrate.quad(shell, a, b, args=(True,), **opts)[0]
                for a, b in [(np.log(1e-12), 0.0), (0.0, np.log(1e12))])
    return (inner + outer) / whole


def test_vikhlinin_without_cusp_and_steepening_is_the_beta_model():
    x = np.geomspace(1e-3, 2e3, 60)
    for beta in (0.55, 0.67, 0.74, 1.0):  # on and between the table's nodes
        got = morph.vikhlinin_enclosed_fraction(x, 0.0, beta, 5.0, 0.0)
        np.testing.assert_allclose(got, morph.enclosed_fraction(x, 0.0, beta), atol=1e-3)


@pytest.mark.parametrize("alpha, beta, rs, eps", [(1.5, 0.7, 6.3, 3.0), (0.4, 0.61, 2.2, 4.5)])
def test_vikhlinin_projection_matches_a_direct_quadrature(alpha, beta, rs, eps):
    for x in (0.05, 0.5, 2.0, 8.0, 40.0):
        want = _cylinder_fraction(x, alpha, beta, rs, eps)
        got = float(morph.vikhlinin_enclosed_fraction(x, alpha, beta, rs, eps))
        assert got == pytest.approx(want, abs=2e-3), (x, got, want)
    # the steepening takes light from the outskirts: less of it beyond rs than the beta model's
    out_v = 1 - morph.vikhlinin_enclosed_fraction(3 * rs, alpha, beta, rs, eps)
    out_0 = 1 - morph.vikhlinin_enclosed_fraction(3 * rs, alpha, beta, rs, 0.0)
    assert out_v < 0.7 * out_0


def test_vikhlinin_photons_follow_the_projected_profile():
    rng = np.random.default_rng(1)
    alpha, beta, rs, eps, x_trunc = 1.5, 0.7, 6.3, 3.0, 25.0
    vik = (rs, eps)
    dx, dy = morph.sample_offsets(rng, 20_000, 1.0, alpha, beta, 1.0, 0.0, x_trunc, vikhlinin=vik)
    i_t = morph.vikhlinin_enclosed_fraction(x_trunc, alpha, beta, rs, eps)

    def cdf(x):
        return np.minimum(morph.vikhlinin_enclosed_fraction(x, alpha, beta, rs, eps), i_t) / i_t

    assert stats.kstest(np.hypot(dx, dy), cdf).pvalue > 0.01
    # and the beta model's law does not describe them (the test can fail)
    beta_cdf = lambda x: morph.enclosed_fraction(np.minimum(x, x_trunc), 0.0, beta) / morph.enclosed_fraction(  # noqa: E731
        x_trunc, 0.0, beta)
    assert stats.kstest(np.hypot(dx, dy), beta_cdf).pvalue < 1e-6
    # elliptical: the fraction of photons within circles is the aperture fraction
    dx, dy = morph.sample_offsets(rng, 100_000, 10.0, alpha, beta, 0.6, 0.3, x_trunc, vikhlinin=vik)
    r = np.hypot(dx, dy)
    for rad in (5.0, 20.0, 80.0):
        want = morph.aperture_fraction(np.array([rad / 10.0]), alpha, beta, 0.6, x_trunc, vikhlinin=vik)[0]
        assert np.mean(r < rad) == pytest.approx(want, abs=0.005)


def test_vikhlinin_refuses_shapes_outside_its_table():
    with pytest.raises(ValueError, match="beta must be in"):
        morph.vikhlinin_enclosed_fraction(1.0, 0.0, 0.5, 5.0, 3.0)
    with pytest.raises(ValueError, match="cusp alpha must be in"):
        morph.vikhlinin_enclosed_fraction(1.0, 3.0, 0.7, 5.0, 3.0)
    with pytest.raises(ValueError, match="rs_over_rc must be positive"):
        morph.vikhlinin_enclosed_fraction(1.0, 0.0, 0.7, 0.0, 3.0)


def test_vikhlinin_form_keeps_the_lx_mass_relation_and_its_scatter():
    p = resolve_parameters(profile_form="vikhlinin")
    cat = tile_catalog(1, 10.0, p, 77)
    norm, slope, scatter = fit_scaling_relation(cat["log10_M500"], cat["z"], cat["L_X"], p)
    assert scatter == pytest.approx(p.sigma_ln_lx, rel=0.06)
    assert slope == pytest.approx(p.lx_slope, abs=0.04) and norm == pytest.approx(p.lx_log10_norm, abs=0.03)
    cc = np.asarray(cat["cool_core"], bool)
    assert np.all(cat["ext_cusp"][cc] == p.vik_alpha_cc) and np.all(cat["ext_cusp"][~cc] == p.vik_alpha_ncc)
    # the cusp puts more of the extended component's light in the centre than the beta model does
    beta_cat = tile_catalog(1, 10.0, resolve_parameters(), 77)
    core_share = lambda c: np.median(c["L_X_core"][cc] / c["L_X"][cc])  # noqa: E731
    assert core_share(cat) > core_share(beta_cat)


def test_a_vikhlinin_survey_runs_and_is_reproducible():
    kw = dict(area_deg2=2, random_state=3, verbose=False, profile_form="vikhlinin")
    a, b = make_survey("efeds", **kw), make_survey("efeds", **kw)
    assert len(a.y) > 0 and _survey_digest(a) == _survey_digest(b)
    assert _survey_digest(a) != _survey_digest(make_survey("efeds", area_deg2=2, random_state=3, verbose=False))


# -- the third forms of the built-in physics prior: Sersic profile, curved L_X-M (the Gaussian-exponential PSF:
# test_datasets.py, beside the other PSF forms) ------------------------------------------------------------------
@pytest.mark.parametrize("n", [0.5, 1.0, 1.5, 4.0])
def test_sersic_enclosed_fraction_matches_a_direct_quadrature_and_inverts(n):
    from scipy.special import gammaincinv

    x_half = 2.3
    b = gammaincinv(2 * n, 0.5)

    def surface(r):
        return np.exp(-b * (r / x_half) ** (1 / n))

    whole = integrate.quad(lambda r: 2 * np.pi * r * surface(r), 0, np.inf, limit=200)[0]
    for x in (0.1, 1.0, x_half, 6.0, 20.0):
        want = integrate.quad(lambda r: 2 * np.pi * r * surface(r), 0, x, limit=200)[0] / whole
        assert float(morph.sersic_enclosed_fraction(x, n, x_half)) == pytest.approx(want, abs=1e-7)
    f = np.array([0.01, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(morph.sersic_enclosed_fraction(morph.sersic_radius_for_fraction(f, n, x_half), n,
                                                              x_half), f, rtol=1e-9)


def test_sersic_photons_follow_the_profile_with_the_beta_models_half_light_radius():
    rng = np.random.default_rng(4)
    n, beta, x_trunc = 1.5, 0.67, 16.0
    x_half = float(morph.sersic_half_light_radius(beta, x_trunc))
    # half the truncated beta model's light lies within x_half
    assert morph.enclosed_fraction(x_half, 0.0, beta) == pytest.approx(0.5 * morph.enclosed_fraction(x_trunc, 0.0, beta))
    dx, dy = morph.sample_offsets(rng, 20_000, 1.0, 0.0, beta, 1.0, 0.0, x_trunc, sersic_n=n)
    r = np.hypot(dx, dy)
    i_t = morph.sersic_enclosed_fraction(x_trunc, n, x_half)
    assert stats.kstest(r, lambda x: np.minimum(morph.sersic_enclosed_fraction(x, n, x_half), i_t) / i_t).pvalue > 0.01
    beta_cdf = lambda x: morph.enclosed_fraction(np.minimum(x, x_trunc), 0.0, beta) / morph.enclosed_fraction(  # noqa: E731
        x_trunc, 0.0, beta)
    assert stats.kstest(r, beta_cdf).pvalue < 1e-6   # another form: the beta model's law does not describe them
    assert np.median(r) == pytest.approx(x_half, rel=0.03)
    # elliptical: the fraction of photons within circles is the aperture fraction
    dx, dy = morph.sample_offsets(rng, 100_000, 10.0, 0.0, beta, 0.6, 0.3, x_trunc, sersic_n=n)
    r = np.hypot(dx, dy)
    for rad in (5.0, 20.0, 80.0):
        want = morph.aperture_fraction(np.array([rad / 10.0]), 0.0, beta, 0.6, x_trunc, sersic_n=n)[0]
        assert np.mean(r < rad) == pytest.approx(want, abs=0.005)


def test_sersic_form_keeps_the_lx_mass_relation_and_its_scatter():
    p = resolve_parameters(profile_form="sersic", sersic_n=1.4)
    cat = tile_catalog(1, 10.0, p, 77)
    norm, slope, scatter = fit_scaling_relation(cat["log10_M500"], cat["z"], cat["L_X"], p)
    assert scatter == pytest.approx(p.sigma_ln_lx, rel=0.06)
    assert slope == pytest.approx(p.lx_slope, abs=0.04) and norm == pytest.approx(p.lx_log10_norm, abs=0.03)
    # on the same structure draws, a Sersic of the beta model's half-light radius puts less light inside
    # 0.15 r500 than the beta model (measured: median share 0.36 at n = 1.4, 0.29 at n = 0.6, 0.38 for the beta
    # model), the less the flatter its centre (smaller n)
    share = lambda c: np.median(c["L_X_core"] / c["L_X"])  # noqa: E731
    flat = tile_catalog(1, 10.0, resolve_parameters(profile_form="sersic", sersic_n=0.6), 77)
    assert share(flat) < share(cat) < share(tile_catalog(1, 10.0, resolve_parameters(), 77))


def test_curved_lx_m_relation_adds_the_square_of_the_log_mass_about_the_pivot():
    from skcluster.datasets.scaling import mean_log_lx

    plain = resolve_parameters("efeds")
    curved = resolve_parameters("efeds", lx_curvature=-0.1)
    m = np.log10(plain.lx_pivot_msun) + np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    a, b = mean_log_lx(m, 0.3, plain), mean_log_lx(m, 0.3, curved)
    np.testing.assert_allclose(b - a, -0.1 * np.array([1.0, 0.25, 0.0, 0.25, 1.0]), atol=1e-12)


def test_a_survey_with_the_third_forms_runs_is_reproducible_and_records_them():
    from skcluster.datasets import physics_forms

    kw = dict(area_deg2=2, random_state=3, verbose=False, profile_form="sersic", psf_form="gauss_exp",
              lx_curvature=0.08)
    a, b = make_survey("efeds", **kw), make_survey("efeds", **kw)
    assert len(a.y) > 0 and _survey_digest(a) == _survey_digest(b)
    assert _survey_digest(a) != _survey_digest(make_survey("efeds", area_deg2=2, random_state=3, verbose=False))
    assert physics_forms(a.params) == {"profile": "sersic", "psf": "gauss_exp", "mass_function": "tinker08",
                                       "lx_m": "curved power law"}
    assert a.X.meta["physics"]["forms"] == [{"profile_form": "sersic", "psf_form": "gauss_exp",
                                             "mass_function_model": "tinker08", "lx_break_msun": 0.0,
                                             "lx_curvature": 0.08}]

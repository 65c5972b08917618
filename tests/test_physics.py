import numpy as np
import pytest

from skcluster.physics import BandRateTable, r500_kpc, thermal_band_rates, theta500_arcmin
from skcluster.physics.emission import (
    KEV_TO_ERG,
    absorption,
    bremsstrahlung_photon_spectrum,
    gaunt_born,
    mm83_cross_section_cm2,
)
from skcluster.physics.instrument import (
    effective_area_cm2,
    energy_grid_keV,
    king_enclosed_fraction,
    king_radius_for_fraction,
    sample_king_offsets,
)
from skcluster.physics.rates import observed_response, powerlaw_band_rates


def test_r500_and_theta500_match_the_reference_sheet():
    # r500 = 0.889 Mpc (M/2e14)^(1/3) E(z)^(-2/3); 1.37e14 at z=0.35 -> 2.31'
    assert r500_kpc(2e14, 0.0) == pytest.approx(889, rel=2e-3)
    assert theta500_arcmin(1.37e14, 0.35) == pytest.approx(2.31, rel=0.02)
    assert r500_kpc(8 * 2e14, 0.0) == pytest.approx(2 * 889, rel=2e-3)


@pytest.mark.parametrize(
    "band, ecf",
    [((0.5, 2.0), 1.205e12), ((0.2, 2.3), 1.079e12), ((2.3, 5.0), 1.161e11)],
)
def test_effective_area_reproduces_the_powerlaw_ecf(band, ecf):
    """Check: Gamma = 2, N_H = 3e20 gives these counts/s per erg/s/cm^2
    (absorbed flux, on-axis area)."""
    e, de = energy_grid_keV(band[0], band[1], 0.0005)
    n = e**-2.0
    rate = np.sum(n * observed_response(e, 3e20, reference_keV=None) * de)
    flux = np.sum(e * n * absorption(e, 3e20) * de) * KEV_TO_ERG
    assert rate / flux == pytest.approx(ecf, rel=0.02)


def test_powerlaw_rates_scale_with_flux():
    r = powerlaw_band_rates([1e-14, 2e-14], 1.8, [(0.5, 2.0)])
    assert r[1, 0] == pytest.approx(2 * r[0, 0])
    assert 5e-3 < r[0, 0] < 2e-2  # ~1e12 counts/s per erg/s/cm^2, times vignetting


def test_gaunt_factor_and_spectrum():
    # Born Gaunt factor is of order unity and decreasing with E/kT in the X-ray range
    g = gaunt_born(np.array([0.1, 1.0, 5.0]), 5.0)
    assert np.all(np.diff(g) < 0) and 0.5 < g[1] < 2.0
    # hotter plasma: harder spectrum
    e = np.array([0.5, 5.0])
    soft = bremsstrahlung_photon_spectrum(e, 1.0)
    hard = bremsstrahlung_photon_spectrum(e, 8.0)
    assert hard[1] / hard[0] > 10 * soft[1] / soft[0]


def test_mm83_cross_section():
    # ~2.4e-22 cm^2 at 0.5 keV (MM83 Fig. 1); falls steeply with energy
    assert mm83_cross_section_cm2(0.5) == pytest.approx(2.4e-22, rel=0.1)
    s = mm83_cross_section_cm2(np.array([0.3, 1.0, 3.0, 8.0]))
    assert np.all(np.diff(s) < 0)
    assert absorption(0.3, 3e20) < absorption(2.0, 3e20) < 1.0


def test_effective_area_table_is_zero_outside_range():
    assert effective_area_cm2(0.1) == 0 and effective_area_cm2(11.0) == 0
    assert effective_area_cm2(1.5) == pytest.approx(2506)


def test_king_psf_hew_and_sampling(rng):
    assert 2 * king_radius_for_fraction(0.5) == pytest.approx(30.0, rel=0.01)
    dx, dy = sample_king_offsets(rng, 200_000)
    r = np.hypot(dx, dy)
    for rr in (5.0, 15.0, 60.0):
        assert np.mean(r < rr) == pytest.approx(king_enclosed_fraction(rr), abs=0.005)
    dx, dy = sample_king_offsets(rng, 10_000, r_max_arcsec=20.0)
    assert np.hypot(dx, dy).max() <= 20.0 + 1e-9


def test_thermal_rates_physics():
    bands = [(0.5, 2.0), (2.0, 7.0)]
    base = thermal_band_rates([1e44], [5.0], [0.3], bands)[0]
    # linear in L, inverse-square-ish in distance
    assert thermal_band_rates([2e44], [5.0], [0.3], bands)[0] == pytest.approx(2 * base)
    assert thermal_band_rates([1e44], [5.0], [0.6], bands)[0, 0] < 0.4 * base[0]
    # hardness rises with temperature
    hr = [r[1] / r[0] for r in thermal_band_rates([1e44] * 3, [1.0, 3.0, 9.0], [0.3] * 3, bands)]
    assert hr[0] < hr[1] < hr[2]
    # an eFEDS-like cluster (L_X 2.5e43, z 0.35, 1.2 ks) gives ~100 counts (0.2-2.3 keV)
    counts = thermal_band_rates([10**43.395], [3.5], [0.35], [(0.2, 2.3)])[0, 0] * 1180
    assert 50 < counts < 200


def test_band_rate_table_matches_direct_folding():
    bands = [(0.2, 0.5), (0.5, 2.0), (2.0, 7.0)]
    table = BandRateTable(bands)
    rng = np.random.default_rng(1)
    kT = np.exp(rng.uniform(np.log(0.5), np.log(15), 20))
    z = rng.uniform(0.01, 1.5, 20)
    direct = thermal_band_rates(np.ones(20), kT, z, bands)
    np.testing.assert_allclose(table(kT, z), direct, rtol=5e-3)
    with pytest.raises(ValueError, match="kT must be within"):
        table([100.0], [0.3])


def test_chiu22_relation_as_mock_parameters_reproduces_the_published_form():
    """chiu22_lx_parameters: the mock's L_X-M with them equals Chiu et al.'s relation (no slope drift)."""
    from skcluster.datasets.parameters import resolve_parameters
    from skcluster.datasets.scaling import mean_log_lx
    from skcluster.physics.cosmology import efunc, get_cosmology
    from skcluster.physics.relations import LM_RELATION_CHIU22, MASS_PIVOT_MSUN, chiu22_lx_parameters

    base = resolve_parameters("efeds")
    p = resolve_parameters("efeds", **chiu22_lx_parameters(base.H0, base.Om0))
    l_piv, slope, _, opz, z_piv = LM_RELATION_CHIU22
    z = np.array([0.05, 0.35, 0.8, 1.3])
    logm = np.array([13.2, 14.0, 14.5, 15.0])
    ez = efunc(z, get_cosmology(base.H0, base.Om0)) / efunc(z_piv, get_cosmology(base.H0, base.Om0))
    ln_l = (np.log(l_piv) + slope * np.log(10**logm / MASS_PIVOT_MSUN) + 2 * np.log(ez)
            - 0.51 * np.log((1 + z) / (1 + z_piv)))
    np.testing.assert_allclose(mean_log_lx(logm, z, p), ln_l / np.log(10), atol=1e-9)
    assert mean_log_lx(np.log10(MASS_PIVOT_MSUN), z_piv, p) == pytest.approx(np.log10(3.36e43))
    assert opz == -0.51 and base.lx_1pz_slope == 0.0   # the eFEDS fit the mock uses is self-similar in z
    shifted = resolve_parameters("efeds", lx_1pz_slope=1.0)
    np.testing.assert_allclose(mean_log_lx(logm, z, shifted) - mean_log_lx(logm, z, base), np.log10(1 + z))

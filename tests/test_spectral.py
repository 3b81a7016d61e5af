"""Trajectory spectra: flat increment spectrum for Brownian motion, white-noise
autocorrelation bands, OU autocorrelation exp(-theta lag), rotation detection."""

import math

import numpy as np
import pytest
import scipy.stats

import sdesim
from sdesim.analysis import Z99


def test_brownian_increment_spectrum_is_flat():
    rng = np.random.default_rng(0)
    n, d, s = 4096, 64, 0.3
    x = np.cumsum(s * rng.standard_normal((n, d)), axis=0)
    sp = sdesim.increment_spectrum(x, dt=0.5)
    inner = (sp.freq > 0) & (sp.freq < sp.freq[-1])
    np.testing.assert_allclose(sp.white_level, s**2, rtol=4 * math.sqrt(2 / (n * d)))
    # under H0 the coordinate-mean ordinates lie in the 99 % band at 99 % of frequencies
    inside = (sp.mean >= sp.white_band[0]) & (sp.mean <= sp.white_band[1])
    m = inner.sum()
    assert inside[inner].mean() > 0.99 - 4 * math.sqrt(0.01 * 0.99 / m)
    # flat: no trend of log power with frequency (slope within 4 standard errors)
    fit = scipy.stats.linregress(sp.freq[inner], np.log(sp.mean[inner]))
    assert abs(fit.slope) < 4 * fit.stderr
    # std over coordinates of Exp(1)-distributed ordinates equals their mean
    np.testing.assert_allclose(np.median(sp.std[inner] / sp.mean[inner]), 1.0, rtol=0.05)
    np.testing.assert_allclose(sp.freq[1], 1 / ((n - 1) * 0.5))


def test_white_noise_autocorrelation_within_bands():
    rng = np.random.default_rng(1)
    n, d = 8192, 32
    ac = sdesim.autocorrelation(rng.standard_normal((n, d)), dt=1.0, max_lag=200, n_ref=16)
    np.testing.assert_allclose(ac.white_band, Z99 / math.sqrt(n))
    lags = ac.lags[1:]
    inside = np.abs(ac.mean[1:]) <= ac.white_band_mean
    assert inside.mean() > 0.99 - 4 * math.sqrt(0.01 * 0.99 / lags.size)
    # per-coordinate spread of r_k is 1/sqrt(n)
    np.testing.assert_allclose(np.mean(ac.std[1:]), 1 / math.sqrt(n), rtol=0.05)
    # Brownian reference decays slowly (sample ACF of a random walk stays near 1 at short lags)
    assert ac.brownian[1] > 0.99 and ac.brownian[50] > 0.8 and ac.white[0] == 1 and ac.white[1] == 0


def test_ou_autocorrelation_is_exponential():
    rng = np.random.default_rng(2)
    theta, dt, n, d = 0.5, 0.1, 20000, 32
    phi = math.exp(-theta * dt)
    x = np.empty((n, d))
    x[0] = rng.standard_normal(d)
    xi = math.sqrt(1 - phi**2) * rng.standard_normal((n, d))
    for k in range(1, n):
        x[k] = phi * x[k - 1] + xi[k]
    ac = sdesim.autocorrelation(x, dt=dt, max_lag=60, n_ref=0)
    k = ac.lags
    ref = np.exp(-theta * ac.lag_time)
    # Bartlett's variance of an AR(1) sample ACF, averaged over d coordinates
    var = ((1 + phi**2) * (1 - phi ** (2 * k)) / (1 - phi**2) - 2 * k * phi ** (2 * k)) / n / d
    bias = (1 + phi) / (n * (1 - phi))  # O(1/n) bias of the sample ACF (mean removed)
    assert np.all(np.abs(ac.mean - ref) <= 4 * np.sqrt(var) + bias)
    # OU increments are anti-persistent: no low-frequency excess over Brownian motion
    assert sdesim.low_frequency_test(x, dt).p_value > 0.5


def _noisy_rotation(rng, n, dt, f0, amp=1.0, sigma=0.05, n_noise=6):
    t = np.arange(n) * dt
    phase = 2 * np.pi * f0 * t + 0.02 * np.cumsum(rng.standard_normal(n)) * math.sqrt(dt)
    rot = amp * np.stack([np.cos(phase), np.sin(phase)], axis=1)
    x = np.concatenate([rot, np.zeros((n, n_noise))], axis=1)
    return x + np.cumsum(sigma * math.sqrt(dt) * rng.standard_normal(x.shape), axis=0)


def test_noisy_rotation_detected_at_its_frequency():
    rng = np.random.default_rng(3)
    n, dt, f0 = 8192, 0.1, 0.37
    x = _noisy_rotation(rng, n, dt, f0)
    per = sdesim.periodicity_test(x, dt)
    assert per.p_value < 1e-10 and per.significant
    assert abs(per.f_peak - f0) <= 1.0 / ((n - 1) * dt)
    # the two rotating coordinates are significant on their own, the Brownian ones are not
    assert (per.per_coordinate_p[:2] < 1e-10).all() and (per.per_coordinate_p[2:] > 1e-3).all()
    low = sdesim.low_frequency_test(x, dt, f_cut=0.5)
    assert low.p_value < 1e-10 and low.per_coordinate_p[0] < 1e-10


def test_brownian_motion_not_flagged_and_p_values_uniform():
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.standard_normal((2048, 200)), axis=0)
    low = sdesim.low_frequency_test(x, 1.0)
    per = sdesim.periodicity_test(x, 1.0)
    assert low.p_value > 0.01 and per.p_value > 0.01
    # calibration: per-coordinate p-values are Uniform(0, 1) under H0
    assert scipy.stats.kstest(low.per_coordinate_p, "uniform").pvalue > 1e-3
    assert low.fraction_significant < 0.01 + 4 * math.sqrt(0.01 * 0.99 / 200)


def test_trajectory_spectra_bundle_and_float32():
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.standard_normal((1000, 5)), axis=0).astype(np.float32)
    out = sdesim.trajectory_spectra(x, dt=1.0, max_lag=50, n_ref=4)
    assert set(out) == {"spectrum", "acf", "low_frequency", "periodicity"}
    assert out["spectrum"].mean.shape == out["spectrum"].freq.shape == (500,)
    assert out["acf"].mean.shape == (51,)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sdesim.increment_spectrum(np.zeros((10, 2, 2))), "x"),
        (lambda: sdesim.increment_spectrum(np.zeros((3, 2))), "x"),
        (lambda: sdesim.increment_spectrum(np.zeros((100, 2)), dt=0.0), "dt"),
        (lambda: sdesim.autocorrelation(np.zeros((100, 2)), max_lag=100), "max_lag"),
        (lambda: sdesim.low_frequency_test(np.zeros((100, 2)), f_cut=10.0), "f_cut"),
        (lambda: sdesim.increment_spectrum(np.array([["a"] * 2] * 10)), "x"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()

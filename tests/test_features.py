import numpy as np
import pytest
from conftest import tone

from ser.config import CONFIG
from ser.errors import ConfigError
from ser.features.spectral import band_bins, band_features, stack_frames
from ser.features.spectro import mel_centres_hz, mel_from_config

SR = 48000
BANDS = CONFIG.features.bands_hz


def feats_of(y, reading="hz"):
    S = mel_from_config(y, SR, CONFIG.mel)
    return band_features(S, centres_hz=mel_centres_hz(SR, 3401), bands=BANDS, reading=reading), S


@pytest.mark.parametrize("f0, band", [(450.0, 0), (800.0, 1), (1300.0, 2), (2000.0, 3), (3000.0, 4)])
def test_pure_tone_centroid_is_its_frequency_and_energy_lands_in_its_band(f0, band):
    feats, _ = feats_of(tone(f0, SR, 3.5))
    sc = feats["SC"][band, 20:180]  # frames fully inside the tone
    assert np.all(np.abs(sc - f0) <= SR / CONFIG.mel.n_fft)  # within one FFT bin
    sbe = feats["SBE"][:, 100]
    assert sbe.argmax() == band
    assert sbe[band] > 1e3 * np.delete(sbe, band).max()


def test_bandwidth_of_a_pure_tone_is_narrow_and_of_two_tones_is_their_spread():
    feats, _ = feats_of(tone(2000.0, SR, 3.5))
    one = feats["SBW"][3, 100]
    assert one < (3 * SR / CONFIG.mel.n_fft) ** 2  # variance of a few bins at most
    # Two tones: the mel power of each (Slaney filters weigh high frequencies
    # less) sets the weights; SC is their weighted mean, SBW their spread.
    f1, f2 = 1700.0, 2300.0
    e1 = feats_of(tone(f1, SR, 3.5))[0]["SBE"][3, 100]
    e2 = feats_of(tone(f2, SR, 3.5))[0]["SBE"][3, 100]
    feats2, _ = feats_of(tone(f1, SR, 3.5) + tone(f2, SR, 3.5))
    w1, w2 = e1 / (e1 + e2), e2 / (e1 + e2)
    assert abs(feats2["SC"][3, 100] - (w1 * f1 + w2 * f2)) < 5
    assert abs(feats2["SBW"][3, 100] / (w1 * w2 * (f2 - f1) ** 2) - 1) < 0.02


def test_silence_gives_zeros_not_nan():
    feats, _ = feats_of(np.zeros(SR * 3, np.float32))
    for kind in ("SC", "SBW", "SBE"):
        assert feats[kind].shape == (5, 200)
        assert np.all(feats[kind] == 0)


def test_empty_mel_filters_do_not_make_nan():
    # a tone at 500 Hz: band 1 holds empty filters (below ~1.1 kHz) beside full ones
    feats, S = feats_of(tone(500.0, SR, 3.5))
    assert (S.sum(axis=1) == 0).sum() > 100  # empty filters are real
    for v in feats.values():
        assert np.all(np.isfinite(v))


def test_index_reading_uses_bin_numbers():
    centres = mel_centres_hz(SR, 3401)
    idx = band_bins(centres, BANDS, "index")
    assert idx[0][0] == 300 and idx[0][-1] == 627
    assert idx[4][-1] == 3400
    S = np.zeros((3401, 3))
    S[400, :] = 1.0
    S[500, :] = 1.0
    f = band_features(S, centres_hz=centres, bands=BANDS, reading="index")
    np.testing.assert_allclose(f["SC"][0], 450.0)
    np.testing.assert_allclose(f["SBW"][0], 2500.0)
    np.testing.assert_allclose(f["SBE"][0], 2.0)
    assert not f["SBE"][1:].any()


def test_hz_reading_takes_filters_by_centre_frequency():
    centres = mel_centres_hz(SR, 3401)
    for (lo, hi), idx in zip(BANDS, band_bins(centres, BANDS, "hz")):
        assert np.all((centres[idx] >= lo) & (centres[idx] <= hi))
        outside = np.setdiff1d(np.arange(3401), idx)
        assert not np.any((centres[outside] >= lo) & (centres[outside] <= hi))


def test_unknown_reading_is_refused():
    with pytest.raises(ConfigError, match="unknown band reading 'bark'"):
        band_bins(mel_centres_hz(SR, 3401), BANDS, "bark")


def test_columns_are_stacked_frame_by_frame():
    M = np.array([[1, 2, 3], [10, 20, 30]])
    np.testing.assert_array_equal(stack_frames(M), [1, 10, 2, 20, 3, 30])

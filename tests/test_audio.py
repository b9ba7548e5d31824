import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_wav

from ser.data.audio import audio_info, fix_length, hop_samples, read_mono
from ser.errors import ConfigError, DataError


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("sr", [8000, 22050, 48000])
def test_reads_any_pcm_or_float_wav(tmp_path, subtype, sr):
    y = tone(440, sr, 0.1)
    path = write_wav(tmp_path / "a.wav", y, sr, subtype)
    out, sr_read = read_mono(path)
    assert sr_read == sr
    assert out.dtype == np.float32 and out.shape == y.shape
    tol = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert np.max(np.abs(out - y)) < tol


def test_stereo_is_mixed_down_not_interleaved(tmp_path):
    left = tone(440, 16000, 0.2)
    right = np.zeros_like(left)
    path = write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, "FLOAT")
    y, _ = read_mono(path)
    assert y.shape == left.shape  # interleaving would double the length
    np.testing.assert_allclose(y, left / 2, atol=1e-7)


def test_real_stereo_clip_matches_mean_of_channels(data_dir):
    path = data_dir / "Train" / "Calm" / "03-01-02-01-01-02-01.wav"
    raw, _ = sf.read(str(path), dtype="float32")
    assert raw.ndim == 2 and raw.shape[1] == 2
    y, sr = read_mono(path)
    assert sr == 48000
    np.testing.assert_allclose(y, raw.mean(axis=1), atol=1e-7)


def test_agrees_with_pydub_on_mono_16_bit(data_dir):
    from pydub import AudioSegment

    path = data_dir / "Train" / "Angry" / "03-01-05-01-01-01-01.wav"
    seg = AudioSegment.from_wav(str(path))
    ref = np.array(seg.get_array_of_samples(), dtype=np.float32) / 32768
    y, sr = read_mono(path)
    assert sr == seg.frame_rate
    np.testing.assert_array_equal(y, ref)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.wav: no such file"):
        read_mono(tmp_path / "nope.wav")


def test_non_audio_file_is_named(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio")
    with pytest.raises(DataError, match=r"notes\.wav: cannot be read as audio") as e1:
        read_mono(p)
    with pytest.raises(DataError, match=r"notes\.wav: cannot be read as audio") as e2:
        audio_info(p)
    for e in (e1, e2):  # the reader's own reason follows
        assert "Error" in str(e.value) and "NoneType" not in str(e.value)


def test_empty_wav_is_named(tmp_path):
    p = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(DataError, match=r"empty\.wav: holds no audio samples"):
        read_mono(p)
    with pytest.raises(DataError, match=r"empty\.wav: holds no audio samples"):
        audio_info(p)


def test_non_finite_samples_are_refused(tmp_path):
    y = tone(100, 8000, 0.05)
    y[10] = np.nan
    p = write_wav(tmp_path / "nan.wav", y, 8000, "FLOAT")
    with pytest.raises(DataError, match="non-finite"):
        read_mono(p)


def test_hop_and_fix_length():
    assert hop_samples(48000, 0.015) == 720
    assert hop_samples(22050, 0.015) == 330  # int() truncates 330.75
    np.testing.assert_array_equal(fix_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(5), 2), [0, 1])


def test_speech_onset_of_a_tone_after_silence():
    from ser.data.audio import speech_onset_s, window_start

    sr = 16000
    y = np.concatenate([np.zeros(sr), 0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)]).astype(np.float32)
    # the first 20 ms frame louder than -30 dB re. the loudest starts within 20 ms before 1 s; minus the margin
    assert speech_onset_s(y, sr, margin_s=0.1) == pytest.approx(0.9, abs=0.02)
    assert speech_onset_s(y * 1e-3, sr) == speech_onset_s(y, sr)  # level does not matter
    assert speech_onset_s(np.zeros(sr, np.float32), sr) == 0.0
    assert window_start(y, sr, "start") == 0 and window_start(y, sr, "onset") == round(speech_onset_s(y, sr) * sr)
    with pytest.raises(ConfigError, match="window"):
        window_start(y, sr, "middle")


# ------------------------------------------------------------------ the speech onset

SR = 16000
TONE_AMP = 0.1  # -20 dBFS peak
TONE_RMS = TONE_AMP / np.sqrt(2)


def _step(lead_s=0.7, level=TONE_AMP, sr=SR):
    """``lead_s`` of digital zeros, then 1 s of a constant ``level``: every frame's RMS is known."""
    return np.concatenate([np.zeros(round(lead_s * sr)), np.full(sr, level)]).astype(np.float32)


def _tone_after_noise(floor_db, lead_s=0.7, seed=0):
    """White noise ``floor_db`` dB below the tone's RMS, with a 440 Hz tone at -20 dBFS from ``lead_s`` on."""
    rng = np.random.default_rng(seed)
    n_lead = round(lead_s * SR)
    noise = rng.standard_normal(n_lead + SR)
    noise *= TONE_RMS * 10 ** (floor_db / 20) / noise.std()
    y = noise.copy()
    y[n_lead:] += TONE_AMP * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    return y.astype(np.float32)


def test_onset_of_a_step_is_the_first_frame_that_reaches_into_it():
    from ser.data.audio import speech_onset_s

    y = _step(0.7)
    # frames of 10 ms every 10 ms: frame 70 is the first with signal, exactly at 0.7 s
    assert speech_onset_s(y, SR, margin_s=0.0, frame_s=0.01, hop_s=0.01) == pytest.approx(0.70, abs=1e-9)
    # frames of 20 ms every 10 ms: frame 69 (0.69-0.71 s) already holds 10 ms of the step
    assert speech_onset_s(y, SR, margin_s=0.0) == pytest.approx(0.69, abs=1e-9)
    # frames of 30 ms: frame 68 (0.68-0.71 s); of 10 ms every 30 ms: frame 24 (0.72-0.73 s)
    assert speech_onset_s(y, SR, margin_s=0.0, frame_s=0.03, hop_s=0.01) == pytest.approx(0.68, abs=1e-9)
    assert speech_onset_s(y, SR, margin_s=0.0, frame_s=0.01, hop_s=0.03) == pytest.approx(0.72, abs=1e-9)
    # the defaults: 20 ms frames every 10 ms, -30 dB, a margin of 0.1 s before
    assert speech_onset_s(y, SR) == pytest.approx(0.59, abs=1e-9)
    assert speech_onset_s(y, SR, margin_s=0.25) == pytest.approx(0.44, abs=1e-9)


@pytest.mark.parametrize("sr", [8000, 22050, 48000])
def test_onset_is_in_seconds_at_any_sample_rate(sr):
    from ser.data.audio import speech_onset_s

    onset = speech_onset_s(_step(0.7, sr=sr), sr, margin_s=0.0)
    assert 0.7 - 0.02 - 1 / sr <= onset <= 0.7  # within the one 20 ms frame that reaches into the step


@pytest.mark.parametrize("rel_db, floor_db, onset_s", [
    # the floor below the threshold: the tone's start (0.69 s: the first 20 ms frame reaching into it)
    (-30.0, -35.0, 0.69), (-30.0, -40.0, 0.69), (-45.0, -50.0, 0.69), (-15.0, -20.0, 0.69),
    # the floor above it: the noise already counts, the onset is the clip's start
    (-30.0, -25.0, 0.0), (-45.0, -40.0, 0.0), (-15.0, -10.0, 0.0),
])
def test_onset_threshold_is_in_db_of_rms_amplitude(rel_db, floor_db, onset_s):
    """A tone at -20 dBFS after 0.7 s of noise ``floor_db`` dB below it (RMS):
    the noise counts as speech exactly when it is louder than ``rel_db``.
    Read as power (``10 ** (dB / 10)``) the -30 dB threshold would sit at
    -60 dB of amplitude and a -40 dB floor would count; read at a quarter
    (``/ 40``), a -20 dB floor would count against -15 dB."""
    from ser.data.audio import speech_onset_s

    y = _tone_after_noise(floor_db)
    assert speech_onset_s(y, SR, rel_db=rel_db, margin_s=0.0) == pytest.approx(onset_s, abs=1e-9)


def test_onset_default_threshold_lies_between_minus_25_and_minus_35_db():
    from ser.data.audio import speech_onset_s

    assert speech_onset_s(_tone_after_noise(-35.0), SR) == pytest.approx(0.59, abs=1e-9)
    assert speech_onset_s(_tone_after_noise(-25.0), SR) == 0.0


def test_onset_does_not_depend_on_the_recording_level():
    from ser.data.audio import speech_onset_s

    y = _tone_after_noise(-40.0)
    ref = speech_onset_s(y, SR, margin_s=0.0)
    assert ref == pytest.approx(0.69, abs=1e-9)
    for gain in (1e-3, 0.5, 9.0):
        assert speech_onset_s(y * gain, SR, margin_s=0.0) == ref


@pytest.mark.parametrize("y", [np.zeros(SR, np.float32), np.zeros(10, np.float32)], ids=["silence", "shorter than a frame"])
def test_a_silent_clip_starts_at_zero(y):
    from ser.data.audio import speech_onset_s

    assert speech_onset_s(y, SR) == 0.0
    assert speech_onset_s(y, SR, margin_s=0.0) == 0.0


def test_a_tone_from_the_first_sample_starts_at_zero_not_before():
    from ser.data.audio import speech_onset_s

    y = _tone_after_noise(-60.0, lead_s=0.0)
    assert speech_onset_s(y, SR, margin_s=0.0) == 0.0
    assert speech_onset_s(y, SR) == 0.0  # the margin does not go below the file's start
    # a short lead shorter than the margin: floored at 0 as well
    assert speech_onset_s(_step(0.05), SR) == 0.0


def test_frame_rms_known_values():
    from ser.data.audio import frame_rms

    # constant 0.3: every frame's RMS is 0.3; (n - window) // hop + 1 frames
    r = frame_rms(np.full(SR, 0.3), SR)
    assert len(r) == (SR - 320) // 160 + 1 == 99
    np.testing.assert_allclose(r, 0.3)
    assert len(frame_rms(np.full(SR, 0.3), SR, frame_s=0.01, hop_s=0.03)) == (SR - 160) // 480 + 1
    # a sine of amplitude A over whole periods: A / sqrt(2)
    s = frame_rms(0.5 * np.sin(2 * np.pi * 500 * np.arange(SR) / SR), SR)
    np.testing.assert_allclose(s, 0.5 / np.sqrt(2), rtol=1e-9)
    # frame i starts at i * hop: a step at sample 1000 appears first in the frame that reaches it
    y = np.zeros(2000)
    y[1000:] = 1.0
    r = frame_rms(y, SR, frame_s=0.02, hop_s=0.01)
    assert np.flatnonzero(r > 0)[0] == 5  # frame 5 covers samples 800-1119
    assert r[5] == pytest.approx(np.sqrt(120 / 320))
    # a clip shorter than a frame is one frame, padded with zeros
    np.testing.assert_allclose(frame_rms(np.ones(80), SR), [np.sqrt(80 / 320)])


def test_window_start_uses_every_field_of_the_onset_config():
    from ser.config import OnsetConfig
    from ser.data.audio import window_start

    y = _step(0.7)
    assert window_start(y, SR, "start") == 0
    assert window_start(y, SR, "onset") == round(0.59 * SR)  # the defaults
    assert window_start(y, SR, "onset", OnsetConfig()) == round(0.59 * SR)
    assert window_start(y, SR, "onset", OnsetConfig(margin_s=0.0)) == round(0.69 * SR)
    assert window_start(y, SR, "onset", OnsetConfig(margin_s=0.0, frame_s=0.03, hop_s=0.01)) == round(0.68 * SR)
    assert window_start(y, SR, "onset", OnsetConfig(margin_s=0.0, frame_s=0.01, hop_s=0.03)) == round(0.72 * SR)
    noisy = _tone_after_noise(-40.0)
    assert window_start(noisy, SR, "onset", OnsetConfig(margin_s=0.0)) == round(0.69 * SR)
    assert window_start(noisy, SR, "onset", OnsetConfig(margin_s=0.0, rel_db=-45.0)) == 0
    with pytest.raises(ConfigError, match="'middle'"):
        window_start(y, SR, "middle")


# ------------------------------------------------------------------ header and small helpers

def test_audio_info_reads_the_header(tmp_path):
    y = np.zeros((12345, 2), np.float32)
    info = audio_info(write_wav(tmp_path / "h.wav", y, 22050, "PCM_24"))
    assert (info.sr_hz, info.n_channels, info.n_samples, info.subtype) == (22050, 2, 12345, "PCM_24")
    assert info.duration_s == pytest.approx(12345 / 22050)
    with pytest.raises(DataError, match="nope.wav: no such file"):
        audio_info(tmp_path / "nope.wav")


def test_any_number_of_channels_is_averaged(tmp_path):
    ch = np.stack([np.full(100, v, np.float32) for v in (0.1, 0.2, 0.3, -0.2)], axis=1)
    y, sr = read_mono(write_wav(tmp_path / "quad.wav", ch, 8000, "FLOAT"))
    assert sr == 8000 and y.shape == (100,) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.1, atol=1e-7)
    mono, _ = read_mono(write_wav(tmp_path / "mono.wav", ch[:, 2], 8000, "FLOAT"))
    np.testing.assert_allclose(mono, 0.3, atol=1e-7)


def test_hop_below_one_sample_is_refused_and_fix_length_keeps_the_dtype():
    assert hop_samples(100, 0.01) == 1
    with pytest.raises(DataError, match="hop of 0 samples"):
        hop_samples(99, 0.01)
    out = fix_length(np.ones(3, np.float32), 5)
    assert out.dtype == np.float32 and out.tolist() == [1, 1, 1, 0, 0]
    assert fix_length(np.arange(4), 4).tolist() == [0, 1, 2, 3]


def test_voiced_rms_is_the_level_over_the_speech_frames_only():
    from ser.data.audio import voiced_rms

    assert voiced_rms(np.full(SR, 0.1), SR) == pytest.approx(0.1)
    # 0.7 s of silence before: the level barely moves (one partial frame at the step), a plain RMS would fall to 0.077
    assert voiced_rms(_step(0.7), SR) == pytest.approx(0.1, abs=5e-4)
    assert voiced_rms(np.zeros(SR), SR) == 1e-8
    # a noise floor 40 dB down is not speech at -30 dB (the tone's RMS alone), but is at -45 dB (the level falls)
    y = _tone_after_noise(-40.0)
    assert voiced_rms(y, SR) == pytest.approx(TONE_RMS, rel=0.01)
    assert voiced_rms(y, SR, rel_db=-45.0) < 0.85 * TONE_RMS
    assert voiced_rms(3 * y, SR) == pytest.approx(3 * voiced_rms(y, SR), rel=1e-6)
    # two levels: the root of the mean power, not the mean of the amplitudes (0.075)
    two = np.concatenate([np.full(SR // 2, 0.1), np.full(SR // 2, 0.05)])
    assert voiced_rms(two, SR) == pytest.approx(np.sqrt((0.1 ** 2 + 0.05 ** 2) / 2), rel=2e-3)


# ------------------------------------------------------------------ exact thresholds and small rates

def _two_levels(lead_db, lead_s=0.5, sr=SR):
    """``lead_s`` at a constant ``lead_db`` dB below the rest (1 s at 0.1): exact frame RMS values."""
    return np.concatenate([np.full(round(lead_s * sr), 0.1 * 10 ** (lead_db / 20)), np.full(sr, 0.1)])


@pytest.mark.parametrize("lead_db, onset_s", [(-29.5, 0.0), (-30.5, 0.49)])
def test_onset_threshold_is_exact_to_half_a_db(lead_db, onset_s):
    from ser.data.audio import speech_onset_s

    assert speech_onset_s(_two_levels(lead_db), SR, margin_s=0.0) == pytest.approx(onset_s, abs=1e-9)


def test_voiced_rms_threshold_is_exact_to_half_a_db():
    from ser.data.audio import voiced_rms

    lead = 0.1 * 10 ** (-29.5 / 20)
    with_lead = np.sqrt((50 * lead ** 2 + 100 * 0.1 ** 2) / 150)  # frames: ~50 at the lead, ~100 at 0.1
    assert voiced_rms(_two_levels(-29.5), SR) == pytest.approx(with_lead, rel=0.01)
    assert voiced_rms(_two_levels(-30.5), SR) == pytest.approx(0.1, rel=0.005)


def test_voiced_rms_uses_the_frames_it_is_given():
    from ser.data.audio import voiced_rms

    y = np.concatenate([np.zeros(SR // 2), np.full(SR // 2, 0.1)])
    # 0.5 s frames every 0.25 s: silent, half (power 0.005), full (0.01): sqrt(0.0075)
    assert voiced_rms(y, SR, frame_s=0.5, hop_s=0.25) == pytest.approx(np.sqrt(0.0075), rel=1e-9)


def test_frames_and_onset_at_a_hop_of_one_sample():
    from ser.data.audio import frame_rms, speech_onset_s

    assert len(frame_rms(np.ones(10), 100, frame_s=0.01, hop_s=0.01)) == 10  # 1-sample frames, 1-sample hops
    assert len(frame_rms(np.ones(300), SR, hop_s=1 / SR)) == 1  # padded to one frame, not two
    y = np.zeros(100)
    y[50:] = 1.0
    assert speech_onset_s(y, 100, margin_s=0.0, frame_s=0.01, hop_s=0.01) == pytest.approx(0.5)


def test_frame_rms_is_computed_in_double_precision():
    from ser.data.audio import frame_rms

    assert frame_rms(np.full(SR, 0.3, np.float32), SR).dtype == np.float64


def test_channels_are_averaged_in_double_precision(tmp_path):
    """1 + 2**-24 + 2**-24 is 1 in float32 but not in float64: the mean is rounded once, at the end."""
    ch = np.array([[1.0, 2 ** -24, 2 ** -24]], np.float32).repeat(4, axis=0)
    y, _ = read_mono(write_wav(tmp_path / "three.wav", ch, 8000, "FLOAT"))
    assert y[0] == np.float32((1 + 2 ** -23) / 3) != np.float32(1 / 3)


def test_a_one_sample_file_is_not_empty(tmp_path):
    p = write_wav(tmp_path / "one.wav", np.array([0.25], np.float32), 8000, "FLOAT")
    assert audio_info(p).n_samples == 1
    assert read_mono(p)[0].tolist() == [0.25]

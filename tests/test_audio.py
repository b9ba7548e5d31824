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
    with pytest.raises(DataError, match=r"notes\.wav: cannot be read as audio"):
        read_mono(p)
    with pytest.raises(DataError, match=r"notes\.wav: cannot be read as audio"):
        audio_info(p)


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

"""The 1D CNN's per-speaker level normalisation, ``norm="speaker_rms"`` (ser/models/cnn1d.py, ser/classify.py)."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import tone, write_wav  # noqa: E402
from ser.models import cnn1d  # noqa: E402
from ser.config import Cnn1dConfig  # noqa: E402
from ser.errors import ConfigError, DataError  # noqa: E402

N = 800  # samples per window: a whole number of periods of every sine below
SMALL = dict(n_frames=20, hop_s=0.015)  # 2520 samples at 8 kHz


def sine(amp, k=8, phase=0.0, n=N):
    """``amp * sin`` with ``k`` whole periods in ``n`` samples: RMS exactly ``amp / sqrt(2)``."""
    return (amp * np.sin(2 * np.pi * k * np.arange(n) / n + phase)).astype(np.float32)


def _tiny(**kw):
    base = dict(sr_hz=8000, n_channels=4, n_hidden=8, n_blocks=2, batch_size=4)
    return dataclasses.replace(Cnn1dConfig(), **{**base, **kw})


# ------------------------------------------------------------ speaker levels

def test_speaker_levels_known_answers_in_clip_order():
    # speakers interleaved: A, B, A, B; constant amplitudes 0.1 (A) and 0.4 (B)
    x = np.stack([sine(0.1), sine(0.4, k=5), sine(0.1, phase=1.0), sine(0.4, k=3)])
    lv = cnn1d.speaker_levels(x, ["A", "B", "A", "B"])
    assert lv.shape == (4,)
    np.testing.assert_allclose(lv, np.array([0.1, 0.4, 0.1, 0.4]) / np.sqrt(2), rtol=1e-6)
    # the RMS over all the samples of the speaker's clips, not the mean of the clips' RMS
    mixed = cnn1d.speaker_levels(np.stack([sine(0.1), sine(0.3)]), [7, 7])
    np.testing.assert_allclose(mixed, np.sqrt((0.1 ** 2 + 0.3 ** 2) / 4), rtol=1e-6)
    assert not np.allclose(mixed, (0.1 + 0.3) / 2 / np.sqrt(2), rtol=1e-3)


def test_a_speakers_level_ignores_other_speakers_clips():
    x = np.stack([sine(0.1), sine(0.4), sine(0.2), sine(0.4, k=2)])
    spk = [("Train", 1), ("Train", 2), ("Train", 1), ("Train", 2)]
    louder_b = x.copy()
    louder_b[[1, 3]] *= 5
    a, b = cnn1d.speaker_levels(x, spk), cnn1d.speaker_levels(louder_b, spk)
    assert np.array_equal(a[[0, 2]], b[[0, 2]])
    np.testing.assert_allclose(b[[1, 3]], 5 * a[[1, 3]], rtol=1e-6)
    # alone, speaker 1 gets the same level as among the others
    np.testing.assert_allclose(cnn1d.speaker_levels(x[[0, 2]], spk[::2]), a[[0, 2]], rtol=1e-12)


def test_speaker_levels_per_window_type():
    x = np.stack([np.stack([sine(0.1), sine(0.5)]), np.stack([sine(0.1, k=3), sine(0.5, k=3)])])  # [2, 2 windows, N]
    lv = cnn1d.speaker_levels(x, ["A", "A"])
    assert lv.shape == (2, 2)
    np.testing.assert_allclose(lv, np.array([[0.1, 0.5], [0.1, 0.5]]) / np.sqrt(2), rtol=1e-6)


def test_a_silent_speaker_is_an_error_naming_it():
    x = np.stack([sine(0.1), np.zeros(N, np.float32), np.zeros(N, np.float32)])
    with pytest.raises(DataError, match=r"speaker \('Test', 7\).*2 clip\(s\) are silent"):
        cnn1d.speaker_levels(x, [("Test", 5), ("Test", 7), ("Test", 7)])
    with pytest.raises(DataError, match="0 or not finite"):  # a zero level never reaches a division
        cnn1d.normalise(x, "speaker_rms", levels=np.array([0.1, 0.0, 0.0]))
    with pytest.raises(DataError, match="2 speakers for 3 clips"):
        cnn1d.speaker_levels(x, [1, 2])


# ------------------------------------------------------------ normalisation

def test_speaker_rms_removes_a_speakers_gain_and_keeps_loudness_within_a_speaker():
    rng = np.random.default_rng(0)
    # speaker 1: a quiet and a loud clip (3x); speaker 2: noise
    x = np.stack([sine(0.05), sine(0.15, k=5), 0.2 * rng.standard_normal(N).astype(np.float32),
                  0.1 * rng.standard_normal(N).astype(np.float32)])
    spk = [1, 1, 2, 2]
    z = cnn1d.normalise(x, "speaker_rms", levels=cnn1d.speaker_levels(x, spk))
    assert z.dtype == np.float32 and z.shape == x.shape
    louder = x.copy()
    louder[:2] *= 10  # speaker 1 recorded 20 dB louder
    z10 = cnn1d.normalise(louder, "speaker_rms", levels=cnn1d.speaker_levels(louder, spk))
    np.testing.assert_allclose(z10, z, rtol=1e-5, atol=1e-6)
    # within speaker 1 the loud clip stays 3x louder (clip_std would make them equal)
    assert z[1].std() / z[0].std() == pytest.approx(3, rel=1e-4)
    c = cnn1d.normalise(x, "clip_std")
    assert c[1].std() / c[0].std() == pytest.approx(1, rel=1e-4)
    # each speaker at unit RMS over their clips
    for rows in ([0, 1], [2, 3]):
        assert np.sqrt(np.mean(np.square(z[rows], dtype=np.float64))) == pytest.approx(1, rel=1e-5)
    with pytest.raises(ConfigError, match="speaker level"):
        cnn1d.normalise(x, "speaker_rms")


# ------------------------------------------------------------ candidates

TODAY = {"window at start, clip_std, shift ±0.25 s": {"window": "start", "norm": "clip_std", "shift_s": 0.25},
         "window at onset, clip_std, shift ±0.25 s": {"window": "onset", "norm": "clip_std", "shift_s": 0.25}}


def test_candidates_without_speaker_windows_are_todays():
    assert cnn1d.candidates(dataclasses.replace(Cnn1dConfig(), speaker_norm_windows=())) == TODAY


def test_candidates_add_speaker_rms_at_the_speaker_windows():
    c = cnn1d.candidates(Cnn1dConfig())  # the default: ("onset",)
    assert Cnn1dConfig().speaker_norm_windows == ("onset",)
    assert list(c) == [*TODAY, "window at onset, speaker_rms, shift ±0.25 s"]
    assert {k: c[k] for k in TODAY} == TODAY
    assert c["window at onset, speaker_rms, shift ±0.25 s"] == {"window": "onset", "norm": "speaker_rms",
                                                                 "shift_s": 0.25}
    with pytest.raises(ConfigError, match="'onset' is not among grid_window"):
        cnn1d.candidates(dataclasses.replace(Cnn1dConfig(), grid_window=("start",)))
    with pytest.raises(ConfigError, match="unknown"):
        cnn1d.candidates(dataclasses.replace(Cnn1dConfig(), grid_norm=("peak",)))


# ------------------------------------------------------------ the learner

def _spy_fit(monkeypatch):
    """Keep the input tensors that ``ser.models.training.fit`` receives."""
    import ser.models.training

    seen, real = [], ser.models.training.fit

    def spy(model, x, y, tcfg, **kw):
        seen.append({"x": x.clone(), "x_val": None if kw.get("x_val") is None else kw["x_val"].clone()})
        return real(model, x, y, tcfg, **kw)

    monkeypatch.setattr(ser.models.training, "fit", spy)
    return seen


def _two_window_data(seed=0):
    """8 clips of 2 speakers at different gains (one clip nearly silent), two windows; labels 0/1."""
    rng = np.random.default_rng(seed)
    gain = np.array([0.05] * 3 + [1e-6] + [0.5] * 4, np.float32)[:, None, None]
    waves = (gain * rng.standard_normal((8, 2, 400)) * np.array([1.0, 2.0])[None, :, None]).astype(np.float32)
    spk = [1, 1, 1, 1, 2, 2, 2, 2]
    return waves, spk, np.array([0, 1] * 4)


def test_learner_trains_speaker_rms_on_waves_over_their_speaker_level(monkeypatch):
    seen = _spy_fit(monkeypatch)
    waves, spk, y = _two_window_data()
    x = cnn1d.SpeakerWaves(waves, cnn1d.speaker_levels(waves, spk))
    lrn = cnn1d.learner(_tiny(), 2)  # grid_window ("start", "onset")
    params = {"window": "onset", "norm": "speaker_rms", "shift_s": 0.0}
    tr, va = np.arange(4, 8), np.arange(0, 4)  # a fold: speaker 2 trains, speaker 1 is held out
    trained, hist = lrn.fit(params, x[tr], y[tr], seed=0, epochs=1, x_val=x[va], y_val=y[va], log=lambda s: None)
    assert len(hist["val_acc"]) == 1 and trained.state == {"train_rms_scale": None}  # nothing fitted
    own = cnn1d.speaker_levels(waves[va, 1], [1] * 4)  # the held-out speaker's own level at onset
    expect = torch.from_numpy(waves[tr, 1] / cnn1d.speaker_levels(waves[tr, 1], [2] * 4)[:, None].astype(np.float32))
    assert torch.equal(seen[0]["x"], expect.unsqueeze(1))
    assert torch.equal(seen[0]["x_val"], torch.from_numpy(waves[va, 1] / own[:, None].astype(np.float32)).unsqueeze(1))
    p = lrn.predict(trained, params, x[va])
    assert p.shape == (4, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    # a speaker recorded 10x louder is the same input, so the same prediction
    loud = cnn1d.SpeakerWaves(10 * waves[va], cnn1d.speaker_levels(10 * waves[va], [1] * 4))
    np.testing.assert_allclose(lrn.predict(trained, params, loud), p, atol=1e-5)
    with pytest.raises(ConfigError, match="SpeakerWaves"):
        lrn.predict(trained, params, waves[va])


def test_clip_std_inputs_are_unchanged(monkeypatch):
    """clip_std reads the same arrays with the same arithmetic as before speaker_rms
    existed, whether the waveforms come alone or with speaker levels."""
    seen = _spy_fit(monkeypatch)
    waves, spk, y = _two_window_data(1)
    lrn = cnn1d.learner(_tiny(), 2)
    params = {"window": "onset", "norm": "clip_std", "shift_s": 0.0}
    runs = [lrn.fit(params, x, y, seed=0, epochs=1, log=lambda s: None)
            for x in (waves, cnn1d.SpeakerWaves(waves, cnn1d.speaker_levels(waves, spk)))]
    w = waves[:, 1]  # the formula of the code before the change, float32 throughout
    before = torch.from_numpy((w - w.mean(axis=-1, keepdims=True))
                              / np.maximum(w.std(axis=-1, keepdims=True), 1e-8)).unsqueeze(1)
    assert torch.equal(seen[0]["x"], before) and torch.equal(seen[1]["x"], before)
    (a, ha), (b, hb) = runs
    assert ha["train_loss"] == hb["train_loss"]
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), k
    assert np.array_equal(lrn.predict(a, params, waves), lrn.predict(b, params, cnn1d.SpeakerWaves(
        waves, cnn1d.speaker_levels(waves, spk))))


def test_speaker_waves_index_together():
    waves, spk, _ = _two_window_data()
    x = cnn1d.SpeakerWaves(waves, cnn1d.speaker_levels(waves, spk))
    part = x[np.array([6, 1])]
    assert len(x) == 8 and len(part) == 2
    assert np.array_equal(part.waves, waves[[6, 1]]) and np.array_equal(part.levels, x.levels[[6, 1]])
    with pytest.raises(DataError, match="levels of shape"):
        cnn1d.SpeakerWaves(waves, x.levels[:, 0])


# ------------------------------------------------------------ speakers of clips

def test_a_clip_without_speaker_is_an_error_naming_it(tiny_dataset, monkeypatch):
    from ser.data.dataset import Clip, list_clips
    from ser.models.protocol import Learner

    clips = list_clips(tiny_dataset)
    odd = write_wav(tiny_dataset / "Test" / "Sad" / "interview_take3.wav", tone(300, 16000, 0.5))
    clips = clips + [Clip(odd, "Test", 3, "Sad", None)]  # a clip whose speaker is not known
    with pytest.raises(DataError, match="interview_take3.wav"):
        cnn1d.clip_speakers(clips)
    assert cnn1d.clip_speakers(clips[:2]) == [(clips[0].split, clips[0].speaker), (clips[1].split, clips[1].speaker)]
    # a run with a speaker_rms candidate stops before any training
    def never(*a, **kw):
        raise AssertionError("trained before every clip's speaker was checked")

    monkeypatch.setattr(cnn1d, "learner", lambda cfg, n: Learner(fit=never, predict=never))
    cfg = _tiny(**SMALL, grid_window=("start",), grid_norm=("clip_std",), speaker_norm_windows=("start",))
    with pytest.raises(DataError, match="interview_take3.wav"):
        cnn1d.run_cnn1d(clips, cfg, log=lambda s: None)
    assert odd.is_file()


def test_new_clips_are_grouped_by_speaker_and_lone_clips_named():
    from ser.classify import new_speakers

    paths = [Path("d/03-01-05-01-01-01-01.wav"), Path("d/03-01-04-01-01-01-02.wav"),
             Path("d/03-01-04-01-02-01-01.wav"), Path("d/note.wav")]
    lines = []
    keys = new_speakers(paths, log=lines.append)
    assert keys[0] == keys[2] == ("speaker", "1")
    assert len(set(keys)) == 3 and keys[1] != keys[3]  # two lone clips: two speakers
    assert len(lines) == 1 and "03-01-04-01-01-01-02.wav, note.wav" in lines[0]
    assert "03-01-05-01-01-01-01.wav" not in lines[0]
    assert new_speakers(paths[:1] + paths[2:3], log=lines.append) == [("speaker", "1")] * 2 and len(lines) == 1
    # a lone clip's level is its own RMS
    x = np.stack([sine(0.1), sine(0.3), sine(0.2), sine(0.4)])
    lv = cnn1d.speaker_levels(x, keys)
    np.testing.assert_allclose(lv[[1, 3]], np.array([0.3, 0.4]) / np.sqrt(2), rtol=1e-6)


# ------------------------------------------------------------ the whole run

def test_run_with_speaker_rms_levels_each_split_by_its_own_speakers(tiny_dataset, tmp_path, monkeypatch):
    """Every fit's inputs carry levels from each speaker's own clips (the
    held-out one included), and predict reproduces the run's Test probabilities."""
    from ser.config import Config
    from ser.data.dataset import list_clips, split_clips
    from ser.pipeline import save_network
    from ser.classify import cnn1d_probe
    from ser.models.protocol import Learner

    seen, real = [], cnn1d.learner

    def recording(cfg, n_classes):
        lrn = real(cfg, n_classes)

        def fit(params, x, y, **kw):
            seen.append({"x": x, "x_val": kw.get("x_val")})
            return lrn.fit(params, x, y, **kw)

        return Learner(fit=fit, predict=lrn.predict)

    monkeypatch.setattr(cnn1d, "learner", recording)
    clips = list_clips(tiny_dataset)
    cfg = _tiny(**SMALL, grid_window=("start",), grid_norm=(), speaker_norm_windows=("start",), max_epochs=1,
                smooth_epochs=1, val_seeds=(0,), seeds=(0,))
    res, trained = cnn1d.run_cnn1d(clips, cfg, log=lambda s: None)
    assert res["chosen"] == "window at start, speaker_rms, shift ±0.25 s"
    assert res["models"][res["chosen"]]["params"]["norm"] == "speaker_rms"
    assert res["input"]["norms"] == {"speaker_rms": cnn1d.NORM_TEXT["speaker_rms"]}
    speakers = np.array([c.speaker for c in split_clips(clips, "Train")])
    folds = [speakers[speakers != "1"], speakers[speakers == "1"], speakers[speakers != "2"], speakers[speakers == "2"]]
    assert len(seen) == 2 + 1  # two folds (speakers 1, 2), one final model
    for x, who in zip([seen[0]["x"], seen[0]["x_val"], seen[1]["x"], seen[1]["x_val"], seen[2]["x"]],
                      folds + [speakers]):
        assert len(x) == len(who)
        for a in set(who):  # a speaker's level: the RMS over exactly their rows, the held-out speaker's too
            rows = who == a
            level = np.sqrt(np.mean(np.square(x.waves[rows], dtype=np.float64)))
            np.testing.assert_allclose(x.levels[rows, 0], level, rtol=1e-12)

    save_network(res, trained, tmp_path / "models", "cnn1d", tmp_path / "results" / "cnn1d.json")
    test = split_clips(clips, "Test")
    lines = []
    name, probs = cnn1d_probe([c.path for c in test], dataclasses.replace(Config(), cnn1d=cfg),
                              tmp_path / "results", log=lines.append)
    assert name == f"1D CNN, {res['chosen']}, seed ensemble" and lines == []
    np.testing.assert_allclose(probs, res["predictions"][res["chosen"]]["Test"]["ensemble_proba"], atol=1e-6)
    # speakers given by the caller decide the levels, whatever the names say: here one speaker for all
    grouped, levels = [], cnn1d.speaker_levels
    monkeypatch.setattr(cnn1d, "speaker_levels", lambda x, keys: grouped.append(keys) or levels(x, keys))
    cnn1d_probe([c.path for c in test], dataclasses.replace(Config(), cnn1d=cfg), tmp_path / "results",
                log=lines.append, speakers=["s"] * len(test))
    assert lines == [] and grouped == [[("speaker", "s")] * len(test)]

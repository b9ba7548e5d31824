"""The 1D CNN: data set, network, training, protocol (ser/cnn1d.py, ser/curves.py)."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import tone, write_wav  # noqa: E402
from ser import cnn1d  # noqa: E402
from ser.config import Cnn1dConfig  # noqa: E402
from ser.errors import ConfigError, DataError  # noqa: E402
from ser.training import TrainConfig, fit, seed_everything  # noqa: E402

# A small, fast setting for tests: 8 kHz, 20 frames of 15 ms (2520 samples).
SMALL = dict(n_frames=20, hop_s=0.015)


def _split(tmp_path, sr=16000, seconds=0.5):
    """Class folders written in non-alphabetical order, one clip each."""
    split = tmp_path / "Train"
    for i, name in enumerate(["Sad", "Angry", "Happy", "Calm"]):
        write_wav(split / name / "a.wav", tone(200 + 100 * i, sr, seconds), sr)
    return split


def test_dataset_labels_follow_alphabetical_class_folders(tmp_path):
    ds = cnn1d.EmotionSpeechDataset(_split(tmp_path), norm="none", **SMALL)
    assert ds.classes == ["Angry", "Calm", "Happy", "Sad"]
    assert [p.parent.name for p in ds.paths] == ds.classes
    assert ds.y.tolist() == [0, 1, 2, 3]
    x, label = ds[2]
    assert label == 2 and ds.paths[2].parent.name == "Happy"
    assert x.shape == (1, 21 * 240) and x.dtype == torch.float32
    assert len(ds) == 4


def test_dataset_from_clips_matches_folder(tiny_dataset):
    from ser.dataset import list_clips, split_clips

    train = split_clips(list_clips(tiny_dataset), "Train")
    a = cnn1d.EmotionSpeechDataset(train, norm="clip_std", **SMALL)
    b = cnn1d.EmotionSpeechDataset(tiny_dataset / "Train", norm="clip_std", **SMALL)
    assert a.classes == b.classes == ["Angry", "Calm", "Happy", "Sad"]
    assert torch.equal(a.y, b.y)
    assert torch.equal(a.x, b.x)


def test_short_clip_is_zero_padded_long_clip_cut(tmp_path):
    short = write_wav(tmp_path / "s.wav", tone(440, 16000, 0.05, amp=0.5), 16000)
    y = cnn1d.load_waveform(short, **SMALL)
    n = 21 * 240
    assert y.shape == (n,)
    assert np.abs(y[:800]).max() > 0.4
    assert np.all(y[800:] == 0)
    long = write_wav(tmp_path / "l.wav", tone(440, 16000, 1.0), 16000)
    assert cnn1d.load_waveform(long, **SMALL).shape == (n,)


def test_stereo_is_mixed_down_not_interleaved(tmp_path):
    sr = 16000
    left = tone(300, sr, 0.5, amp=0.4)
    right = np.full_like(left, 0.2)
    path = tmp_path / "st.wav"
    import soundfile as sf

    sf.write(str(path), np.stack([left, right], axis=1), sr, subtype="PCM_16")
    y = cnn1d.load_waveform(path, **SMALL)
    n = 21 * 240
    assert y.shape == (n,)  # interleaving would double the rate of samples
    np.testing.assert_allclose(y[:n], ((left + right) / 2)[:n], atol=1e-4)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_any_sample_rate_and_resampling(tmp_path, sr):
    path = write_wav(tmp_path / f"{sr}.wav", tone(300, sr, 0.5, amp=0.5), sr)
    native = cnn1d.load_waveform(path, **SMALL)
    assert native.shape == ((20 + 1) * int(sr * 0.015),)
    y = cnn1d.load_waveform(path, sr_hz=8000, **SMALL)
    assert y.shape == (21 * 120,)
    # a 300 Hz tone survives resampling: its amplitude in the middle is kept
    assert abs(np.abs(y[500:2000]).max() - 0.5) < 0.03


def test_mixed_rates_need_a_target_rate(tmp_path):
    a = write_wav(tmp_path / "a.wav", tone(300, 16000, 0.5), 16000)
    b = write_wav(tmp_path / "b.wav", tone(300, 8000, 0.5), 8000)
    with pytest.raises(DataError, match="mixed sample rates"):
        cnn1d.load_waveforms([a, b], **SMALL)
    assert cnn1d.load_waveforms([a, b], sr_hz=8000, **SMALL).shape == (2, 21 * 120)


def test_normalisations():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 1000)) * np.array([[0.01], [0.1], [0.5]])).astype(np.float32)
    spec = cnn1d.normalise(x, "spec")
    np.testing.assert_allclose(spec, (x * 32768 - 1000) / 100, rtol=1e-5)
    z = cnn1d.normalise(x, "clip_std")
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(1), 1, atol=1e-4)
    s = cnn1d.fit_scale(x)
    r = cnn1d.normalise(x, "train_rms", scale=s)
    assert abs(np.sqrt((r.astype(np.float64) ** 2).mean()) - 1) < 1e-4
    # relative loudness is kept by train_rms, removed by clip_std
    assert r[2].std() / r[0].std() > 20
    with pytest.raises(ConfigError, match="scale"):
        cnn1d.normalise(x, "train_rms")
    with pytest.raises(ConfigError, match="unknown normalisation"):
        cnn1d.normalise(x, "peak")


def test_train_rms_dataset_uses_given_scale(tiny_dataset):
    tr = cnn1d.EmotionSpeechDataset(tiny_dataset / "Train", norm="train_rms", **SMALL)
    te = cnn1d.EmotionSpeechDataset(tiny_dataset / "Test", norm="train_rms", scale=tr.scale, **SMALL)
    assert te.scale == tr.scale
    np.testing.assert_allclose(te.x.squeeze(1).numpy(), te.waveforms / tr.scale, rtol=1e-6)


@pytest.mark.parametrize("sr", [8000, 16000])
def test_model_shapes(sr):
    net = cnn1d.build_model(4, sr_hz=sr)
    out = net(torch.randn(3, 1, 201 * int(sr * 0.015)))
    assert out.shape == (3, 4)
    kinds = {type(m).__name__ for m in net.modules()}
    assert {"Conv1d", "MaxPool1d", "Linear", "Dropout"} <= kinds


def test_augment_shift_and_gain():
    x = torch.arange(1, 11, dtype=torch.float32).view(1, 1, 10).repeat(50, 1, 1)
    aug = cnn1d.make_augment(max_shift=3)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for row in out[:, 0]:
        nz = row[row != 0]
        # a shifted copy: consecutive values, at most 3 lost, zeros fill the rest
        assert len(nz) >= 7 and torch.all(torch.diff(nz) == 1)
    assert cnn1d.make_augment() is None
    g = cnn1d.make_augment(gain_db=6)(x, torch.Generator().manual_seed(0))
    ratio = (g / x)[:, 0, 0]
    assert torch.all(ratio >= 10 ** (-6 / 20) - 1e-6) and torch.all(ratio <= 10 ** (6 / 20) + 1e-6)


def _toy(n_per_class=6, n=1200, seed=0):
    """Four classes of noisy tones at different pitches: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    t = np.arange(n) / 8000
    for label, f in enumerate((200, 500, 1100, 2300)):
        for _ in range(n_per_class):
            ph = rng.uniform(0, 2 * np.pi)
            xs.append(np.sin(2 * np.pi * f * t + ph) + 0.3 * rng.standard_normal(n))
            ys.append(label)
    x = torch.tensor(np.array(xs), dtype=torch.float32).unsqueeze(1)
    return x, torch.tensor(ys)


def _train(seed, epochs=6):
    x, y = _toy()
    seed_everything(seed)
    net = cnn1d.build_model(4, sr_hz=8000, n_channels=8, n_hidden=16, dropout=0.1)
    hist = fit(net, x, y, TrainConfig(epochs=epochs, batch_size=8, lr=3e-3), seed=seed,
               augment=cnn1d.make_augment(max_shift=50), log=lambda s: None)
    return net, hist


def test_training_lowers_the_loss():
    _, hist = _train(0, epochs=8)
    assert hist["train_loss"][-1] < 0.7 * hist["train_loss"][0]


def test_same_seed_same_weights_and_losses():
    a, ha = _train(3, epochs=2)
    b, hb = _train(3, epochs=2)
    assert ha["train_loss"] == hb["train_loss"]
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    _, hc = _train(4, epochs=2)
    assert hc["train_loss"] != ha["train_loss"]


def test_state_dict_round_trip_weights_only(tmp_path):
    net, _ = _train(0, epochs=1)
    path = tmp_path / "m.pt"
    from ser.io import save_state_dict

    save_state_dict(net, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind
    cfg = dataclasses.replace(Cnn1dConfig(), sr_hz=8000, n_channels=8, n_hidden=16, dropout=0.1)
    again = cnn1d.load_model(path, cfg)
    x, _ = _toy(n_per_class=1)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), again(x))


def test_moving_average_is_centred():
    from ser.curves import moving_average

    np.testing.assert_allclose(moving_average([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])
    np.testing.assert_allclose(moving_average([1, 2, 3], 1), [1, 2, 3])


def test_run_cnn1d_end_to_end(tiny_dataset, tmp_path):
    from ser.dataset import list_clips

    clips = list_clips(tiny_dataset)
    cfg = dataclasses.replace(
        Cnn1dConfig(), sr_hz=8000, n_channels=8, n_hidden=16, max_epochs=3, smooth_epochs=1,
        grid_norm=("clip_std", "train_rms"), grid_shift_s=(0.0,), seeds=(0, 1), threads=0, **SMALL)
    lines = []
    res = cnn1d.run_cnn1d(clips, cfg, out_dir=tmp_path / "models",
                          results_path=tmp_path / "r" / "cnn1d.json", log=lines.append)
    on_disk = json.loads((tmp_path / "r" / "cnn1d.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    val = res["validation"]
    assert len(val["candidates"]) == 2 and val["folds"] == [1, 2]
    for c in val["candidates"]:
        assert len(c["mean_val_acc"]) == 3 and len(c["histories"]) == 2
        assert 1 <= c["best_epoch"] <= 3
    assert res["training"]["epochs"] == val["chosen_epochs"]
    t = res["test"]
    assert [r["seed"] for r in t["per_seed"]] == [0, 1]
    assert t["summary"]["per_seed"] == [r["test"]["accuracy"] for r in t["per_seed"]]
    assert t["ensemble"]["n"] == 8 and t["pooled"]["n"] == 16
    assert np.array(t["per_seed"][0]["test"]["confusion"]).sum() == 8
    for h in res["curves"]["validation"]:
        assert len(h["train_loss"]) == len(h["val_acc"]) == 3
    for h in res["curves"]["final"]:
        assert len(h["train_acc"]) == res["training"]["epochs"] and h["val_acc"] == []
    for p in res["files"]["checkpoints"]:
        sd = torch.load(p, weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in sd.values())
    assert set(res["seconds"]) >= {"validation", "final_training", "test", "total"}
    assert any("chose" in s for s in lines)


def test_run_cnn1d_refuses_shared_actor(tiny_dataset, tmp_path):
    import shutil

    from ser.dataset import list_clips

    src = tiny_dataset / "Test" / "Angry" / "03-01-05-01-01-01-05.wav"
    shutil.copy(src, tiny_dataset / "Test" / "Angry" / "03-01-05-01-01-02-01.wav")
    with pytest.raises(DataError, match="both Train and Test"):
        cnn1d.run_cnn1d(list_clips(tiny_dataset), Cnn1dConfig(), out_dir=tmp_path)


def test_learning_curve_plot():
    from ser.curves import curve_stats, plot_learning_curves

    hs = [{"train_loss": [2, 1, 0.5], "train_acc": [0.2, 0.5, 0.9], "val_loss": [2, 1.5, 1.4],
           "val_acc": [0.25, 0.4, 0.5]},
          {"train_loss": [2, 1.2, 0.7], "train_acc": [0.3, 0.5, 0.7], "val_loss": [],
           "val_acc": []}]
    st = curve_stats(hs, "train_loss")
    assert st["mean"] == [2, 1.1, 0.6] and st["n_runs"] == 2
    assert curve_stats(hs, "val_loss")["n_runs"] == 1
    assert curve_stats([{"val_loss": []}], "val_loss") is None
    axes = plot_learning_curves(hs, mark_epoch=2)
    assert len(axes) == 2 and len(axes[0].lines) == 3  # train, val, marker
    import matplotlib.pyplot as plt

    plt.close("all")

"""The 1D CNN: data set, network, training, protocol run (ser/models/cnn1d.py, ser/report/plots.py)."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import tone, write_wav  # noqa: E402
from ser import results  # noqa: E402
from ser.models import cnn1d  # noqa: E402
from ser.config import Cnn1dConfig  # noqa: E402
from ser.errors import ConfigError, DataError  # noqa: E402

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
    from ser.data.dataset import list_clips, split_clips

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


from test_training import _toy, _train  # noqa: E402  (tone classes and a short seeded fit)


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


def _with_confirm(root):
    """Add a Confirm split (speaker 9, one clip per class) to ``tiny_dataset``."""
    codes = {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}
    for i, (name, code) in enumerate(codes.items()):
        write_wav(root / "Confirm" / name / f"03-01-{code}-01-01-01-09.wav", tone(390 + 200 * i, 16000, 0.5))
    return root


def _small_cfg(**kw):
    base = dict(sr_hz=8000, n_channels=8, n_hidden=16, max_epochs=2, smooth_epochs=1,
                grid_window=("start",), grid_norm=("clip_std", "train_rms"), grid_shift_s=(0.0,), val_seeds=(0,), seeds=(0, 1),
                speaker_norm_windows=())
    return dataclasses.replace(Cnn1dConfig(), **{**base, **SMALL, **kw})


def _record_fits(monkeypatch):
    """Wrap ``cnn1d.learner`` so that every fit's inputs and returned state are kept."""
    from ser.models.protocol import Learner

    seen, real = [], cnn1d.learner

    def recording(cfg, n_classes):
        lrn = real(cfg, n_classes)

        def fit(params, x, y, **kw):
            trained, hist = lrn.fit(params, x, y, **kw)
            seen.append({"params": params, "x": np.array(x), "x_val": kw.get("x_val"), "epochs": kw["epochs"],
                         "state": dict(trained.state)})
            return trained, hist

        return Learner(fit=fit, predict=lrn.predict)

    monkeypatch.setattr(cnn1d, "learner", recording)
    return seen


def test_run_cnn1d_end_to_end(tiny_dataset, tmp_path, monkeypatch):
    from ser.data.dataset import list_clips, split_clips
    from ser.metrics import confusion
    from ser.pipeline import save_network

    clips = list_clips(_with_confirm(tiny_dataset))
    cfg = _small_cfg()
    seen = _record_fits(monkeypatch)
    lines = []
    res, trained = cnn1d.run_cnn1d(clips, cfg, eval_splits=("Test", "Confirm"), log=lines.append)
    json.dumps(res)  # plain data

    # validation: two candidates, leave-one-speaker-out over speakers 1 and 2
    val = res["validation"]
    assert list(val["candidates"]) == ["window at start, clip_std, shift ±0 s", "window at start, train_rms, shift ±0 s"]
    assert val["folds"] == ["1", "2"] and res["chosen"] == val["chosen"] in val["candidates"]
    for c in val["candidates"].values():
        assert len(c["mean_val_acc"]) == 2 and len(c["histories"]) == 2
        assert 1 <= c["epochs"] <= 2
    # final models: the chosen candidate only, for its epochs, one per seed
    assert list(res["models"]) == list(trained) == [res["chosen"]]
    m = res["models"][res["chosen"]]
    assert m["epochs"] == val["candidates"][res["chosen"]]["epochs"] and m["seeds"] == [0, 1]
    for h in m["train_histories"]:
        assert len(h["train_acc"]) == m["epochs"] and h["val_acc"] == []
    assert res["input"]["n_samples"] == 21 * 120 and any("chose" in s for s in lines)
    assert set(res["timings_s"]) >= {"load_train", "validation", "final_training", "evaluation", "total"}

    # every evaluation split given is scored, and no fit ever saw one of its clips
    assert list(m["splits"]) == list(res["predictions"][res["chosen"]]) == ["Test", "Confirm"]
    kw = dict(n_frames=cfg.n_frames, hop_s=cfg.hop_s, sr_hz=cfg.sr_hz, window=tuple(cfg.grid_window))
    held = {s: split_clips(clips, s) for s in ("Test", "Confirm")}
    x_eval = {s: cnn1d.load_waveforms([c.path for c in cs], **kw) for s, cs in held.items()}
    eval_rows = {row.tobytes() for x in x_eval.values() for row in x}
    assert len(eval_rows) == 12  # every evaluation clip differs from the others and from the training clips
    train_rows = {row.tobytes() for row in cnn1d.load_waveforms([c.path for c in split_clips(clips, "Train")], **kw)}
    assert len(train_rows) == 8 and not train_rows & eval_rows
    assert len(seen) == 2 * 2 + 2  # validation runs, then the final seeds
    for f in seen:
        rows = list(f["x"]) + (list(f["x_val"]) if f["x_val"] is not None else [])
        assert all(r.tobytes() in train_rows and r.tobytes() not in eval_rows for r in rows)
        if f["params"]["norm"] == "train_rms":  # the scale of exactly the rows fitted on
            assert f["state"]["train_rms_scale"] == pytest.approx(cnn1d.fit_scale(f["x"]), rel=1e-12)

    # per clip predictions, confusion matrices and the ensemble agree
    lrn = cnn1d.learner(cfg, 4)
    for s, cs in held.items():
        ev, p = m["splits"][s], res["predictions"][res["chosen"]][s]
        assert ev["n"] == len(cs) and p["keys"] == [c.key for c in cs] and p["speakers"] == [c.speaker for c in cs]
        assert p["y_true"] == [c.label for c in cs]
        for r in ev["per_seed"]:
            assert r["confusion"] == confusion(p["y_true"], p["pred_per_seed"][str(r["seed"])], 4).tolist()
        assert ev["summary"]["per_seed"] == [r["accuracy"] for r in ev["per_seed"]]
        assert ev["pooled"]["n"] == 2 * len(cs)
        assert ev["pooled"]["confusion"] == np.sum([r["confusion"] for r in ev["per_seed"]], axis=0).tolist()
        probs = [lrn.predict(t, m["params"], x_eval[s]) for t in trained[res["chosen"]]]
        for seed, pr in zip(m["seeds"], probs):
            assert p["pred_per_seed"][str(seed)] == pr.argmax(1).tolist()
        mean = np.mean(probs, axis=0)
        assert p["ensemble_pred"] == mean.argmax(1).tolist()
        assert ev["ensemble"]["confusion"] == confusion(p["y_true"], p["ensemble_pred"], 4).tolist()
        assert ev["ensemble"]["accuracy"] == np.mean(mean.argmax(1) == np.array(p["y_true"]))
        np.testing.assert_allclose(p["ensemble_proba"], mean, atol=1e-6)

    # checkpoints: state dicts that load back into the same network
    save_network(res, trained, tmp_path / "models", "cnn1d", tmp_path / "r" / "cnn1d.json")
    on_disk = json.loads((tmp_path / "r" / "cnn1d.json").read_text())
    assert on_disk == {"schema": results.FILES["cnn1d"].stamp, **json.loads(json.dumps(res))}  # stamped by ser.results
    paths = on_disk["models"][res["chosen"]]["checkpoints"]
    assert len(paths) == 2
    inp = torch.from_numpy(cnn1d.normalise(x_eval["Test"][:, 0], m["params"]["norm"],
                                           scale=m["states"][0]["train_rms_scale"])).unsqueeze(1)
    again = cnn1d.load_model(paths[0], cfg, n_classes=4)
    net = trained[res["chosen"]][0].model.eval()
    with torch.no_grad():
        assert torch.equal(net(inp), again(inp))


def test_run_cnn1d_refuses_shared_speaker(tiny_dataset):
    import shutil

    from ser.data.dataset import list_clips

    src = tiny_dataset / "Test" / "Angry" / "03-01-05-01-01-01-05.wav"
    shutil.copy(src, tiny_dataset / "Test" / "Angry" / "03-01-05-01-01-02-01.wav")
    with pytest.raises(DataError, match="both Train and Test"):
        cfg = _small_cfg(max_epochs=1, seeds=(0,), grid_norm=("clip_std",))
        cnn1d.run_cnn1d(list_clips(tiny_dataset), cfg, log=lambda s: None)


def test_learning_curve_plot():
    from ser.report.plots import curve_stats, plot_learning_curves

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


def test_candidates_are_the_grid_of_windows_normalisations_and_shifts():
    cfg = dataclasses.replace(Cnn1dConfig(), grid_window=("start", "onset"), grid_norm=("spec", "train_rms"),
                              grid_shift_s=(0.0, 0.25), speaker_norm_windows=())
    c = cnn1d.candidates(cfg)
    assert len(c) == 8 and list(c)[:2] == ["window at start, spec, shift ±0 s", "window at start, spec, shift ±0.25 s"]
    assert c["window at onset, train_rms, shift ±0.25 s"] == {"window": "onset", "norm": "train_rms", "shift_s": 0.25}


def test_onset_window_skips_the_leading_silence(tmp_path):
    sr = 8000
    y = np.concatenate([np.zeros(sr // 2), 0.5 * np.ones(sr)]).astype(np.float32)
    path = write_wav(tmp_path / "c.wav", y, sr)
    both = cnn1d.load_waveform(path, n_frames=10, hop_s=0.015, window=("start", "onset"))
    start, onset = both
    assert both.shape == (2, 11 * 120)
    assert np.all(start[: sr // 2 - 10] == 0) and np.all(start[sr // 2:] > 0.4)
    lead = np.flatnonzero(onset > 0.4)[0]  # the margin (0.1 s) of silence, within one 10 ms hop
    assert abs(lead - 0.1 * sr) <= 0.01 * sr + 1

"""2D CNN (section 3.2): model, learner, protocol run (the augmentations: test_augment.py)."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ser.models import augment as A  # noqa: E402
from ser.models.cnn2d import build_model, candidates, learner, load_checkpoint, load_images, run_cnn2d  # noqa: E402
from ser.config import CONFIG  # noqa: E402


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_model_shapes_and_dropout():
    m = build_model(4, widths=(4, 8), dropout=0.5)
    assert m(torch.zeros(3, 1, 150, 50)).shape == (3, 4)
    assert any(isinstance(l, torch.nn.Dropout) for l in m.modules())


def _toy(n=32, seed=0):
    """Class 0: bright top half; class 1: bright bottom half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.3 * torch.randn(n, 1, 16, 8, generator=g)
    x[y == 0, :, :8] += 1
    x[y == 1, :, 8:] += 1
    return x, y.long()


def _cfg(**kw):
    return dataclasses.replace(CONFIG.cnn2d, **{"widths": (4, 8), "batch_size": 8, "lr": 1e-2, "head": "gap",
                                                "coord": False, "speaker_norm": (), **kw})


def test_frequency_head_and_coordinate_channel():
    from ser.models.cnn2d import Cnn2d

    x = torch.zeros(3, 1, 150, 50)
    gap, freq = Cnn2d(4, widths=(4, 8, 8)), Cnn2d(4, widths=(4, 8, 8), head="freq", coord=True, in_height=150)
    assert gap(x).shape == freq(x).shape == (3, 4)
    assert freq.classifier.in_features == 8 * 37 and gap.classifier.in_features == 8  # 150 -> 75 -> 37 rows
    assert freq.features[0].in_channels == 2
    assert torch.equal(freq.coord_ch[0, 0, [0, -1], 0], torch.tensor([1.0, -1.0]))
    # the same pattern at the top or the bottom of the image: only the frequency head can tell them apart
    top, bottom = torch.zeros(1, 1, 150, 50), torch.zeros(1, 1, 150, 50)
    top[..., 10:20, :], bottom[..., 130:140, :] = 1.0, 1.0
    for net in (gap, freq):
        net.eval()
    torch.manual_seed(0)
    plain = Cnn2d(4, widths=(4, 8, 8), head="freq", in_height=150).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(top), plain(bottom))
    with pytest.raises(ValueError, match="head"):
        Cnn2d(4, head="max")


def _fit(x, y, spec, *, seed, epochs=6):
    params = dataclasses.asdict(spec)
    return learner(_cfg(), 2).fit(params, x.numpy(), y.numpy(), seed=seed, epochs=epochs, log=lambda s: None)


def test_training_lowers_the_loss_and_is_deterministic():
    x, y = _toy()
    spec = A.AugmentSpec(name="spectrogram", time_mask_cols=2, mixup_alpha=0.4)
    (t1, h1), (t2, h2) = [_fit(x, y, spec, seed=7) for _ in range(2)]
    assert h1["train_loss"][-1] < h1["train_loss"][0]
    assert h1["train_loss"] == h2["train_loss"]
    for a, b in zip(t1.model.state_dict().values(), t2.model.state_dict().values()):
        assert torch.equal(a, b)
    _, h3 = _fit(x, y, spec, seed=8)
    assert h3["train_loss"] != h1["train_loss"]


def test_candidates_are_the_augmentation_settings():
    c = candidates(dataclasses.replace(CONFIG.cnn2d, speaker_norm=()))
    assert list(c) == ["none", "image", "spectrogram"]
    assert c == {name: dict(fields) for name, fields in CONFIG.cnn2d.augmentations}  # no "input" key: as before
    assert c["none"] == {} and c["spectrogram"]["mixup_alpha"] == 0.4
    for params in c.values():
        A.AugmentSpec(**params)  # every setting names real fields


def test_speaker_norm_adds_one_candidate_per_named_setting():
    from ser.errors import ConfigError

    raw = candidates(dataclasses.replace(CONFIG.cnn2d, speaker_norm=()))
    c = candidates(dataclasses.replace(CONFIG.cnn2d, speaker_norm=("spectrogram",)))
    assert list(c) == ["none", "image", "spectrogram", "spectrogram, speaker-normalised"]
    assert {k: v for k, v in c.items() if k in raw} == raw
    assert c["spectrogram, speaker-normalised"] == {**raw["spectrogram"], "input": "speaker"}
    with pytest.raises(ConfigError, match="'bogus'"):
        candidates(dataclasses.replace(CONFIG.cnn2d, speaker_norm=("bogus",)))


def _image_tree(root, n_per=2, splits=(("Train", (1, 2, 3)), ("Test", (5,)))):
    """PNG tree: 2 classes, speakers 1-3 in Train and 5 in Test."""
    import cv2

    rng = np.random.default_rng(0)
    for split, speakers in splits:
        for label, (name, code) in enumerate((("Angry", "05"), ("Calm", "02"))):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for a in speakers:
                for k in range(n_per):
                    img = rng.integers(0, 60, size=(30, 20)).astype(np.uint8)
                    img[label * 15:(label + 1) * 15] += 180
                    cv2.imwrite(str(d / f"03-01-{code}-01-01-0{k + 1}-{a:02d}.png"), img)


def _records(root, splits=("Train", "Test")):
    """The manifest records of an image tree (with the speaker-normalised images when written)."""
    from ser.data.dataset import image_records

    out = []
    for split in splits:
        recs = image_records(root, split)
        if (root / "speaker_norm" / split).is_dir():
            for r, q in zip(recs, image_records(root / "speaker_norm", split)):
                assert r["key"] == q["key"]
                r["path_speaker"] = q["path"]
        out += recs
    return out


@pytest.mark.slow
def test_run_cnn2d_end_to_end(tmp_path):
    from ser.data.dataset import image_records
    from ser.metrics import confusion
    from ser.pipeline import save_network

    _image_tree(tmp_path / "img", splits=(("Train", (1, 2, 3)), ("Test", (5,)), ("Confirm", (9, 10))))
    cfg = _cfg(size_hw=(16, 8), max_epochs=2, smooth_epochs=1, seeds=(0, 1))
    res, trained = run_cnn2d(_records(tmp_path / "img", ("Train", "Test", "Confirm")), cfg,
                             classes=["Angry", "Calm"], eval_splits=("Test", "Confirm"))
    json.dumps(res)  # plain data
    assert res["classes"] == ["Angry", "Calm"] and res["validation"]["folds"] == ["1", "2", "3"]
    assert res["validation"]["scheme"] == "leave-one-speaker-out" and res["validation"]["n_folds"] == 3
    names = ["none", "image", "spectrogram"]
    assert list(res["validation"]["candidates"]) == names and res["chosen"] in names
    # every setting is trained to the end (the augmentation experiment compares them)
    assert list(res["models"]) == list(trained) == names
    lrn = learner(cfg, 2)
    for name in names:
        v, m = res["validation"]["candidates"][name], res["models"][name]
        assert len(v["per_fold"]) == 3 * len(cfg.val_seeds) and len(v["mean_val_acc"]) == 2
        assert m["epochs"] == v["epochs"] and 1 <= m["epochs"] <= 2
        assert [len(h["train_loss"]) for h in m["train_histories"]] == [m["epochs"]] * 2
        assert all(h["val_loss"] == [] for h in m["train_histories"])
        assert list(m["splits"]) == ["Test", "Confirm"]
        for split, n in (("Test", 4), ("Confirm", 8)):
            ev, p = m["splits"][split], res["predictions"][name][split]
            recs = image_records(tmp_path / "img", split)
            assert ev["n"] == n and p["keys"] == [r["key"] for r in recs]
            assert sorted(ev["per_speaker"]["ensemble"]) == sorted({str(r["speaker"]) for r in recs})
            for r in ev["per_seed"]:
                assert r["confusion"] == confusion(p["y_true"], p["pred_per_seed"][str(r["seed"])], 2).tolist()
            x, _ = load_images(recs, cfg)
            mean = np.mean([lrn.predict(t, m["params"], x) for t in trained[name]], axis=0)
            assert p["ensemble_pred"] == mean.argmax(1).tolist()
            assert ev["ensemble"]["confusion"] == confusion(p["y_true"], p["ensemble_pred"], 2).tolist()
            assert ev["ensemble"]["accuracy"] == np.mean(mean.argmax(1) == np.array(p["y_true"]))
    save_network(res, trained, tmp_path / "models", "cnn2d", tmp_path / "cnn2d.json")
    for name in names:
        paths = json.loads((tmp_path / "cnn2d.json").read_text())["models"][name]["checkpoints"]
        assert len(paths) == 2
        m = load_checkpoint(paths[1], cfg, n_classes=2)
        inp = torch.randn(3, 1, 16, 8, generator=_gen())
        with torch.no_grad():
            assert torch.equal(m(inp), trained[name][1].model.eval()(inp))


def test_learner_reads_the_candidates_channel():
    """Inputs stacked as (raw, speaker): a speaker candidate trains and predicts
    exactly as the raw learner does on channel 1 alone, a raw one on channel 0."""
    from ser.errors import DataError

    x, y = _toy(n=16)
    noise = torch.randn(x.shape, generator=_gen(3))
    x2 = torch.cat([noise, x], dim=1).numpy()
    lrn, quiet = learner(_cfg(), 2), (lambda s: None)
    runs = {}
    for key, params, xin in (("spk", {"input": "speaker"}, x2), ("ref", {}, x.numpy()),
                             ("raw", {"input": "raw"}, x2), ("noise", {}, noise.numpy())):
        runs[key] = lrn.fit(params, xin, y.numpy(), seed=1, epochs=2, x_val=xin[:6], y_val=y.numpy()[:6], log=quiet)
    for a, b in (("spk", "ref"), ("raw", "noise")):
        assert runs[a][1]["train_loss"] == runs[b][1]["train_loss"]
        assert runs[a][1]["val_loss"] == runs[b][1]["val_loss"]
    assert runs["spk"][1]["train_loss"] != runs["raw"][1]["train_loss"]
    t = runs["spk"][0]
    assert np.array_equal(lrn.predict(t, {"input": "speaker"}, x2), lrn.predict(t, {}, x.numpy()))
    assert not np.allclose(lrn.predict(t, {"input": "speaker"}, x2), lrn.predict(t, {}, noise.numpy()))
    with pytest.raises(DataError, match="'speaker' input"):
        lrn.predict(t, {"input": "speaker"}, x.numpy())  # the raw images alone


def _speaker_tree(root):
    """``root/speaker_norm``: each image of ``root``'s tree, inverted (so that the
    two inputs differ)."""
    import cv2

    for p in sorted(root.glob("*/*/*.png")):
        q = root / "speaker_norm" / p.relative_to(root)
        q.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(q), 255 - cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))


def test_run_cnn2d_with_a_speaker_normalised_candidate(tmp_path):
    from ser.data.dataset import image_records
    from ser.errors import DataError

    _image_tree(tmp_path / "img", n_per=1, splits=(("Train", (1, 2)), ("Test", (5,))))
    cfg = _cfg(size_hw=(16, 8), max_epochs=2, smooth_epochs=1, val_seeds=(0,), seeds=(0,),
               augmentations=(("none", ()),))
    spk_cfg = dataclasses.replace(cfg, speaker_norm=("none",))
    classes = ["Angry", "Calm"]
    with pytest.raises(DataError, match="no speaker-normalised image"):
        run_cnn2d(_records(tmp_path / "img"), spk_cfg, classes=classes)
    _speaker_tree(tmp_path / "img")
    base, _ = run_cnn2d(_records(tmp_path / "img"), cfg, classes=classes)
    res, trained = run_cnn2d(_records(tmp_path / "img"), spk_cfg, classes=classes)
    assert list(res["validation"]["candidates"]) == list(res["models"]) == ["none", "none, speaker-normalised"]
    assert res["input"]["speaker_norm"] == {"none": False, "none, speaker-normalised": True}
    assert base["input"]["speaker_norm"] == {"none": False}
    # the raw candidate is untouched by the extra one
    assert res["validation"]["candidates"]["none"]["mean_val_acc"] == base["validation"]["candidates"]["none"][
        "mean_val_acc"]
    assert res["predictions"]["none"] == base["predictions"]["none"]
    # the speaker candidate was scored on the speaker images
    x, _ = load_images(image_records(tmp_path / "img" / "speaker_norm", "Test"), cfg)
    probs = learner(cfg, 2).predict(trained["none, speaker-normalised"][0], {}, x)
    pred = res["predictions"]["none, speaker-normalised"]["Test"]
    assert pred["ensemble_pred"] == probs.argmax(1).tolist()
    np.testing.assert_allclose(pred["ensemble_proba"], probs, atol=1e-5)


def test_run_cnn2d_needs_every_training_speaker(tmp_path):
    from ser.errors import DataError

    _image_tree(tmp_path / "img", n_per=1)
    (tmp_path / "img" / "Train" / "Calm" / "clip.png").write_bytes(
        (tmp_path / "img" / "Train" / "Calm" / "03-01-02-01-01-01-01.png").read_bytes())
    with pytest.raises(DataError, match="clip.png: no speaker known for this training clip"):
        run_cnn2d(_records(tmp_path / "img"), _cfg(size_hw=(16, 8)), classes=["Angry", "Calm"])

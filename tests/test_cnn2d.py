"""2D CNN (section 3.2): augmentations, model, training, protocol."""
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ser import augment as A  # noqa: E402
from ser.cnn2d import build_model, image_records, load_checkpoint, run_cnn2d, train_one  # noqa: E402
from ser.config import CONFIG  # noqa: E402


def _batch(n=4, h=12, w=10, seed=0):
    return torch.randn(n, 1, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_vflip_reverses_frequency_rows_and_hflip_time():
    x = _batch()
    assert torch.equal(A.vflip(x, _gen(), p=1.0), torch.flip(x, dims=[2]))
    assert torch.equal(A.hflip(x, _gen(), p=1.0), torch.flip(x, dims=[3]))
    assert torch.equal(A.vflip(x, _gen(), p=0.0), x)


def test_time_shift_is_a_roll():
    x = _batch(n=1)
    out = A.time_shift(x, _gen(3), max_cols=3)
    assert any(torch.equal(out, torch.roll(x, s, dims=-1)) for s in range(-3, 4))


@pytest.mark.parametrize("fn, axis", [(A.time_mask, "time"), (A.freq_mask, "freq")])
def test_masks_set_one_band_to_the_image_mean(fn, axis):
    x = _batch(n=8)
    out = fn(x, _gen(1), 4)
    assert out.shape == x.shape
    n_masked = 0
    for i in range(len(x)):
        diff = out[i, 0] != x[i, 0]
        band = diff.any(dim=0) if axis == "time" else diff.any(dim=1)  # columns / rows touched
        idx = torch.nonzero(band).flatten()
        assert len(idx) <= 4
        if len(idx):
            n_masked += 1
            assert int(idx.max() - idx.min()) + 1 == len(idx)  # one contiguous band
            vals = out[i, 0][:, idx] if axis == "time" else out[i, 0][idx]
            assert torch.allclose(vals, x[i].mean().expand_as(vals))
    assert n_masked > 0


def test_offset_adds_one_constant_per_image():
    x = _batch()
    d = A.offset(x, _gen(), 0.1) - x
    assert torch.allclose(d, d[:, :1, :1, :1].expand_as(d), atol=1e-6)
    assert d.abs().max() <= 0.1


def test_random_crop_and_rotate_keep_shape():
    x = _batch()
    c = A.random_crop(x, _gen(), pad=2)
    r = A.rotate(x, _gen(), 10.0)
    assert c.shape == r.shape == x.shape
    assert torch.allclose(A.rotate(x, _gen(), 0.0), x)
    # a crop is a window of the padded image, shifted by at most 2 pixels
    p = torch.nn.functional.pad(x[0, 0], (2, 2, 2, 2), value=float(x[0].min()))
    assert any(torch.allclose(c[0, 0], p[dy:dy + 12, dx:dx + 10], atol=1e-6) for dy in range(5) for dx in range(5))


def test_mixup_mixes_inputs_and_targets_alike():
    x = _batch(n=6)
    y = torch.nn.functional.one_hot(torch.arange(6) % 4, 4).float()
    xm, ym = A.mixup(x, y, _gen(), 0.4)
    assert xm.shape == x.shape and ym.shape == y.shape
    assert torch.allclose(ym.sum(1), torch.ones(6))
    assert (ym.max(1).values >= 0.5 - 1e-6).all()


def test_augmentations_do_not_modify_input():
    x = _batch()
    x0 = x.clone()
    aug = A.make_augment(A.AugmentSpec(hflip_p=1, vflip_p=1, rotate_deg=5, crop_pad=2, shift_cols=2,
                                       time_mask_cols=2, freq_mask_rows=2, offset=0.1))
    out = aug(x, _gen())
    assert torch.equal(x, x0) and out.shape == x.shape
    assert A.make_augment(A.AugmentSpec()) is None


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
    return dataclasses.replace(CONFIG.cnn2d, widths=(4, 8), batch_size=8, lr=1e-2, **kw)


def test_training_lowers_the_loss_and_is_deterministic():
    x, y = _toy()
    spec = A.AugmentSpec(name="spectrogram", time_mask_cols=2, mixup_alpha=0.4)
    runs = [train_one(x, y, _cfg(), spec=spec, epochs=6, seed=7, n_classes=2, log=lambda s: None)
            for _ in range(2)]
    (m1, h1), (m2, h2) = runs
    assert h1["train_loss"][-1] < h1["train_loss"][0]
    assert h1["train_loss"] == h2["train_loss"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, h3 = train_one(x, y, _cfg(), spec=spec, epochs=6, seed=8, n_classes=2, log=lambda s: None)
    assert h3["train_loss"] != h1["train_loss"]


def _image_tree(root, n_per=2):
    """PNG tree: 2 classes, actors 1-3 in Train and 5 in Test."""
    import cv2

    rng = np.random.default_rng(0)
    for split, actors in (("Train", (1, 2, 3)), ("Test", (5,))):
        for label, (name, code) in enumerate((("Angry", "05"), ("Calm", "02"))):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for a in actors:
                for k in range(n_per):
                    img = rng.integers(0, 60, size=(30, 20)).astype(np.uint8)
                    img[label * 15:(label + 1) * 15] += 180
                    cv2.imwrite(str(d / f"03-01-{code}-01-01-0{k + 1}-{a:02d}.png"), img)


@pytest.mark.slow
def test_run_cnn2d_end_to_end(tmp_path):
    _image_tree(tmp_path / "img")
    cfg = _cfg(size_hw=(16, 8), max_epochs=3, smooth_epochs=1, seeds=(0, 1))
    res = run_cnn2d(tmp_path / "img", tmp_path / "out", cfg=cfg)
    json.dumps(res)  # serialisable
    assert res["classes"] == ["Angry", "Calm"] and res["train_actors"] == [1, 2, 3] and res["test_actors"] == [5]
    assert set(res["settings"]) == {"none", "image", "spectrogram"}
    assert res["chosen"] in res["settings"]
    for name, s in res["settings"].items():
        v = res["validation"]["candidates"][name]
        assert len(v["folds"]) == 3 and len(v["mean_val_acc"]) == 3
        assert 1 <= s["epochs"] <= 3 and len(s["test_acc_per_seed"]) == 2
        assert s["test_ensemble"]["n"] == 4 and s["test_pooled"]["n"] == 8
        for h in s["train_histories"]:
            assert len(h["train_loss"]) == s["epochs"] and h["val_loss"] == []
            m = load_checkpoint(h["checkpoint"], cfg, n_classes=2)
            assert m(torch.zeros(1, 1, 16, 8)).shape == (1, 2)


def test_image_records_reads_actor_and_labels(tmp_path):
    _image_tree(tmp_path, n_per=1)
    recs = image_records(tmp_path, "Train")
    assert [r["label"] for r in recs] == [0, 0, 0, 1, 1, 1]
    assert [r["actor"] for r in recs] == [1, 2, 3, 1, 2, 3]

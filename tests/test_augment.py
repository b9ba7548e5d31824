"""Batch augmentations of both networks (ser/models/augment.py): image-style, spectrogram-aware
and waveform transforms, and the callbacks built from an AugmentSpec."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ser.models import augment as A  # noqa: E402


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
    n = 8
    x = _batch(n=n)
    y = torch.eye(n)  # one class per example: the mixed targets show lam and the partner
    xm, ym = A.mixup(x, y, _gen(), 0.4)
    assert xm.shape == x.shape and ym.shape == y.shape
    assert torch.allclose(ym.sum(1), torch.ones(n))
    assert (ym.max(1).values >= 0.5 - 1e-6).all()
    n_mixed = 0
    for i in range(n):
        lam = float(ym[i, i])  # the example's own weight (1 when paired with itself)
        others = [j for j in range(n) if j != i and ym[i, j] > 0]
        j = others[0] if others else i
        assert len(others) <= 1 and lam >= 0.5 - 1e-6
        assert torch.allclose(xm[i], lam * x[i] + (1 - lam) * x[j], atol=1e-6)
        if lam < 1 - 1e-3 and j != i:
            n_mixed += 1
            assert not torch.allclose(xm[i], x[i], atol=1e-3)
    assert n_mixed >= n // 2


def test_mix_callback_follows_the_spec():
    assert A.make_mix(A.AugmentSpec()) is None
    mix = A.make_mix(A.AugmentSpec(mixup_alpha=0.4))
    x, y = _batch(n=4), torch.eye(4)
    xm, ym = mix(x, y, _gen(5))
    xr, yr = A.mixup(x, y, _gen(5), 0.4)
    assert torch.equal(xm, xr) and torch.equal(ym, yr) and not torch.equal(ym, y)
    with pytest.raises(Exception, match="mixup_alpha"):
        A.make_augment(A.AugmentSpec(mixup_alpha=-1))


def _blob_centre(img):
    w = (img - img.min()).clamp(min=0)
    rows, cols = torch.meshgrid(torch.arange(img.shape[0], dtype=torch.float32),
                                torch.arange(img.shape[1], dtype=torch.float32), indexing="ij")
    return float((w * rows).sum() / w.sum()), float((w * cols).sum() / w.sum())


@pytest.mark.parametrize("h, w", [(21, 21), (21, 41), (41, 21)])
def test_rotation_moves_a_known_pixel_around_the_centre(h, w):
    """A bright 3x3 blob 7 pixels right of the centre, turned by the angle
    rotate draws: it moves along the circle of radius 7 (in pixels, whatever
    the aspect ratio) by that angle."""
    x = torch.zeros(4, 1, h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r0, c0 = int(cy), int(cx) + 7
    x[:, 0, r0 - 1:r0 + 2, c0 - 1:c0 + 2] = 1.0
    seed = 11
    angles = (A._uniform(4, _gen(seed), -90, 90)).tolist()  # the angles rotate draws from the same generator
    out = A.rotate(x, _gen(seed), 90.0)
    assert not torch.allclose(out, x, atol=1e-3)  # an asymmetric image changes
    turned = 0
    for k, a in enumerate(angles):
        r, c = _blob_centre(out[k, 0])
        dy, dx = r - cy, c - cx
        assert np.hypot(dy, dx) == pytest.approx(7.0, abs=0.3)
        got = np.degrees(np.arctan2(-dy, dx))  # counter-clockwise on screen
        assert abs(got) == pytest.approx(abs(a), abs=3.0)
        if abs(a) > 30:
            turned += 1
            assert float(out[k, 0, r0, c0]) < 0.5  # the pixel is gone from where it was
    assert turned >= 1


def test_augmentations_do_not_modify_input():
    x = _batch()
    x0 = x.clone()
    aug = A.make_augment(A.AugmentSpec(hflip_p=1, vflip_p=1, rotate_deg=5, crop_pad=2, shift_cols=2,
                                       time_mask_cols=2, freq_mask_rows=2, offset=0.1))
    out = aug(x, _gen())
    assert torch.equal(x, x0) and out.shape == x.shape
    assert A.make_augment(A.AugmentSpec()) is None


def test_augment_shift_and_gain():
    x = torch.arange(1, 11, dtype=torch.float32).view(1, 1, 10).repeat(50, 1, 1)
    aug = A.make_augment(A.AugmentSpec(shift_samples=3))
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for row in out[:, 0]:
        nz = row[row != 0]
        # a shifted copy: consecutive values, at most 3 lost, zeros fill the rest
        assert len(nz) >= 7 and torch.all(torch.diff(nz) == 1)
    assert A.make_augment(A.AugmentSpec()) is None
    g = A.make_augment(A.AugmentSpec(gain_db=6))(x, torch.Generator().manual_seed(0))
    ratio = (g / x)[:, 0, 0]
    assert torch.all(ratio >= 10 ** (-6 / 20) - 1e-6) and torch.all(ratio <= 10 ** (6 / 20) + 1e-6)

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


# ------------------------------------------------------------------ SpecAugment masks

def _masked(x, out):
    """Per image, the [n_freq, n_time] entries an augmentation changed."""
    return (out != x)[:, 0]


@pytest.mark.parametrize("n_masks", [1, 2])
@pytest.mark.parametrize("fn, max_w, axis", [(A.freq_mask, 3, "rows"), (A.time_mask, 2, "columns")])
def test_freq_mask_sets_whole_rows_and_time_mask_whole_columns(fn, max_w, axis, n_masks):
    """Over 300 images of 8 x 6: a frequency mask changes whole rows (every
    column of a row, never part of one), a time mask whole columns, to the
    image's own mean; each band holds 0..max lines, inside the image, and
    every width and both edges occur."""
    x = _batch(n=300, h=8, w=6, seed=2)
    out = fn(x, _gen(4), max_w, n_masks)
    m = _masked(x, out)  # [n, rows, columns]
    lines = m.any(dim=2) if axis == "rows" else m.any(dim=1)  # the rows / columns with a change
    for i in range(len(x)):
        whole = lines[i].view(-1, 1).expand_as(m[i]) if axis == "rows" else lines[i].view(1, -1).expand_as(m[i])
        assert torch.equal(m[i], whole)  # every entry of a touched line, nothing else
        band = torch.nonzero(lines[i]).flatten()
        if len(band):
            vals = out[i, 0][band] if axis == "rows" else out[i, 0][:, band]
            assert torch.allclose(vals, x[i].mean().expand_as(vals))
    widths = lines.sum(1)
    assert int(widths.max()) <= n_masks * max_w
    if n_masks == 1:
        assert set(widths.tolist()) == set(range(max_w + 1))  # 0 .. max, each drawn
        assert lines[:, 0].any() and lines[:, -1].any()  # bands reach both edges
        for i in range(len(x)):  # one contiguous band
            band = torch.nonzero(lines[i]).flatten()
            assert len(band) == 0 or int(band[-1] - band[0]) + 1 == len(band)
    else:
        assert int(widths.max()) > max_w  # two bands can cover more than one


def test_a_mask_of_width_zero_changes_nothing():
    x = _batch(n=20)
    assert torch.equal(A.freq_mask(x, _gen(), 0), x) and torch.equal(A.time_mask(x, _gen(), 0), x)


def test_masks_are_drawn_from_the_generator():
    x = _batch(n=16, h=20, w=20)
    for fn in (A.freq_mask, A.time_mask):
        assert torch.equal(fn(x, _gen(3), 6), fn(x, _gen(3), 6))
        assert not torch.equal(fn(x, _gen(3), 6), fn(x, _gen(4), 6))


# ------------------------------------------------------------------ image-style and shifts

def test_flips_happen_with_probability_p_per_image():
    x = _batch(n=400, h=4, w=4)
    for fn, dim in ((A.hflip, 3), (A.vflip, 2)):
        out = fn(x, _gen(1), p=0.25)
        flipped = torch.tensor([torch.equal(o, torch.flip(xi, dims=[dim - 1])) for o, xi in zip(out, x)])
        kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
        assert bool((flipped | kept).all())
        assert float(flipped.float().mean()) == pytest.approx(0.25, abs=0.06)
        assert torch.equal(fn(x, _gen(1), p=0.0), x)


def test_time_shift_rolls_each_image_by_its_own_amount_within_bounds():
    x = _batch(n=200, h=3, w=16)
    out = A.time_shift(x, _gen(5), max_cols=3)
    shifts = []
    for o, xi in zip(out, x):
        s = [k for k in range(-8, 8) if torch.equal(o, torch.roll(xi, k, dims=-1))]
        assert len(s) == 1
        shifts.append(s[0])
    assert set(shifts) == set(range(-3, 4))  # every shift in [-3, 3] occurs, none beyond
    assert torch.equal(A.time_shift(x, _gen(5), max_cols=0), x)


def test_random_crop_is_a_window_of_the_padded_image_at_every_offset():
    x = _batch(n=200, h=5, w=4)
    out = A.random_crop(x, _gen(2), pad=1)
    offsets = set()
    for o, xi in zip(out, x):
        p = torch.nn.functional.pad(xi[0], (1, 1, 1, 1), value=float(xi.min()))
        hits = [(dy, dx) for dy in range(3) for dx in range(3) if torch.allclose(o[0], p[dy:dy + 5, dx:dx + 4], atol=1e-6)]
        assert hits
        offsets.add(hits[0])
    assert offsets == {(dy, dx) for dy in range(3) for dx in range(3)}
    assert torch.equal(A.random_crop(x, _gen(), pad=0), x)


def test_offset_and_gain_are_uniform_within_their_bounds_per_example():
    x = _batch(n=500, h=2, w=3).abs() + 0.5
    d = (A.offset(x, _gen(6), 0.2) - x)[:, 0, 0, 0]
    assert float(d.min()) >= -0.2 and float(d.max()) <= 0.2
    assert float(d.min()) < -0.18 and float(d.max()) > 0.18  # the whole range is used
    g = A.gain(x, _gen(6), 6.0) / x
    assert torch.allclose(g, g[:, :1, :1, :1].expand_as(g), rtol=1e-5)  # one factor per example
    db = 20 * torch.log10(g[:, 0, 0, 0])
    assert float(db.min()) >= -6.0 - 1e-4 and float(db.max()) <= 6.0 + 1e-4
    assert float(db.min()) < -5.5 and float(db.max()) > 5.5 and abs(float(db.mean())) < 0.6  # uniform in dB
    assert torch.equal(A.gain(x, _gen(), 0.0), x)


# ------------------------------------------------------------------ waveforms

def test_shift_waves_known_answer():
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 1, 6).repeat(4, 1, 1)
    out = A.shift_waves(x, [2, -3, 0, 6])
    assert out[:, 0].tolist() == [[0, 0, 1, 2, 3, 4], [4, 5, 6, 0, 0, 0], [1, 2, 3, 4, 5, 6], [0] * 6]


def test_wave_shift_draws_each_shift_within_bounds():
    x = torch.arange(1, 21, dtype=torch.float32).view(1, 1, 20).repeat(300, 1, 1)
    out = A.wave_shift(x, _gen(7), 3)
    seen = set()
    for row in out[:, 0]:
        s = [k for k in range(-5, 6) if torch.equal(row, A.shift_waves(x[:1], [k])[0, 0])]
        assert len(s) == 1
        seen.add(s[0])
    assert seen == set(range(-3, 4))


def test_speed_perturb_known_answers():
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 8).repeat(3, 1, 1)
    out = A.speed_perturb(x, torch.tensor([1.0, 2.0, 0.5]))
    assert out.shape == x.shape
    assert out[0, 0].tolist() == list(range(8))  # as it was
    assert out[1, 0].tolist() == [0, 2, 4, 6, 0, 0, 0, 0]  # twice as fast: half as long, zeros after
    assert out[2, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]  # half as fast: in between samples


def test_speed_draws_factors_within_bounds():
    x = torch.arange(100, dtype=torch.float32).view(1, 1, 100).repeat(200, 1, 1)
    out = A.speed(x, _gen(3), 0.1)
    factors = out[:, 0, 10] / 10  # sample 10 of a ramp sits at 10 * factor
    assert float(factors.min()) >= 0.9 - 1e-5 and float(factors.max()) <= 1.1 + 1e-5
    assert float(factors.min()) < 0.92 and float(factors.max()) > 1.08
    assert torch.equal(A.speed(x, _gen(3), 0.1), out)


def test_waveform_augmentations_do_not_modify_input():
    x = torch.randn(6, 1, 50, generator=_gen(1))
    x0 = x.clone()
    A.wave_shift(x, _gen(), 5), A.gain(x, _gen(), 3.0), A.speed(x, _gen(), 0.1)
    A.mixup(x, torch.eye(6), _gen(), 0.4)
    assert torch.equal(x, x0)


# ------------------------------------------------------------------ mixup

def test_mixup_targets_carry_the_inputs_proportions():
    """Inputs that are their own one-hot labels: each mixed input must equal its mixed target."""
    n = 64
    y = torch.eye(8)[torch.arange(n) % 8]
    x = y.clone().view(n, 1, 8)
    xm, ym = A.mixup(x, y, _gen(9), 0.4)
    assert torch.allclose(xm[:, 0], ym, atol=1e-6)
    lam = ym.max(1).values
    assert float(lam.min()) >= 0.5 - 1e-6 and float(lam.max()) <= 1 + 1e-6
    assert float((lam < 0.9).float().mean()) > 0.2  # Beta(0.4, 0.4): much mass away from 1


def test_mixup_is_deterministic_with_a_seed():
    x, y = _batch(n=8), torch.eye(8)
    a, b, c = A.mixup(x, y, _gen(1), 0.4), A.mixup(x, y, _gen(1), 0.4), A.mixup(x, y, _gen(2), 0.4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_mixup_partners_come_from_another_group():
    n = 40
    x, y = torch.arange(n, dtype=torch.float32).view(n, 1, 1), torch.eye(n)
    groups = torch.tensor([0] * 10 + [1] * 20 + [2] * 10)
    _, ym = A.mixup(x, y, _gen(3), 0.4, groups=groups)
    for i in range(n):
        partners = [j for j in torch.nonzero(ym[i] > 1e-6).flatten().tolist() if j != i]
        assert len(partners) <= 1
        if partners:
            assert groups[partners[0]] != groups[i]
    # one group only: every example is its own partner
    _, ym1 = A.mixup(x, y, _gen(3), 0.4, groups=torch.zeros(n, dtype=torch.long))
    assert torch.allclose(ym1, y)


# ------------------------------------------------------------------ the callbacks

TRANSFORM_OF = {  # each AugmentSpec field: its transform at strength v
    "hflip_p": lambda x, g, v: A.hflip(x, g, v),
    "vflip_p": lambda x, g, v: A.vflip(x, g, v),
    "rotate_deg": lambda x, g, v: A.rotate(x, g, v),
    "crop_pad": lambda x, g, v: A.random_crop(x, g, v),
    "shift_cols": lambda x, g, v: A.time_shift(x, g, v),
    "time_mask_cols": lambda x, g, v: A.time_mask(x, g, v, 1),
    "freq_mask_rows": lambda x, g, v: A.freq_mask(x, g, v, 1),
    "offset": lambda x, g, v: A.offset(x, g, v),
    "shift_samples": lambda x, g, v: A.wave_shift(x, g, v),
    "gain_db": lambda x, g, v: A.gain(x, g, v),
    "speed": lambda x, g, v: A.speed(x, g, v),
}


def _field_input(field):
    """An image batch, or a waveform batch for the speed change."""
    return _batch(n=6, h=12, w=12, seed=1) if field != "speed" else torch.randn(6, 1, 40, generator=_gen(1))


@pytest.mark.parametrize("field, value", [
    ("hflip_p", 0.5), ("vflip_p", 0.5), ("rotate_deg", 7.0), ("crop_pad", 2), ("shift_cols", 3),
    ("time_mask_cols", 4), ("freq_mask_rows", 5), ("offset", 0.3), ("shift_samples", 4), ("gain_db", 6.0),
    ("speed", 0.1),
])
def test_each_spec_field_turns_on_its_own_transform_with_its_strength(field, value):
    x = _field_input(field)
    aug = A.make_augment(A.AugmentSpec(**{field: value}))
    assert torch.equal(aug(x, _gen(8)), TRANSFORM_OF[field](x, _gen(8), value))


def test_the_mask_count_reaches_both_masks():
    x = _batch(n=6, h=12, w=12, seed=1)
    aug = A.make_augment(A.AugmentSpec(time_mask_cols=3, freq_mask_rows=2, n_masks=2))
    g = _gen(8)
    expected = A.freq_mask(A.time_mask(x, g, 3, 2), g, 2, 2)
    assert torch.equal(aug(x, _gen(8)), expected)  # time masks, then frequency masks, two of each


# ------------------------------------------------------------------ exact answers (mutation survivors)

def _ramp(h=21, w=31, n=6):
    """Images whose value is the column's distance from the centre, plus 100 + 10 * image:
    bilinear sampling reproduces a linear image exactly."""
    r = torch.arange(h, dtype=torch.float32).view(-1, 1).expand(h, w) - (h - 1) / 2
    c = torch.arange(w, dtype=torch.float32).view(1, -1).expand(h, w) - (w - 1) / 2
    x = torch.stack([c + 100.0 + 10 * i for i in range(n)]).unsqueeze(1)
    return x, r, c


def test_rotation_of_a_ramp_is_exact_in_the_interior():
    """Turned by a: the value at (dr, dc) from the centre is cos(a) dc - sin(a) dr (+ the image's offset),
    with a the angle rotate draws (uniform in [-max_deg, max_deg] degrees)."""
    import math

    x, r, c = _ramp()
    out = A.rotate(x, _gen(3), 10.0)
    angles = A._uniform(6, _gen(3), -10.0, 10.0) * math.pi / 180
    assert float(angles.abs().max()) > 0.05  # some real turns
    for i, a in enumerate(angles.tolist()):
        expected = math.cos(a) * c - math.sin(a) * r + 100.0 + 10 * i
        assert torch.allclose(out[i, 0, 4:-4, 4:-4], expected[4:-4, 4:-4], atol=1e-4)
    # even half a degree turns
    assert not torch.allclose(A.rotate(x, _gen(3), 0.5), x, atol=1e-3)


def test_rotation_fills_the_corners_with_each_images_own_minimum():
    x, _, _ = _ramp()
    out = A.rotate(x, _gen(1), 45.0)
    for i in range(len(x)):
        lo, hi = float(x[i].min()), float(x[i].max())
        assert lo - 1e-4 <= float(out[i].min()) and float(out[i].max()) <= hi + 1e-4
    corners = out[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    own_min = x.amin(dim=(1, 2, 3)).view(-1, 1)
    assert bool(torch.isclose(corners, own_min.expand_as(corners), atol=1e-4).any())


def test_offset_adds_the_generators_uniform_draws():
    x = _batch(n=5)
    d = (A.offset(x, _gen(2), 0.3) - x)[:, 0, 0, 0]
    u = torch.rand(5, generator=_gen(2))
    assert torch.allclose(d, -0.3 + 0.6 * u, atol=1e-6)


def test_speed_perturb_ends_interpolate_towards_zero():
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 20)
    slow = A.speed_perturb(x, torch.tensor([0.9]))[0, 0]
    assert torch.allclose(slow, 0.9 * torch.arange(20.0), atol=1e-5)  # a ramp stays a ramp, to the last sample
    fast = A.speed_perturb(x, torch.tensor([1.05]))[0, 0]
    # sample 19 sits at 19.95: 5 % of sample 19 and 95 % of the zero past the end
    assert float(fast[19]) == pytest.approx(19 * 0.05, abs=1e-4)
    assert float(fast[18]) == pytest.approx(18.9, abs=1e-4)


def test_mixup_partner_is_uniform_over_the_other_group_and_two_groups_of_one_mix():
    n = 63
    groups = torch.tensor([0] * 60 + [1, 1, 1])
    x, y = torch.zeros(n, 1, 1), torch.eye(n)
    _, ym = A.mixup(x, y, _gen(5), 2.0, groups=groups)
    partners = [int(torch.nonzero(ym[i, 60:] > 1e-6).flatten()[0]) + 60 for i in range(60) if ym[i, 60:].sum() > 1e-6]
    assert set(partners) == {60, 61, 62}  # every example of the other group is drawn
    _, ym2 = A.mixup(torch.zeros(2, 1, 1), torch.eye(2), _gen(5), 2.0, groups=torch.tensor([0, 1]))
    assert float(ym2[0, 1]) > 0 and float(ym2[1, 0]) > 0  # a single other example is a partner too


def test_mixup_mixing_weights_follow_the_beta_law():
    """Beta(2, 2) folded to [0.5, 1]: mean 0.6875 (its rejection sampler needs several rounds)."""
    n = 4000
    y = torch.eye(2)[torch.arange(n) % 2]
    _, ym = A.mixup(torch.zeros(n, 1), y, _gen(0), 2.0)
    own = (ym * y).sum(1)  # the example's own weight, or 1 when its partner has the same label
    mixed = own[own < 1 - 1e-6]
    assert torch.isfinite(own).all() and float(own.min()) >= 0.5 - 1e-6
    # the partner has the other label half the time; then own == lam
    assert float(mixed.mean()) == pytest.approx(0.6875, abs=0.02)


@pytest.mark.parametrize("fn, kw", [
    (A.hflip, {"p": 0.5}), (A.vflip, {"p": 0.5}), (A.rotate, {"max_deg": 10.0}), (A.random_crop, {"pad": 4}),
    (A.time_shift, {"max_cols": 5}), (A.time_mask, {"max_cols": 6}), (A.freq_mask, {"max_rows": 15}),
    (A.offset, {"max_offset": 0.1}),
])
def test_documented_defaults(fn, kw):
    x = _batch(n=8, h=20, w=20)
    assert torch.equal(fn(x, _gen(4)), fn(x, _gen(4), **kw))


@pytest.mark.parametrize("field, fn", [("hflip_p", A.hflip), ("vflip_p", A.vflip)])
def test_flip_probability_reaches_the_flip(field, fn):
    x = _batch(n=12, h=6, w=6, seed=2)
    out = A.make_augment(A.AugmentSpec(**{field: 0.9}))(x, _gen(8))
    assert torch.equal(out, fn(x, _gen(8), 0.9)) and not torch.equal(out, fn(x, _gen(8), 0.5))


def test_mixup_default_alpha_is_0_2():
    x, y = _batch(n=8), torch.eye(8)
    a, b = A.mixup(x, y, _gen(4)), A.mixup(x, y, _gen(4), 0.2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("field, value", [
    ("hflip_p", 0.3), ("vflip_p", 0.3), ("rotate_deg", 0.5), ("crop_pad", 1), ("shift_cols", 1),
    ("time_mask_cols", 1), ("freq_mask_rows", 1), ("offset", 0.05), ("shift_samples", 1), ("gain_db", 0.5),
    ("speed", 0.01),
])
def test_small_strengths_are_on_too(field, value):
    x = _field_input(field)
    out = A.make_augment(A.AugmentSpec(**{field: value}))(x, _gen(8))
    assert torch.equal(out, TRANSFORM_OF[field](x, _gen(8), value)) and not torch.equal(out, x)

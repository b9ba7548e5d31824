"""The options bench/design_study.py asks of ser: each does what it says, and
off (the default) leaves the build's numbers as they were.

"As they were": the GOLDEN_* values below were computed by ser as it stood
before the options (commit 2831a0e's modules), under the conftest's kernel
pins: initial weights under one seed, the build's augmentation settings'
outputs and the generator's next draw, a short fit's curves.
"""
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ser.data.audio import frame_rms, speech_onset_s, voiced_rms  # noqa: E402
from ser.errors import ConfigError  # noqa: E402
from ser.models import augment as A  # noqa: E402
from ser.models import cnn1d, cnn2d  # noqa: E402
from ser.models.training import TrainConfig, fit, seed_everything, view_scores  # noqa: E402

GOLDEN_CNN1D = [400.11914858852924, -3.6171852945179257]
GOLDEN_CNN2D = [175.43421046172034, -4.647006135926592]
GOLDEN_SPEC = [168.77764123441466, -54.509168149016126, 124.65537108946592, -35.3163315866356, 0.7423362731933594]
GOLDEN_WAVE = [34.657942296544206, -8.336849771634007, 0.4900934100151062]
GOLDEN_FIT = [[1.4868769645690918, 1.4834334254264832, 1.3833418488502502],
              [1.398754358291626, 1.4011608362197876, 1.4003545045852661], [24.000000193715096, 0.407823423446196]]


def _block_keys(i, bias):
    conv = [f"features.{i}.weight"] + ([f"features.{i}.bias"] if bias else [])
    bn = [f"features.{i + 1}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return conv + bn


CNN1D_KEYS = [k for i in (0, 4, 8, 12) for k in _block_keys(i, True)] + [
    "classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias"]
CNN2D_KEYS = ["coord_ch"] + [k for i in (0, 4, 8, 12) for k in _block_keys(i, False)] + [
    "classifier.weight", "classifier.bias"]
SPECTROGRAM = A.AugmentSpec(name="spectrogram", shift_cols=5, time_mask_cols=6, freq_mask_rows=15, mixup_alpha=0.4)


def fp(*tensors):
    """Two numbers that move with any value or its position."""
    a = np.concatenate([np.asarray(t.detach().float().numpy(), np.float64).ravel() for t in tensors])
    return [float(a.sum()), float((a * np.cos(np.arange(a.size))).sum())]


def _model(build, **kw):
    torch.manual_seed(0)
    return build(4, **kw)


# ------------------------------------------------------------------ cnn1d
def test_wavecnn_default_unchanged():
    m = _model(cnn1d.build_model, sr_hz=16000)
    assert list(m.state_dict()) == CNN1D_KEYS
    assert fp(*m.state_dict().values()) == pytest.approx(GOLDEN_CNN1D, rel=1e-9)
    assert m.features[0].__class__ is torch.nn.Conv1d
    assert fp(*_model(cnn1d.build_model, sr_hz=16000, first_layer="conv").state_dict().values()) == \
        pytest.approx(GOLDEN_CNN1D, rel=1e-9)


def test_sinc_first_layer_replaces_only_the_first_conv():
    conv = _model(cnn1d.build_model, sr_hz=16000).state_dict()
    sinc_model = _model(cnn1d.build_model, sr_hz=16000, first_layer="sinc")
    sinc = sinc_model.state_dict()
    assert isinstance(sinc_model.features[0], cnn1d.SincConv1d)
    assert sinc_model.features[0].k == 81  # 5 ms at 16 kHz is 80 taps, made odd
    later = [k for k in conv if not k.startswith("features.0.")]
    assert later == [k for k in sinc if not k.startswith("features.0.")]
    for k in later:  # the same initial weights after the first layer: a paired comparison
        assert torch.equal(conv[k], sinc[k]), k
    assert [n for n, _ in sinc_model.features[0].named_parameters()] == ["low_hz", "band_hz"]
    x = torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(0))
    assert sinc_model.eval()(x).shape == (2, 4)


def test_sinc_filters_are_band_passes():
    sr = 16000
    bank = cnn1d.SincConv1d(8, 80, stride=1, sr_hz=sr)
    low = (bank.min_low + bank.low_hz.abs()).detach()
    high = (low + bank.min_band + bank.band_hz.abs()).detach().ravel()
    low = low.ravel()
    t = torch.arange(sr, dtype=torch.float32) / sr
    for f in (300.0, 1500.0, 3000.0, 5000.0, 7000.0):
        with torch.no_grad():
            out = bank(torch.sin(2 * np.pi * f * t).view(1, 1, -1))
        best = int(out[0, :, 200:-200].pow(2).mean(-1).argmax())
        assert low[best] <= f <= high[best], (f, best, low[best], high[best])


def test_first_layer_errors():
    with pytest.raises(ConfigError):
        cnn1d.WaveCNN(4, first_layer="mel")
    with pytest.raises(ConfigError):
        cnn1d.WaveCNN(4, first_layer="sinc")  # no sample rate


# ------------------------------------------------------------------ cnn2d
def test_cnn2d_default_unchanged():
    m = _model(cnn2d.build_model)
    assert list(m.state_dict()) == CNN2D_KEYS
    assert fp(*m.state_dict().values()) == pytest.approx(GOLDEN_CNN2D, rel=1e-9)
    assert fp(*_model(cnn2d.build_model, rownorm="none").state_dict().values()) == pytest.approx(GOLDEN_CNN2D, rel=1e-9)


def test_rownorm_image_standardises_each_row():
    plain, rows = _model(cnn2d.build_model).eval(), _model(cnn2d.build_model, rownorm="image").eval()
    assert list(rows.state_dict()) == CNN2D_KEYS  # no buffer, no random draw: the same weights
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), rows.state_dict().values()))
    x = torch.randn(3, 1, 150, 50, generator=torch.Generator().manual_seed(1))
    offsets = torch.randn(3, 1, 150, 1, generator=torch.Generator().manual_seed(2)) * 5
    with torch.no_grad():
        torch.testing.assert_close(rows(x + offsets), rows(x), rtol=1e-4, atol=1e-4)  # a row's level is gone
        std = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-2)
        torch.testing.assert_close(rows(x), plain(std))
        assert not torch.allclose(plain(x + offsets), plain(x), atol=1e-3)


def test_rownorm_train_uses_the_stats_it_was_given():
    plain, rows = _model(cnn2d.build_model).eval(), _model(cnn2d.build_model, rownorm="train").eval()
    assert list(rows.state_dict()) == ["coord_ch", "row_mu", "row_sd"] + CNN2D_KEYS[1:]
    x = torch.randn(6, 1, 150, 50, generator=torch.Generator().manual_seed(1)) * 2 + 1
    rows.set_row_stats(x)
    mu = x.mean(dim=(0, 1, 3), keepdim=True)
    torch.testing.assert_close(rows.row_mu, mu)
    torch.testing.assert_close(rows.row_sd, torch.sqrt(x.var(dim=(0, 1, 3), keepdim=True) + 1e-2))
    with torch.no_grad():
        torch.testing.assert_close(rows(x[:2]), plain((x[:2] - rows.row_mu) / rows.row_sd))
    again = cnn2d.build_model(4, rownorm="train")
    again.load_state_dict(rows.state_dict())  # the statistics travel with the weights
    torch.testing.assert_close(again.row_mu, mu)
    with pytest.raises(ValueError):
        cnn2d.Cnn2d(4, rownorm="speaker")


# ---------------------------------------------------------------- augment
def test_build_augmentations_unchanged():
    x = torch.randn(4, 1, 150, 50, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(0)
    xa = A.make_augment(SPECTROGRAM)(x, g)
    xm, ym = A.make_mix(SPECTROGRAM)(xa, torch.nn.functional.one_hot(torch.arange(4), 4).float(), g)
    assert fp(xa) + fp(xm, ym) + [float(torch.rand(1, generator=g))] == pytest.approx(GOLDEN_SPEC, rel=1e-9)
    w = torch.randn(3, 1, 1000, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(0)
    out = A.make_augment(A.AugmentSpec(shift_samples=40, gain_db=6))(w, g)
    assert fp(out) + [float(torch.rand(1, generator=g))] == pytest.approx(GOLDEN_WAVE, rel=1e-9)
    assert A.AugmentSpec().speed == 0 and A.make_augment(A.AugmentSpec()) is None


def test_shift_waves_and_wave_shift():
    x = torch.arange(1, 9, dtype=torch.float32).view(1, 1, 8).repeat(3, 1, 1)
    out = A.shift_waves(x, [2, -3, 0])
    assert out[0, 0].tolist() == [0, 0, 1, 2, 3, 4, 5, 6]
    assert out[1, 0].tolist() == [4, 5, 6, 7, 8, 0, 0, 0]
    assert torch.equal(out[2], x[2])
    assert torch.equal(A.shift_waves(x, torch.tensor([2, -3, 0])), out)
    drawn = torch.randint(-3, 4, (3,), generator=torch.Generator().manual_seed(5))  # wave_shift's draw
    torch.testing.assert_close(A.wave_shift(x, torch.Generator().manual_seed(5), 3), A.shift_waves(x, drawn),
                               rtol=0, atol=0)


def test_speed_perturb():
    x = torch.randn(2, 1, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(A.speed_perturb(x, torch.ones(2)), x)
    fast = A.speed_perturb(x, torch.tensor([2.0, 2.0]))
    assert torch.equal(fast[..., :50], x[..., ::2]) and not fast[..., 50:].any()  # past the end: zeros
    slow = A.speed_perturb(x, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(slow[..., 1:100:2], (x[..., :50] + x[..., 1:51]) / 2)  # halfway between samples
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    aug = A.make_augment(A.AugmentSpec(speed=0.1))(x, g1)
    factors = 1 + (torch.rand(2, generator=g2) * 2 - 1) * 0.1  # one uniform draw per clip
    assert torch.equal(aug, A.speed_perturb(x, factors))
    assert ((factors >= 0.9) & (factors <= 1.1)).all()


def test_speed_runs_before_the_shift():
    x = torch.randn(3, 1, 200, generator=torch.Generator().manual_seed(0))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    both = A.make_augment(A.AugmentSpec(speed=0.05, shift_samples=10))(x, g1)
    assert torch.equal(both, A.wave_shift(A.speed(x, g2, 0.05), g2, 10))


def test_mixup_groups_pick_partners_of_another_group():
    n = 8
    x = torch.arange(n, dtype=torch.float32).view(n, 1) * 100
    y = torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()
    groups = torch.tensor([1, 1, 1, 2, 2, 3, 3, 3])
    for seed in range(20):
        xm, _ = A.mixup(x, y, torch.Generator().manual_seed(seed), 0.4, groups=groups)
        g = torch.Generator().manual_seed(seed)
        A._beta(n, 0.4, g)  # mixup's draws, in its order: lam, then the partners
        partner = A._other_group(groups, g)
        assert (groups[partner] != groups).all()
        for i in range(n):  # x[i] mixes only with clips of another group
            share = (xm[i, 0] - x[i, 0]) / (x[partner[i], 0] - x[i, 0])
            assert 0 <= float(share) <= 0.5 + 1e-6
    same = A.mixup(x, y, torch.Generator().manual_seed(0), 0.4, groups=torch.zeros(n, dtype=torch.long))
    torch.testing.assert_close(same[0], x)  # no other group: each clip is its own partner
    mix = A.make_mix(A.AugmentSpec(mixup_alpha=0.4))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(mix(x, y, g1, groups=groups)[0], A.mixup(x, y, g2, 0.4, groups=groups)[0])


# --------------------------------------------------------------- training
def _fit_2d(**kw):
    xi = torch.randn(24, 1, 16, 12, generator=torch.Generator().manual_seed(3))
    yi = torch.arange(24) % 4
    seed_everything(0)
    model = cnn2d.Cnn2d(4, widths=(4, 8))
    args = dict(augment=A.make_augment(A.AugmentSpec(shift_cols=2, time_mask_cols=2, freq_mask_rows=3)),
                mix=A.make_mix(A.AugmentSpec(mixup_alpha=0.4)), log=lambda s: None)
    h = fit(model, xi[:16], yi[:16], TrainConfig(epochs=3, batch_size=8, lr=1e-2), seed=0,
            x_val=xi[16:], y_val=yi[16:], **{**args, **kw})
    return h, model, xi[16:], yi[16:]


def test_fit_default_unchanged():
    h = _fit_2d()[0]
    assert h["train_loss"] == pytest.approx(GOLDEN_FIT[0], rel=1e-5)
    assert h["val_loss"] == pytest.approx(GOLDEN_FIT[1], rel=1e-5)
    assert fp(torch.from_numpy(h["val_proba"])) == pytest.approx(GOLDEN_FIT[2], rel=1e-5, abs=1e-6)
    assert "val_views" not in h and "aborted_at_epoch" not in h


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default device is CUDA here")
def test_fit_train_device_cpu_is_the_default_here():
    a, b = _fit_2d()[0], _fit_2d(train_device="cpu")[0]
    assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


def test_fit_val_views_score_every_view_and_change_nothing_else():
    plain, _, xv, _ = _fit_2d()
    views = {"single": [xv], "twice": [xv, xv], "flipped": [xv, torch.flip(xv, dims=[-1])]}
    h = _fit_2d(val_views=views)[0]
    assert h["train_loss"] == plain["train_loss"] and h["val_acc"] == plain["val_acc"]  # no draw, no training
    assert list(h["val_views"]) == list(views)
    assert h["val_views"]["single"]["acc"] == h["val_acc"]
    assert h["val_views"]["single"]["loss"] == pytest.approx(h["val_loss"], rel=1e-5)
    assert h["val_views"]["twice"] == h["val_views"]["single"]
    assert all(len(v["loss"]) == 3 for v in h["val_views"].values())


def test_view_scores_average_the_softmax():
    h, model, xv, yv = _fit_2d()
    flipped = torch.flip(xv, dims=[-1])
    model.eval()
    with torch.no_grad():
        prob = (torch.softmax(model(xv), 1) + torch.softmax(model(flipped), 1)) / 2
    loss, acc = view_scores(model, [xv, flipped], yv)
    assert loss == pytest.approx(float(-torch.log(prob[torch.arange(len(yv)), yv]).mean()), rel=1e-5)
    assert acc == pytest.approx(float((prob.argmax(1) == yv).float().mean()))


def test_fit_deadline():
    h = _fit_2d(deadline=time.time() - 1)[0]
    assert h["aborted_at_epoch"] == 1 and len(h["train_loss"]) == 1 and len(h["val_acc"]) == 1
    h = _fit_2d(deadline=time.time() + 3600)[0]
    assert "aborted_at_epoch" not in h and len(h["train_loss"]) == 3


def test_fit_mix_groups_reach_mix_with_the_batch():
    seen, plain_calls = [], []

    def mix(x, y, gen, groups=None):
        seen.append(groups.clone())
        return x, y

    groups = np.arange(16) // 4
    _fit_2d(mix=mix, mix_groups=groups)
    rng = np.random.default_rng(0)  # fit's batch order: one permutation per epoch
    order = np.concatenate([rng.permutation(16) for _ in range(3)])
    assert torch.cat(seen).tolist() == groups[order].tolist()
    _fit_2d(mix=lambda x, y, gen: plain_calls.append(1) or (x, y))  # without groups: the old three arguments
    assert len(plain_calls) == 6


# ------------------------------------------------------------------ audio
def test_voiced_rms_ignores_silence():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    y = np.concatenate([np.zeros(sr, np.float32), tone, np.zeros(2 * sr, np.float32)])
    assert voiced_rms(y, sr) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    assert float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < 0.6 * voiced_rms(y, sr)  # the clip's RMS is not
    assert voiced_rms(2 * y, sr) == pytest.approx(2 * voiced_rms(y, sr), rel=1e-9)
    assert voiced_rms(np.zeros(sr, np.float32), sr) == 1e-8
    rms = frame_rms(y, sr)
    voiced = rms > rms.max() * 10 ** (-30 / 20)  # speech_onset_s's frames
    assert voiced_rms(y, sr) == pytest.approx(float(np.sqrt(np.mean(rms[voiced] ** 2))), rel=1e-12)
    assert speech_onset_s(y, sr) == pytest.approx(1.0 - 0.1, abs=0.02)


# ------------------------------------------------------------ the study
def test_design_study_report_reproduces_the_stored_summary(tmp_path):
    """``doit design`` reads merged/summary.json: the study's report, run on
    the stored runs, writes it again byte for byte."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "bench"
    results = root / "design_study_results"
    if not (results / "merged" / "summary.json").is_file():
        pytest.skip("no stored design-study results")
    spec = importlib.util.spec_from_file_location("design_study", root / "design_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    args = study.parse_args(["report", str(results / "run1_results.json.gz"), str(results / "run2_results.json.gz"),
                             "--out", str(tmp_path)])
    study.report(args)
    assert (tmp_path / "summary.json").read_bytes() == (results / "merged" / "summary.json").read_bytes()
    stored = (results / "merged" / "tables.md").read_text().split("\n", 1)[1]  # the first line names the paths
    assert (tmp_path / "tables.md").read_text().split("\n", 1)[1] == stored

"""The training loop shared by both networks (ser/models/training.py)."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from ser.models import cnn1d  # noqa: E402
from ser.models.augment import AugmentSpec, make_augment  # noqa: E402
from ser.models.training import (  # noqa: E402
    TrainConfig, evaluate, fit, load_model_arrays, model_arrays, seed_everything, view_scores,
)


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
               augment=make_augment(AugmentSpec(shift_samples=50)), log=lambda s: None)
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


# ------------------------------------------------------------------ a tiny model, a few steps

N, N_VAL = 22, 9  # 22 clips in batches of 8: 8, 8 and 6


def _data(seed=0):
    """Three classes, each a cluster in 4-d: learnable by a linear layer in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N + N_VAL) % 3
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = centres[y] + 0.5 * torch.randn(N + N_VAL, 4, generator=g)
    return x[:N], y[:N], x[N:], y[N:]


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3)


def _quiet(_):
    pass


def _cpu(**kw):
    return {"train_device": "cpu", "log": _quiet, **kw}


def test_fit_records_one_value_per_epoch():
    x, y, xv, yv = _data()
    h = fit(_net(), x, y, TrainConfig(epochs=3, batch_size=8, lr=0.05), seed=0, x_val=xv, y_val=yv, **_cpu())
    assert [len(h[k]) for k in ("train_loss", "train_acc", "val_loss", "val_acc")] == [3, 3, 3, 3]
    assert h["val_proba"].shape == (3, N_VAL, 3) and h["val_proba"].dtype == np.float32
    np.testing.assert_allclose(h["val_proba"].sum(-1), 1, atol=1e-5)
    assert all(0 <= a <= 1 for a in h["train_acc"] + h["val_acc"]) and h["seconds"] >= 0
    # without validation data: empty validation lists, no probabilities
    h = fit(_net(), x, y, TrainConfig(epochs=2, batch_size=8, lr=0.05), seed=0, **_cpu())
    assert h["val_loss"] == h["val_acc"] == [] and "val_proba" not in h and len(h["train_loss"]) == 2


def test_fit_lowers_the_loss_and_learns_the_clusters():
    x, y, xv, yv = _data()
    h = fit(_net(), x, y, TrainConfig(epochs=8, batch_size=8, lr=0.05), seed=0, x_val=xv, y_val=yv, **_cpu())
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert h["train_acc"][-1] == 1.0 and h["val_acc"][-1] == 1.0


def test_fit_is_deterministic_with_a_seed_and_the_seed_orders_the_batches():
    x, y, xv, yv = _data()
    net = _net()
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        m = copy.deepcopy(net)
        runs[name] = (m, fit(m, x, y, TrainConfig(epochs=2, batch_size=8, lr=0.05), seed=seed,
                             x_val=xv, y_val=yv, **_cpu()))
    (ma, ha), (mb, hb), (mc, hc) = runs["a"], runs["b"], runs["c"]
    assert ha["train_loss"] == hb["train_loss"] and ha["val_loss"] == hb["val_loss"]
    assert np.array_equal(ha["val_proba"], hb["val_proba"])
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))
    assert hc["train_loss"] != ha["train_loss"]  # another batch order


def test_without_learning_the_history_is_the_fixed_models_scores():
    """With lr=0 the model never changes: the epoch's training loss is the
    mean cross-entropy over all clips (batches weighted by their size: 8, 8
    and 6), its accuracy the model's, and the validation numbers and
    probabilities those of :func:`evaluate`."""
    x, y, xv, yv = _data()
    net = _net()
    with torch.no_grad():
        logits = net(x)
    loss = float(F.cross_entropy(logits, y))
    acc = float((logits.argmax(1) == y).float().mean())
    h = fit(net, x, y, TrainConfig(epochs=2, batch_size=8, lr=0.0), seed=0, x_val=xv, y_val=yv, **_cpu())
    assert h["train_loss"] == pytest.approx([loss, loss], rel=1e-5)
    assert h["train_acc"] == pytest.approx([acc, acc])
    vl, va, p = evaluate(net, xv, yv)
    assert h["val_loss"] == pytest.approx([vl, vl], rel=1e-6) and h["val_acc"] == [va, va]
    np.testing.assert_allclose(h["val_proba"][1], p, atol=1e-6)
    with torch.no_grad():
        assert vl == pytest.approx(float(F.cross_entropy(net(xv), yv)), rel=1e-5)


def test_label_smoothing_reaches_the_loss():
    x, y, _, _ = _data()
    net = _net()
    with torch.no_grad():
        smooth = float(F.cross_entropy(net(x), y, label_smoothing=0.2))
    h = fit(net, x, y, TrainConfig(epochs=1, batch_size=8, lr=0.0, label_smoothing=0.2), seed=0, **_cpu())
    assert h["train_loss"] == [pytest.approx(smooth, rel=1e-5)]


def test_weight_decay_reaches_the_optimiser():
    x, y, _, _ = _data()
    norms = {}
    for wd in (0.0, 5.0):
        net = _net()
        fit(net, x, y, TrainConfig(epochs=3, batch_size=8, lr=0.05, weight_decay=wd), seed=0, **_cpu())
        norms[wd] = float(net.weight.detach().norm())
    assert norms[5.0] < 0.8 * norms[0.0]


def test_augment_sees_every_training_batch_and_never_the_validation_clips():
    x, y, xv, yv = _data()
    seen = []

    def augment(xb, gen):
        assert isinstance(gen, torch.Generator)
        seen.append(len(xb))
        return xb + 100.0  # far off: a validation pass through it would show

    net = _net()
    h = fit(net, x, y, TrainConfig(epochs=2, batch_size=8, lr=0.0), seed=0, x_val=xv, y_val=yv,
            augment=augment, **_cpu())
    assert seen == [8, 8, 6, 8, 8, 6]
    assert h["val_loss"][0] == pytest.approx(evaluate(net, xv, yv)[0], rel=1e-6)
    with torch.no_grad():
        assert h["train_loss"][0] == pytest.approx(float(F.cross_entropy(net(x + 100.0), y)), rel=1e-5)


def test_mix_trains_on_soft_targets_and_counts_accuracy_against_the_labels():
    """A ``mix`` that hands every clip the next class as its target: the loss
    is against those targets, the accuracy still against the true labels."""
    x, y, _, _ = _data()
    got_groups = []

    def mix(xb, y1, gen, groups=None):
        got_groups.append(None if groups is None else groups.tolist())
        return xb, torch.roll(y1, 1, dims=1)

    net = _net()
    with torch.no_grad():
        logits = net(x)
    h = fit(net, x, y, TrainConfig(epochs=1, batch_size=8, lr=0.0), seed=0, mix=mix, **_cpu())
    assert h["train_loss"][0] == pytest.approx(float(F.cross_entropy(logits, (y + 1) % 3)), rel=1e-5)
    assert h["train_acc"][0] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert got_groups == [None, None, None]
    # mix_groups: each batch's own clips' groups
    groups = np.arange(N) * 10
    got_groups.clear()
    fit(net, x, y, TrainConfig(epochs=1, batch_size=8, lr=0.0), seed=0, mix=mix, mix_groups=groups, **_cpu())
    order = np.random.default_rng(0).permutation(N)  # the batch order of seed 0
    assert got_groups == [(groups[order[i:i + 8]]).tolist() for i in (0, 8, 16)]


def test_evaluate_does_not_depend_on_its_batch_size_and_works_without_labels():
    _, _, xv, yv = _data()
    net = _net()
    a, b = evaluate(net, xv, yv, batch_size=2), evaluate(net, xv, yv, batch_size=64)
    assert a[0] == pytest.approx(b[0], rel=1e-6) and a[1] == b[1]
    np.testing.assert_allclose(a[2], b[2], atol=1e-7)
    loss, acc, p = evaluate(net, xv, None)
    assert np.isnan(loss) and np.isnan(acc)
    np.testing.assert_allclose(p, b[2], atol=1e-7)
    assert not net.training  # left in evaluation mode


def test_view_scores_average_the_probabilities_of_a_views_tensors():
    _, _, xv, yv = _data()
    net = _net()
    vl, va, p = evaluate(net, xv, yv)
    assert view_scores(net, [xv], yv) == (pytest.approx(vl, rel=1e-5), pytest.approx(va))
    # a second, useless form of the clips (all zeros: one probability vector for all) is averaged in
    zeros = torch.zeros_like(xv)
    pz = evaluate(net, zeros, None)[2]
    mean = (p + pz) / 2
    loss, acc = view_scores(net, [xv, zeros], yv)
    assert acc == pytest.approx(float((mean.argmax(1) == yv.numpy()).mean()))
    assert loss == pytest.approx(float(-np.log(mean[np.arange(len(yv)), yv.numpy()]).mean()), rel=1e-5)
    h = fit(net, *_data()[:2], TrainConfig(epochs=2, batch_size=8, lr=0.0), seed=0, x_val=xv, y_val=yv,
            val_views={"both": [xv, zeros]}, **_cpu())
    assert h["val_views"]["both"]["acc"] == pytest.approx([acc, acc])
    assert h["val_views"]["both"]["loss"] == pytest.approx([loss, loss], rel=1e-5)


def test_a_passed_deadline_stops_after_the_epoch_that_ends_past_it():
    import time

    x, y, xv, yv = _data()
    h = fit(_net(), x, y, TrainConfig(epochs=5, batch_size=8, lr=0.05), seed=0, x_val=xv, y_val=yv,
            deadline=time.time() - 1, **_cpu())
    assert h["aborted_at_epoch"] == 1 and len(h["train_loss"]) == len(h["val_acc"]) == 1
    assert h["val_proba"].shape == (1, N_VAL, 3)
    h = fit(_net(), x, y, TrainConfig(epochs=2, batch_size=8, lr=0.05), seed=0, deadline=time.time() + 3600, **_cpu())
    assert "aborted_at_epoch" not in h and len(h["train_loss"]) == 2


def test_fit_logs_one_line_per_epoch():
    x, y, xv, yv = _data()
    lines = []
    fit(_net(), x, y, TrainConfig(epochs=3, batch_size=8, lr=0.05), seed=0, x_val=xv, y_val=yv,
        train_device="cpu", log=lines.append, label="m")
    assert len(lines) == 3 and lines[0].startswith("m epoch 1/3 loss") and "val loss" in lines[0]


def test_model_arrays_are_copies_that_load_back():
    net = _net(1)
    arrays = model_arrays(net)
    assert set(arrays) == {"weight", "bias"} and arrays["weight"].shape == (3, 4)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not np.allclose(arrays["weight"], net.weight.detach().numpy())  # a copy, not a view
    again = load_model_arrays(_net(2), arrays)
    assert np.array_equal(model_arrays(again)["weight"], arrays["weight"])


def test_seed_everything_repeats_every_generator():
    import random

    seed_everything(11)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    seed_everything(12)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert all(u != v for u, v in zip(a, b))

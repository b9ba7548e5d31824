"""The training loop shared by both networks (ser/models/training.py)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ser.models import cnn1d  # noqa: E402
from ser.models.augment import AugmentSpec, make_augment  # noqa: E402
from ser.models.training import TrainConfig, fit, seed_everything  # noqa: E402


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

"""Speaker-normalised spectrogram images (a candidate input of the 2D CNN):
statistics, images, export, and prediction on new clips."""
import dataclasses
import json
import shutil

import numpy as np
import pytest

from conftest import tone, write_wav
from results_fixtures import write as write_results
from ser.config import CONFIG
from ser.errors import ConfigError, DataError
from ser.features.images import (
    clip_mel, export_images, image_to_input, log_mel_image, log_mel_row_stats, read_png, speaker_norm_image,
    speaker_row_stats, speaker_row_stats_by,
)

MEL = dataclasses.replace(CONFIG.mel, n_mels=32, n_fft=256)


def _clips(seed=0, n=3, shape=(12, 25)):
    """One speaker's spectrograms: signal in [1e-2, 1], the first 3 frames silent."""
    rng = np.random.default_rng(seed)
    out = [rng.uniform(1e-2, 1.0, size=shape) for _ in range(n)]
    for X in out:
        X[:, :3] = 0.0
    return out


def _norm(clips):
    return speaker_row_stats([log_mel_row_stats(X) for X in clips])


# ------------------------------------------------------------------ pure maths


def test_a_gain_and_power_per_row_drop_out():
    """Speaker B is speaker A with a gain and an exponent per row (log B = k log A
    + log g): the normalised images are identical, the raw ones are not."""
    A = _clips()
    n_rows = A[0].shape[0]
    gain = np.exp(np.linspace(-3, 3, n_rows))[:, None]
    k = np.linspace(0.5, 2.0, n_rows)[:, None]
    B = [gain * X ** k for X in A]
    (ma, sa), (mb, sb) = _norm(A), _norm(B)
    np.testing.assert_allclose(sb / sa, k[:, 0], rtol=1e-6)
    np.testing.assert_allclose(mb - k[:, 0] * ma, np.log(gain[:, 0]), atol=1e-6)
    for Xa, Xb in zip(A, B):
        img = speaker_norm_image(Xa, ma, sa)
        assert img.dtype == np.uint8 and img.shape == Xa.shape and img.max() == 255
        assert np.array_equal(img, speaker_norm_image(Xb, mb, sb))
        assert not np.array_equal(log_mel_image(Xa), log_mel_image(Xb))
        assert np.all(img[:, :3] == 0)  # silent frames stay black


def test_stats_known_values_over_signal_only():
    """Row 0 holds log values -1 and -3 (mean -2, std 1) beside silent frames;
    row 1 is empty: mean 0, std 1."""
    X = np.zeros((2, 6))
    X[0, :4] = np.exp([-1.0, -3.0, -1.0, -3.0])
    counts, sums, sums_sq = log_mel_row_stats(X)
    assert counts.tolist() == [4, 0]
    mean, std = speaker_row_stats([(counts, sums, sums_sq)])
    np.testing.assert_allclose(mean, [-2.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(std, [1.0, 1.0], atol=1e-7)
    # more silence (extra frames, an all-silent clip) changes nothing
    longer = log_mel_row_stats(np.hstack([X, np.zeros((2, 50))]))
    assert all(np.array_equal(a, b) for a, b in zip(longer, (counts, sums, sums_sq)))
    m2, s2 = speaker_row_stats([(counts, sums, sums_sq), log_mel_row_stats(np.zeros((2, 9)))])
    assert np.array_equal(m2, mean) and np.array_equal(s2, std)
    # a constant row has no spread: the floor keeps the division finite
    _, s3 = speaker_row_stats([log_mel_row_stats(np.full((1, 5), 0.5))])
    assert s3[0] > 0


def test_silent_entries_are_black_even_where_a_wide_row_would_put_them_grey():
    """Row 0 spreads widely (log -20 and -1: its silence would sit at z = -1.1);
    row 1 reaches z = -3, the image's minimum. The silent entry of row 0 must
    still be black, and the empty row 2 too."""
    X = np.zeros((3, 10))
    X[0, :8] = np.exp([-20.0, -1.0] * 4)  # X[0, 8:] silent
    X[1] = np.exp([0.0] * 9 + [-5.0])
    mean, std = _norm([X])
    z_silent = (np.log(1e-9) - mean[0]) / std[0]
    assert -1.2 < z_silent < -1.0
    img = speaker_norm_image(X, mean, std, low_at_bottom=False)
    assert img[1, 9] == 0 and img[0, :8].min() > 0  # the minimum is row 1's -5
    assert np.all(img[0, 8:] == 0) and np.all(img[2] == 0)
    assert np.array_equal(speaker_norm_image(X, mean, std), img[::-1])  # same orientation as log_mel_image


def test_each_speaker_pools_its_own_clips_only():
    a, b = _clips(seed=1), _clips(seed=2)
    stats = [("A", f"a{i}.wav", log_mel_row_stats(X)) for i, X in enumerate(a)]
    stats += [("B", "b0.wav", log_mel_row_stats(b[0]))]
    norms = speaker_row_stats_by(stats)
    more = speaker_row_stats_by(stats + [("B", "b1.wav", log_mel_row_stats(b[1]))])
    for m, ref in zip(norms["A"], _norm(a)):
        assert np.array_equal(m, ref)
    assert all(np.array_equal(x, y) for x, y in zip(more["A"], norms["A"]))
    assert not np.allclose(more["B"][0], norms["B"][0])
    # the pooling order is the clips' names, not the order they come in
    shuffled = speaker_row_stats_by(stats[::-1])
    assert all(np.array_equal(x, y) for x, y in zip(shuffled["A"], norms["A"]))


def test_bad_statistics_are_rejected():
    X = _clips()[0]
    with pytest.raises(DataError, match="do not fit"):
        speaker_norm_image(X, np.zeros(3), np.ones(3))
    with pytest.raises(DataError, match="^a speaker needs at least one clip for its statistics$"):
        speaker_row_stats([])


# ------------------------------------------------------------------ export


def _export(root, out, **kw):
    return export_images(root, out, mel_cfg=MEL, n_frames=20, **kw)


def test_export_writes_both_trees_and_leaves_the_raw_images_alone(tiny_dataset, tmp_path):
    plain = _export(tiny_dataset, tmp_path / "plain")
    both = _export(tiny_dataset, tmp_path / "both", speaker_norm=True)
    assert [{k: v for k, v in r.items() if k not in ("path", "path_speaker")} for r in both] == \
           [{k: v for k, v in r.items() if k != "path"} for r in plain]
    raw = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*.png"))
    spk = sorted(p.relative_to(tmp_path / "both" / "speaker_norm")
                 for p in (tmp_path / "both" / "speaker_norm").rglob("*.png"))
    assert spk == raw and len(raw) == 16
    for r, q in zip(both, plain):
        assert (tmp_path / "both" / "speaker_norm").as_posix() in r["path_speaker"]
        assert open(r["path"], "rb").read() == open(q["path"], "rb").read()  # raw images byte for byte
    # each speaker image is its speaker's (split, speaker) statistics applied to its mel
    mel_kw = dict(mel_cfg=MEL, n_frames=20)
    for r in both:
        mates = [c for c in both if (c["split"], c["speaker"]) == (r["split"], r["speaker"])]
        assert len(mates) == 4
        mean, std = speaker_row_stats([log_mel_row_stats(clip_mel(tiny_dataset / c["key"], **mel_kw))
                                       for c in sorted(mates, key=lambda c: c["key"].rsplit("/", 1)[1])])
        want = speaker_norm_image(clip_mel(tiny_dataset / r["key"], **mel_kw), mean, std)
        assert np.array_equal(read_png(r["path_speaker"]), want)
    assert not np.array_equal(read_png(both[0]["path_speaker"]), read_png(both[0]["path"]))
    # the orientation reaches the speaker images too
    up = _export(tiny_dataset, tmp_path / "up", speaker_norm=True, low_at_bottom=False)
    assert all(np.array_equal(read_png(u["path_speaker"]), read_png(b["path_speaker"])[::-1]) for u, b in zip(up, both))


def test_a_speaker_is_split_and_speaker(tiny_dataset, tmp_path):
    """A Test clip of training speaker 1 is another speaker: speaker 1's Train
    images do not change when it is added."""
    before = _export(tiny_dataset, tmp_path / "a", speaker_norm=True)
    write_wav(tiny_dataset / "Test" / "Sad" / "03-01-04-01-02-01-01.wav", tone(2000, 16000, 0.5, amp=0.05))
    after = _export(tiny_dataset, tmp_path / "b", speaker_norm=True)
    old = {r["key"]: r for r in before}
    for r in after:
        if r["key"] in old and r["speaker"] == 1:
            assert np.array_equal(read_png(r["path_speaker"]), read_png(old[r["key"]]["path_speaker"]))


def test_export_needs_a_speaker_for_every_clip(tiny_dataset, tmp_path):
    calm = tiny_dataset / "Train" / "Calm"
    shutil.copy(calm / "03-01-02-01-01-01-01.wav", calm / "clip.wav")
    _export(tiny_dataset, tmp_path / "plain", speaker_pattern="none")  # raw images need no speaker
    with pytest.raises(DataError, match=r"Angry/03-01-05-01-01-01-01\.wav \(and 16 more\): speaker normalisation needs "
                       r"the speaker, and the data set declares none; drop the speaker-normalised candidates "
                       r"\(\[cnn2d\] speaker_norm = \[\]\)$"):
        _export(tiny_dataset, tmp_path / "spk", speaker_norm=True, speaker_pattern="none")
    assert not list((tmp_path / "spk").rglob("*.png"))  # refused before any work
    with pytest.raises(ConfigError, match=r"^dynamic_range=5.0 \(log units\) cannot be combined with speaker "
                       r"normalisation \(the normalised values are in units of the speaker's spread\)$"):
        _export(tiny_dataset, tmp_path / "dr", speaker_norm=True, dynamic_range=5.0, speaker_pattern="none")


@pytest.mark.parametrize("speaker_norm", [(), ("spectrogram",)])
def test_build_images_follows_the_config(tiny_dataset, tmp_path, speaker_norm):
    from ser.pipeline import build_images

    c = dataclasses.replace(CONFIG.cnn2d, n_frames=20, window="start", speaker_norm=speaker_norm)
    out = tmp_path / "images"
    build_images(tiny_dataset, out, tmp_path / "images.json", dataclasses.replace(CONFIG, mel=MEL, cnn2d=c))
    manifest = json.loads((tmp_path / "images.json").read_text())
    assert manifest["export"]["speaker_norm"] is bool(speaker_norm)
    assert (out / "speaker_norm").is_dir() is bool(speaker_norm)
    for r in manifest["records"]:
        assert r["path"].startswith(str(out / r["split"]))
        if speaker_norm:  # moved into place with the tree
            assert r["path_speaker"] == str(out / "speaker_norm" / r["split"] / r["class_name"] / r["key"].rsplit(
                "/", 1)[1].replace(".wav", ".png"))
            assert read_png(r["path_speaker"]).shape == (MEL.n_mels, 20)
        else:
            assert "path_speaker" not in r


# ------------------------------------------------------------------ prediction


def test_predict_falls_back_to_the_best_raw_setting_for_single_clip_speakers(tmp_path):
    """Actor 7 has two clips here (speaker-normalised, as the export makes
    them); speaker 8 has one and odd.wav names none: those two are classified by
    the raw-input setting with the best validation score ('image', not the
    first one), and the log names them."""
    torch = pytest.importorskip("torch")
    from ser.models import cnn2d
    from ser.io import save_state_dict
    from ser.classify import cnn2d_probe
    from ser.models.protocol import Trained

    data = tmp_path / "data"
    for split, clips in (("Train", (("Angry", "05", 7, 300), ("Calm", "02", 7, 900), ("Angry", "05", 8, 500))),
                         ("Test", (("Angry", "05", 9, 400), ("Calm", "02", 9, 700)))):
        for name, code, speaker, f in clips:
            write_wav(data / split / name / f"03-01-{code}-01-01-01-{speaker:02d}.wav", tone(f, 16000, 0.5))
    c = dataclasses.replace(CONFIG.cnn2d, n_frames=20, window="start", size_hw=(16, 8), widths=(4, 8), head="gap",
                            coord=False)
    cfg = dataclasses.replace(CONFIG, mel=MEL, cnn2d=c)
    recs = {r["key"].rsplit("/", 1)[1]: r for r in _export(data, tmp_path / "img", speaker_norm=True)}
    odd = write_wav(tmp_path / "odd.wav", tone(600, 16000, 0.5))
    tr = data / "Train"  # two clips of speaker 7, one of speaker 8, one of none
    paths = [tr / "Angry" / "03-01-05-01-01-01-07.wav", tr / "Calm" / "03-01-02-01-01-01-07.wav",
             tr / "Angry" / "03-01-05-01-01-01-08.wav", odd]

    results = tmp_path / "results"
    models = {"none": {}, "image": {"hflip_p": 0.5}, "none, speaker-normalised": {"input": "speaker"}}
    res = {"classes": ["Angry", "Calm"], "chosen": "none, speaker-normalised", "models": {},
           "validation": {"candidates": {"none": {"score": 0.5}, "image": {"score": 0.6},
                                         "none, speaker-normalised": {"score": 0.7}}}}
    for i, (name, params) in enumerate(models.items()):
        ckpts = []
        for s in range(2):
            torch.manual_seed(10 * i + s)
            ckpts.append(str(tmp_path / "models" / f"{i}_{s}.pt"))
            save_state_dict(cnn2d.build_model(2, **cnn2d.model_kwargs(c)), ckpts[-1])
        res["models"][name] = {"params": params, "checkpoints": ckpts, "states": [{}, {}]}
    results.mkdir()
    write_results("cnn2d", results / "cnn2d.json", res)  # completed to the schema, stamped

    def ensemble(name, x):
        lrn = cnn2d.learner(c, 2)
        return np.mean([lrn.predict(Trained(cnn2d.load_checkpoint(p, c, n_classes=2)), {}, x)
                        for p in res["models"][name]["checkpoints"]], axis=0)

    def inp(img):
        return image_to_input(img, size_hw=(16, 8))

    lines = []
    name, probs = cnn2d_probe(paths, cfg, results, log=lines.append)
    x_spk = np.stack([inp(read_png(recs[p.name]["path_speaker"])) for p in paths[:2]])
    x_raw = np.stack([inp(read_png(recs[paths[2].name]["path"])),
                      inp(log_mel_image(clip_mel(odd, mel_cfg=MEL, n_frames=20)))])
    np.testing.assert_allclose(probs[:2], ensemble("none, speaker-normalised", x_spk), atol=1e-6)
    np.testing.assert_allclose(probs[2:], ensemble("image", x_raw), atol=1e-6)
    assert not np.allclose(probs[2:], ensemble("none", x_raw), atol=1e-4)
    assert len(lines) == 1 and "'image'" in lines[0] and "03-01-05-01-01-01-08.wav, odd.wav" in lines[0]
    assert "none, speaker-normalised" in name and "'image'" in name
    # every speaker with two clips: no fallback, nothing said
    lines.clear()
    _, p2 = cnn2d_probe(paths[:2], cfg, results, log=lines.append)
    np.testing.assert_allclose(p2, probs[:2], atol=1e-6)
    assert lines == []
    # speakers given by the caller decide, whatever the names say: here all four clips are one speaker's
    _, p4 = cnn2d_probe(paths, cfg, results, log=lines.append, speakers=["s"] * len(paths))
    assert lines == [] and not np.allclose(p4[:2], probs[:2], atol=1e-4)

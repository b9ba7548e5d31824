"""Spectrogram images (section 3.2): export, floor fix, orientation, transform."""
import dataclasses

import numpy as np
import pytest

from conftest import tone
from ser.config import CONFIG
from ser.errors import ConfigError, DataError
from ser.features.images import (
    export_images, image_to_input, load_inputs, log_mel_image, read_png, scale_to_uint8, spectrogram2image,
)


def _spec_with_empty_rows():
    rng = np.random.default_rng(0)
    X = rng.uniform(1e-3, 1.0, size=(20, 30))
    X[[0, 2, 5]] = 0.0  # empty mel filters
    X[7, 4], X[9, 9] = 1e-3, 1.0  # known minimum and maximum of the signal
    return X


def test_image_is_uint8_full_range_and_shape():
    X = _spec_with_empty_rows()
    img = log_mel_image(X)
    assert img.dtype == np.uint8 and img.shape == X.shape
    assert img.min() == 0 and img.max() == 255


def test_floor_fix_scales_to_the_signal_not_the_empty_rows():
    X = _spec_with_empty_rows()
    fixed = log_mel_image(X, low_at_bottom=False)
    spec = log_mel_image(X, low_at_bottom=False, fix_floor=False)
    # fixed: the signal's minimum is black, and so are the empty rows
    assert fixed[7, 4] == 0 and np.all(fixed[[0, 2, 5]] == 0)
    # the spec's min-max puts the signal's minimum at log(1e-3)-log(1e-9) over log(1)-log(1e-9)
    expected = int((np.log(1e-3 + 1e-9) - np.log(1e-9)) / (np.log(1 + 1e-9) - np.log(1e-9)) * 255)
    assert spec[7, 4] == expected == 170
    assert np.all(spec[[0, 2, 5]] == 0)
    assert fixed[9, 9] == spec[9, 9] == 255


def test_dynamic_range_clips_low_values():
    X = _spec_with_empty_rows()
    img = log_mel_image(X, dynamic_range=np.log(10.0), low_at_bottom=False)  # keep 1 decade
    assert img[7, 4] == 0 and img[9, 9] == 255
    assert np.all(img[X < 0.1] == 0)
    with pytest.raises(ConfigError, match="dynamic_range"):
        log_mel_image(X, dynamic_range=0.0)


@pytest.mark.parametrize("bad", [np.ones(5), -np.ones((3, 3)), np.full((2, 2), np.nan)])
def test_bad_spectrograms_are_rejected(bad):
    with pytest.raises(DataError):
        log_mel_image(bad)


def test_constant_input_gives_zeros():
    assert np.all(scale_to_uint8(np.ones((3, 3)), 1.0, 1.0) == 0)


def _brightest_row(img):
    return int(np.argmax(img.astype(float).mean(axis=1)))


def test_low_tone_is_at_the_bottom_row_side():
    from ser.features.spectro import mel_from_config

    sr = 48000
    rows = {}
    for f in (300.0, 8000.0):
        X = mel_from_config(tone(f, sr, 0.5), sr, CONFIG.mel, power=1.0, n_frames=20)
        rows[f] = (_brightest_row(log_mel_image(X)), _brightest_row(log_mel_image(X, low_at_bottom=False)))
    n = CONFIG.mel.n_mels
    # flipped (default): low frequencies near the bottom (large row index)
    assert rows[300.0][0] > rows[8000.0][0]
    assert rows[300.0][0] > n // 2 > rows[8000.0][0]
    # not flipped (the spec's imwrite): row 0 is the lowest band
    assert rows[300.0][1] < rows[8000.0][1]
    assert rows[300.0][0] == n - 1 - rows[300.0][1]


def test_spectrogram2image_writes_png_atomically(tmp_path):
    X = _spec_with_empty_rows()
    path = tmp_path / "a" / "clip.png"
    img = spectrogram2image(X, path)
    assert np.array_equal(read_png(path), img)
    assert [p.name for p in path.parent.iterdir()] == ["clip.png"]  # no temporary file left


def test_read_png_errors(tmp_path):
    with pytest.raises(DataError, match="no such image"):
        read_png(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot be read"):
        read_png(tmp_path / "bad.png")


def test_transform_known_values_without_resize():
    img = np.array([[0, 255], [51, 204]], dtype=np.uint8)
    x = image_to_input(img, size_hw=(2, 2))
    assert x.dtype == np.float32 and x.shape == (1, 2, 2)
    np.testing.assert_allclose(x[0], [[-1.0, 1.0], [-0.6, 0.6]], atol=1e-6)


def test_transform_area_resize_averages_pixels():
    img = np.array([[0, 0], [254, 254], [100, 100], [200, 200]], dtype=np.uint8)  # 4 x 2
    x = image_to_input(img, size_hw=(2, 1))
    # INTER_AREA: each output pixel is the mean of a 2x2 block: 127 and 150
    np.testing.assert_allclose(x[0, :, 0], [2 * 127 / 255 - 1, 2 * 150 / 255 - 1], atol=1e-6)


def test_transform_colour_and_spec_size():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(3401, 200), dtype=np.uint8)
    x = image_to_input(grey)
    assert x.shape == (1, 150, 50) and -1 <= x.min() and x.max() <= 1
    colour = np.repeat(grey[:40, :20, None], 3, axis=2)
    np.testing.assert_allclose(image_to_input(colour, size_hw=(40, 20)), image_to_input(grey[:40, :20], size_hw=(40, 20)))
    with pytest.raises(ConfigError, match="interpolation"):
        image_to_input(grey, interpolation="bogus")


def test_export_images_tree(tiny_dataset, tmp_path):
    mel = dataclasses.replace(CONFIG.mel, n_mels=64, n_fft=512)
    out = tmp_path / "images"
    recs = export_images(tiny_dataset, out, mel_cfg=mel, n_frames=40)
    assert len(recs) == 16
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs[0] == "Test/Angry/03-01-05-01-01-01-05.png" and len(pngs) == 16
    img = read_png(out / "Train" / "Sad" / "03-01-04-01-01-01-01.png")
    assert img.dtype == np.uint8 and img.shape == (64, 40) and img.max() == 255 and img.min() == 0
    x = load_inputs(recs, size_hw=(32, 10))
    assert x.shape == (16, 1, 32, 10) and x.dtype == np.float32
    assert {r["speaker"] for r in recs} == {"1", "2", "5", "6"}


def test_image_grid_figure_has_one_panel_per_split_and_class(tiny_dataset, tmp_path):
    from ser.report.plots import example_records, plot_image_grid

    mel = dataclasses.replace(CONFIG.mel, n_mels=32, n_fft=256)
    recs = export_images(tiny_dataset, tmp_path / "img", mel_cfg=mel, n_frames=20)
    ex = example_records(recs)
    assert sorted(ex) == [(s, c) for s in ("Test", "Train") for c in ("Angry", "Calm", "Happy", "Sad")]
    fig = plot_image_grid(recs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "Train / Angry" and titles[-1] == "Test / Sad" and len(titles) == 8


# ------------------------------------------------------------ known values and edges

def test_scale_to_uint8_maps_lo_to_0_hi_to_255_and_truncates():
    L = np.array([-5.0, 0.0, 0.5, 1.0, 2.0, 3.0, 10.0])
    # (v - 1) / 2 * 255 on [1, 3], clipped outside: 0, 0, 0, 0, 127.5 -> 127, 255, 255
    assert scale_to_uint8(L, 1.0, 3.0).tolist() == [0, 0, 0, 0, 127, 255, 255]
    assert scale_to_uint8(L, 3.0, 1.0).tolist() == [0] * 7  # an empty range gives zeros
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ...without dividing by zero (NaN cast to uint8 is undefined)
        assert scale_to_uint8(L, 1.0, 1.0).tolist() == [0] * 7
    assert scale_to_uint8(L, 1.0, 3.0).dtype == np.uint8


def test_low_at_bottom_is_exactly_the_rows_reversed():
    X = _spec_with_empty_rows()
    up, down = log_mel_image(X, low_at_bottom=False), log_mel_image(X)
    assert np.array_equal(down, up[::-1])
    assert not np.array_equal(down, up[:, ::-1])  # rows, not columns
    assert np.all(down[-1] == 0)  # row 0 of X (an empty filter) is the bottom row


def test_no_signal_at_all_gives_a_black_image():
    assert np.all(log_mel_image(np.zeros((4, 6))) == 0)
    assert log_mel_image(np.zeros((4, 6))).shape == (4, 6)


def test_dynamic_range_counts_from_the_maximum_in_log_units():
    X = np.array([[1.0, np.e ** -1, np.e ** -2, np.e ** -4]])
    # 2 log units kept: e^-2 and below are black, e^-1 halfway (127.5, truncated), 1 is white
    assert log_mel_image(X, dynamic_range=2.0, low_at_bottom=False).tolist() == [[255, 127, 0, 0]]
    # the whole range (4 units): 3/4 -> 191, 1/2 -> 127
    assert log_mel_image(X, low_at_bottom=False).tolist() == [[255, 191, 127, 0]]


def test_transform_size_is_height_by_width():
    img = np.arange(60, dtype=np.uint8).reshape(12, 5)
    assert image_to_input(img, size_hw=(6, 4)).shape == (1, 6, 4)
    assert image_to_input(img, size_hw=(4, 6)).shape == (1, 4, 6)


@pytest.mark.parametrize("interpolation, expected", [("area", [94, 50]), ("linear", [60, 0]), ("nearest", [0, 0])])
def test_transform_interpolation_names_pick_their_filter(interpolation, expected):
    """A 4x shrink of a column: INTER_AREA averages each block of 4 pixels
    ((0+40+80+255)/4 = 93.75 and 200/4); the other filters sample a few pixels."""
    img = np.repeat(np.array([[0], [40], [80], [255], [0], [0], [0], [200]], np.uint8), 2, axis=1)
    x = image_to_input(img, size_hw=(2, 2), interpolation=interpolation)
    np.testing.assert_allclose(x[0, :, 0], np.array(expected) / 127.5 - 1, atol=1e-6)


def test_transform_reads_colour_in_opencv_order():
    blue = np.zeros((2, 2, 3), np.uint8)
    blue[..., 0] = 255  # BGR: pure blue has a grey level of 0.114 * 255 = 29
    np.testing.assert_allclose(image_to_input(blue, size_hw=(2, 2)), 29 / 127.5 - 1, atol=1e-6)


def test_read_png_returns_grey_for_a_colour_file(tmp_path):
    import cv2

    colour = np.zeros((3, 4, 3), np.uint8)
    colour[..., 1] = 200  # green
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    img = read_png(tmp_path / "c.png")
    assert img.shape == (3, 4) and img.dtype == np.uint8
    assert np.all(img == cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))


def test_a_failed_png_write_keeps_the_old_image_and_no_temporary(tmp_path, monkeypatch):
    import cv2

    from ser.features.images import write_png

    path = tmp_path / "clip.png"
    old = np.full((3, 3), 7, np.uint8)
    write_png(path, old)
    monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)
    with pytest.raises(DataError, match=r"clip\.png: OpenCV could not write"):
        write_png(path, np.zeros((3, 3), np.uint8))
    monkeypatch.undo()
    assert np.array_equal(read_png(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.png"]


def test_image_paths_follow_split_class_and_stem():
    from types import SimpleNamespace

    from ser.features.images import image_path, speaker_image_path

    clip = SimpleNamespace(split="Test", class_name="Sad", path="/data/Test/Sad/03-01-04-01-01-01-05.wav")
    assert image_path("/out", clip).as_posix() == "/out/Test/Sad/03-01-04-01-01-01-05.png"
    assert speaker_image_path("/out", clip).as_posix() == "/out/speaker_norm/Test/Sad/03-01-04-01-01-01-05.png"


def test_load_inputs_keeps_the_records_order(tmp_path):
    from ser.features.images import write_png

    recs = []
    for i, level in enumerate((0, 255, 51)):
        write_png(tmp_path / f"{i}.png", np.full((8, 6), level, np.uint8))
        recs.append({"path": str(tmp_path / f"{i}.png")})
    x = load_inputs(recs, size_hw=(4, 3))
    assert x.shape == (3, 1, 4, 3)
    np.testing.assert_allclose(x[:, 0, 0, 0], [-1.0, 1.0, -0.6], atol=1e-6)
    # the interpolation is passed on: a 4x shrink of a column, averaged or sampled
    col = np.repeat(np.array([[0], [40], [80], [255], [0], [0], [0], [200]], np.uint8), 2, axis=1)
    write_png(tmp_path / "col.png", col)
    for interpolation in ("area", "nearest"):
        got = load_inputs([{"path": str(tmp_path / "col.png")}], size_hw=(2, 2), interpolation=interpolation)
        np.testing.assert_array_equal(got[0], image_to_input(col, size_hw=(2, 2), interpolation=interpolation))
    assert not np.array_equal(load_inputs([{"path": str(tmp_path / "col.png")}], size_hw=(2, 2), interpolation="nearest"),
                              load_inputs([{"path": str(tmp_path / "col.png")}], size_hw=(2, 2)))


def test_clip_mel_onset_window_starts_at_the_speech(tmp_path):
    from conftest import write_wav

    from ser.features.images import clip_mel

    sr = 16000
    y = np.concatenate([np.zeros(sr // 2), tone(440, sr, 0.5)]).astype(np.float32)
    path = write_wav(tmp_path / "c.wav", y, sr, "FLOAT")
    mel = dataclasses.replace(CONFIG.mel, n_mels=16, n_fft=512)
    start = clip_mel(path, mel_cfg=mel, n_frames=20, window="start")
    onset = clip_mel(path, mel_cfg=mel, n_frames=20, window="onset")
    assert start.shape == onset.shape == (16, 20)
    assert start.sum() == 0  # 20 frames of 15 ms: all within the leading 0.5 s of silence
    # from the onset (0.39 s: 0.49 - 0.1 margin) the tone arrives after about 0.1 s, within the window
    assert onset[:, -5:].sum() > 0 and onset[:, :3].sum() == 0
    with pytest.raises(ConfigError, match="window"):
        clip_mel(path, mel_cfg=mel, n_frames=20, window="middle")


# ---------------------------------------------- the network's input: the coordinate channel

@pytest.mark.parametrize("h, w", [(150, 50), (16, 16), (12, 20)])
def test_coordinate_channel_varies_along_frequency_only(h, w):
    """What the first convolution of a ``coord=True`` network receives: the
    image as channel 0 and, as channel 1, each row's position, +1 on the top
    row to -1 on the bottom row in equal steps, the same in every column and
    every image whatever the image holds."""
    torch = pytest.importorskip("torch")
    from ser.models.cnn2d import Cnn2d

    net = Cnn2d(3, widths=(4, 4), head="freq", coord=True, in_height=h).eval()
    seen = []
    net.features[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    x = torch.randn(3, 1, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net(x)
    inp = seen[0]
    assert inp.shape == (3, 2, h, w)
    assert torch.equal(inp[:, :1], x)
    coord = inp[:, 1]
    expected = torch.linspace(1, -1, h).view(h, 1).expand(h, w)
    for k in range(3):
        assert torch.allclose(coord[k], expected, atol=1e-6)
    assert torch.equal(coord[:, :, :1].expand_as(coord), coord)  # constant along time
    assert bool((coord[0, 1:, 0] < coord[0, :-1, 0]).all())  # strictly decreasing down the image
    assert net.features[0].in_channels == 2
    # without coord=True the convolution sees the image alone
    plain = Cnn2d(3, widths=(4, 4), head="freq", in_height=h).eval()
    seen.clear()
    plain.features[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        plain(x)
    assert torch.equal(seen[0], x)


# ------------------------------------------------------------ options reach the work (mutation survivors)

def _wav(tmp_path, name, y, sr=16000):
    from conftest import write_wav

    return write_wav(tmp_path / name, y.astype(np.float32), sr, "FLOAT")


def test_clip_mel_is_a_magnitude_spectrogram_and_honours_the_onset_config(tmp_path):
    from ser.config import OnsetConfig
    from ser.features.images import clip_mel

    mel = dataclasses.replace(CONFIG.mel, n_mels=16, n_fft=512)
    quiet = _wav(tmp_path, "q.wav", tone(440, 16000, 0.5, amp=0.1))
    loud = _wav(tmp_path, "l.wav", tone(440, 16000, 0.5, amp=0.2))
    a, b = clip_mel(quiet, mel_cfg=mel, n_frames=20), clip_mel(loud, mel_cfg=mel, n_frames=20)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-4, atol=1e-12)  # power=1: twice the amplitude, twice the value
    sr = 16000
    y = np.concatenate([np.zeros(sr // 2), tone(440, sr, 0.5)])
    path = _wav(tmp_path, "c.wav", y)
    default = clip_mel(path, mel_cfg=mel, n_frames=20, window="onset")
    no_margin = clip_mel(path, mel_cfg=mel, n_frames=20, window="onset", onset=OnsetConfig(margin_s=0.0))
    assert default[:, 0].sum() == 0 and no_margin[:, 0].sum() > 0  # the tone from the first frame without the margin


def test_export_images_passes_every_image_option_on(tiny_dataset, tmp_path):
    from conftest import write_wav

    from ser.config import OnsetConfig
    from ser.features.images import clip_image

    src = tiny_dataset / "Train" / "Angry" / "03-01-05-01-01-01-01.wav"
    write_wav(src, np.concatenate([np.zeros(4000, np.float32), tone(500, 16000, 0.5)]), 16000)  # 0.25 s silence first
    mel = dataclasses.replace(CONFIG.mel, n_mels=32, n_fft=512)
    changed = {"dynamic_range": None, "window": "start", "onset": OnsetConfig(margin_s=0.2)}
    # (a dynamic range, or a window without digital silence, hides the floor: each set shows its options)
    for i, opts in enumerate((dict(fix_floor=False), dict(fix_floor=True, low_at_bottom=False), dict(dynamic_range=3.0),
                              dict(window="onset", onset=OnsetConfig(margin_s=0.0)))):
        lines = []
        recs = export_images(tiny_dataset, tmp_path / f"img{i}", mel_cfg=mel, n_frames=30, log=lines.append, **opts)
        (r,) = [r for r in recs if r["path"].endswith("Train/Angry/03-01-05-01-01-01-01.png")]
        img = read_png(r["path"])
        assert np.array_equal(img, clip_image(src, mel_cfg=mel, n_frames=30, **opts))
        for k in opts:  # each option changes the image: so each one was passed on
            other = (not opts[k]) if isinstance(opts[k], bool) else changed[k]
            assert not np.array_equal(img, clip_image(src, mel_cfg=mel, n_frames=30, **{**opts, k: other})), k
        assert len(lines) == 1 and lines[0].startswith("images: 16 written (") and "speaker" not in lines[0]
        assert 0 <= float(lines[0].split("(")[1].split(" s)")[0]) < 600
    # 200 frames by default
    recs = export_images(tiny_dataset, tmp_path / "default", mel_cfg=mel)
    assert read_png(recs[0]["path"]).shape == (32, 200)
    # by default: the floor fixed, no dynamic range, low bands at the bottom, the file's start
    (r,) = [r for r in recs if r["path"].endswith("Train/Angry/03-01-05-01-01-01-01.png")]
    assert np.array_equal(read_png(r["path"]), clip_image(src, mel_cfg=mel, n_frames=200, fix_floor=True,
                                                          dynamic_range=None, low_at_bottom=True, window="start"))


def test_errors_name_what_is_wrong():
    with pytest.raises(DataError, match=r"expected a 2-D spectrogram \(n_mels, n_frames\), got shape \(5,\)"):
        log_mel_image(np.ones(5))
    with pytest.raises(DataError, match="spectrogram holds negative or non-finite values"):
        log_mel_image(-np.ones((2, 2)))
    with pytest.raises(ConfigError, match="dynamic_range must be > 0, got 0.0"):
        log_mel_image(np.ones((2, 2)), dynamic_range=0.0)
    X = np.array([[1.0, np.e ** -0.25, np.e ** -1]])
    assert log_mel_image(X, dynamic_range=0.5, low_at_bottom=False).tolist() == [[255, 127, 0]]  # under 1 is fine


def test_log_mel_rejects_negative_and_non_finite_values_by_name():
    from ser.features.images import log_mel

    for bad in (-np.ones((2, 2)), np.full((2, 2), np.nan), np.full((2, 2), np.inf)):
        with pytest.raises(DataError, match="^spectrogram holds negative or non-finite values$"):
            log_mel(bad)


def test_log_mel_and_empty_ranges_keep_their_dtypes():
    from ser.features.images import log_mel

    L, signal = log_mel(np.full((2, 3), 0.5, np.float32))
    assert L.dtype == np.float64 and signal.dtype == bool
    assert scale_to_uint8(np.ones((2, 2)), 1.0, 1.0).dtype == np.uint8


def test_signal_to_uint8_flips_by_default():
    from ser.features.images import signal_to_uint8

    V = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert signal_to_uint8(V, V >= 0).tolist() == [[255, 255], [0, 0]]
    assert signal_to_uint8(V, V >= 0, low_at_bottom=False).tolist() == [[0, 0], [255, 255]]


def test_spectrogram2image_passes_its_options_on(tmp_path):
    X = _spec_with_empty_rows()
    img = spectrogram2image(X, tmp_path / "a.png", low_at_bottom=False, fix_floor=False)
    assert np.array_equal(img, log_mel_image(X, low_at_bottom=False, fix_floor=False))
    assert np.array_equal(read_png(tmp_path / "a.png"), img)


def test_write_png_writes_png_whatever_the_target_is_called(tmp_path):
    from ser.features.images import write_png

    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_png(tmp_path / "clip.tmpimg", img)
    assert (tmp_path / "clip.tmpimg").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(read_png(tmp_path / "clip.tmpimg"), img)


def test_speaker_statistics_edges():
    import warnings

    from ser.features.images import log_mel_row_stats, speaker_norm_image, speaker_row_stats, speaker_row_stats_by

    X = np.zeros((4, 7))
    X[0] = 0.2  # a constant row: a variance that rounds below zero must not become NaN
    X[1, 3] = 0.5  # one entry: its value, the floor for its spread
    X[2] = np.linspace(0.1, 1.0, 7)  # row 3: no signal at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = speaker_row_stats([log_mel_row_stats(X)])
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    assert mean[0] == pytest.approx(np.log(0.2 + 1e-9)) and std[0] == pytest.approx(1e-3)
    assert mean[1] == pytest.approx(np.log(0.5 + 1e-9)) and std[1] == pytest.approx(1e-3)
    assert mean[3] == 0.0 and std[3] == 1.0
    by = speaker_row_stats_by([("s", "b.wav", log_mel_row_stats(X))], std_floor=0.5)
    assert by["s"][1][0] == 0.5 and by["s"][1][1] == 0.5  # the floor is passed on
    with pytest.raises(DataError, match="do not fit a spectrogram of 4 rows"):
        speaker_norm_image(X, np.zeros(4), np.ones(3))  # the spread alone of the wrong size
    with pytest.raises(DataError, match="do not fit a spectrogram of 4 rows"):
        speaker_norm_image(X, np.zeros(3), np.ones(4))

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

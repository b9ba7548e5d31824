"""The report as its reader gets it: the PDF names no machine path, the HTML
twin is one file (figures and example clips inside), and a missing figure
stops the build. Rendered with the real templates of the sections 10, 20 and
the appendix, on results built from a tiny data set (no network is trained)."""
import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from conftest import tone, write_wav
from ser.errors import SerError

ROOT = Path(__file__).resolve().parent.parent
OWN_SECTIONS = ("10-data.html.j2", "20-features.html.j2", "90-data.appendix.html.j2")


def pdf_text(path) -> str:
    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(str(path)).pages)


def squash(text: str) -> str:
    """Text without white space or hyphens the layout may have put inside a path."""
    return re.sub(r"[\s\u00ad\u2010]", "", text)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """data.json, features.json, mel_examples.json and its figure, then the report."""
    from ser import pipeline
    from ser.config import CONFIG

    base = tmp_path_factory.mktemp("machine") / "deep" / "where"
    data = base / "EmotionSpeech"
    codes = {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}
    for split, speakers in (("Train", (1, 2)), ("Test", (5, 6))):
        for i, (name, code) in enumerate(codes.items()):
            for a in speakers:
                write_wav(data / split / name / f"03-01-{code}-01-01-01-{a:02d}.wav",
                          tone(300 + 200 * i + 10 * a, 48000, 0.4), sr=48000)
    rep = base / "report"
    (rep / "sections").mkdir(parents=True)
    for f in ("base.html.j2", "print.css", "screen.css"):
        shutil.copy(ROOT / "report" / f, rep / f)
    for f in OWN_SECTIONS:
        shutil.copy(ROOT / "report" / "sections" / f, rep / "sections" / f)
    build, figs = base / "build", base / "figures"
    res = build / "results"
    pipeline.build_card(data, res / "data.json", CONFIG)
    pipeline.build_features(data, build / "cache" / "features.npz", res / "features.json", CONFIG)
    pipeline.figure_mel_examples(data, figs / "mel_examples.png", res / "mel_examples.json", CONFIG)
    pipeline.build_report(rep, res, figs, build / "report.html", build / "report.pdf")
    return {"data": data, "base": base, "rep": rep, "res": res, "figs": figs, "build": build}


def test_pdf_names_the_data_by_name_and_fingerprint_not_by_path(built):
    text = pdf_text(built["build"] / "report.pdf")
    card = json.loads((built["res"] / "data.json").read_text())
    flat = squash(text)
    for path in (built["data"], built["base"], built["data"].parent.parent):
        assert str(path) not in text and squash(str(path)) not in flat, path
    assert card["fingerprint_sha256"] in flat
    assert "EmotionSpeech" in text
    assert "16 clips (Train 8, Test 8)" in " ".join(text.split())


def test_pdf_names_the_features_in_full_with_the_task_s_equation_numbers(built):
    text = " ".join(pdf_text(built["build"] / "report.pdf").split())
    for name in ("spectral centroid (SC)", "spectral bandwidth (SBW)", "spectral band energy (SBE)"):
        assert name in text
    assert all(f"({n})" in text for n in (22, 23, 24))


def test_appendix_holds_the_build_facts(built):
    from ser.report.render import package_versions

    text = " ".join(pdf_text(built["build"] / "report.pdf").split())
    tail = text[text.index("Everything below was recorded by the build"):]
    assert f"torch {package_versions()['torch']}" in tail
    assert "n_mels 3401" in tail and "cnn2d.seeds = 0, 1, 2, 3, 4" in tail
    assert "pip install -r requirements.txt && doit data_dir=DATA" in tail  # not the default place
    assert "card data.json" in tail and "features features.json" in tail  # step times
    assert "Reruns on the same machine are identical" in tail


def test_html_twin_is_one_file_with_figures_and_clips_inside(built, tmp_path):
    page = (built["build"] / "report.html").read_text(encoding="utf-8")
    assert "../" not in page and "file:" not in page
    assert not re.search(r'<link[^>]*stylesheet', page) and "<style>" in page
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]+)"', page)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    # the full path of the data may be in the HTML appendix, and only there
    at = [m.start() for m in re.finditer(re.escape(str(built["data"])), page)]
    assert at and min(at) > page.index('id="appendix"')
    assert f"doit data_dir={built['data']}" in page

    keys = json.loads((built["res"] / "mel_examples.json").read_text())["clips"]
    audio = dict(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,([^"]+)"[^>]*title="([^"]+)"', page))
    audio = {k: v for v, k in audio.items()}
    assert sorted(audio) == sorted(keys) and len(keys) == 8
    for k in keys:
        y, sr = sf.read(io.BytesIO(base64.b64decode(audio[k])))
        assert sr == 16000 and y.ndim == 1 and abs(len(y) / sr - 0.4) < 0.01
        assert 0.3 < abs(y).max() < 0.7  # the tone's amplitude 0.5 survived the resampling

    moved = tmp_path / "elsewhere.html"  # works on its own once moved
    shutil.copy(built["build"] / "report.html", moved)
    assert moved.read_text(encoding="utf-8") == page


@pytest.mark.slow
def test_pdf_has_no_audio_and_is_the_same_bytes_again(built, tmp_path):
    from ser import pipeline

    pdf = (built["build"] / "report.pdf").read_bytes()
    assert b"audio/wav" not in pdf
    out = built["build"] / "again"
    pipeline.build_report(built["rep"], built["res"], built["figs"], out / "report.html", out / "report.pdf")
    assert (out / "report.pdf").read_bytes() == pdf


@pytest.fixture
def small_report(tmp_path):
    rep, res, figs = tmp_path / "report", tmp_path / "build" / "results", tmp_path / "figures"
    (rep / "sections").mkdir(parents=True)
    res.mkdir(parents=True)
    figs.mkdir()
    (rep / "base.html.j2").write_text("<html><head></head><body>{{ body }}</body></html>")
    (rep / "print.css").write_text("body { font-family: 'DejaVu Sans'; }")
    (rep / "screen.css").write_text("body { max-width: 45em; }")
    (rep / "sections" / "10-a.html.j2").write_text(
        '<h2 id="a">A</h2><img src="{{ fig }}/a.svg"><img src="{{ fig }}/{{ r.png }}">'
        '{% if screen and screen.predictions_csv %}<a href="{{ screen.predictions_csv }}">csv</a>{% endif %}')
    (res / "a.json").write_text(json.dumps({"png": "b.png"}))
    (figs / "a.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    (figs / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return rep, res, figs


def write(small, tmp_path, **kw):
    from ser.report.render import write_report

    rep, res, figs = small
    write_report(rep, res, tmp_path / "build" / "report.html", tmp_path / "build" / "report.pdf", figs, {}, **kw)
    return (tmp_path / "build" / "report.html").read_text(encoding="utf-8")


def test_figures_are_embedded_and_predictions_linked_only_when_there(small_report, tmp_path):
    page = write(small_report, tmp_path)
    svg = base64.b64encode((small_report[2] / "a.svg").read_bytes()).decode()
    assert f'src="data:image/svg+xml;base64,{svg}"' in page and 'src="data:image/png;base64,' in page
    assert "predictions.csv" not in page
    (small_report[1] / "predictions.csv").write_text("key,true,predicted\n")
    assert '<a href="results/predictions.csv">' in write(small_report, tmp_path)


def test_a_missing_figure_fails_naming_it_and_writes_nothing(small_report, tmp_path):
    (small_report[2] / "b.png").unlink()
    with pytest.raises(SerError, match=r"missing figures: .*figures/b\.png"):
        write(small_report, tmp_path)
    assert not (tmp_path / "build" / "report.pdf").exists() and not (tmp_path / "build" / "report.html").exists()


def test_a_missing_example_clip_fails_naming_it(small_report, tmp_path):
    with pytest.raises(SerError, match=r"gone/Train/Sad/x\.wav: no such file"):
        write(small_report, tmp_path, audio_clips={"Train/Sad/x.wav": tmp_path / "gone" / "Train" / "Sad" / "x.wav"})


def test_a_missing_screen_stylesheet_is_named(small_report, tmp_path):
    (small_report[0] / "screen.css").unlink()
    with pytest.raises(SerError, match=r"screen\.css: the HTML report's stylesheet is missing"):
        write(small_report, tmp_path)


def test_a_second_section_may_read_the_same_results_file(small_report):
    from ser.report.render import discover_sections

    rep = small_report[0]
    (rep / "sections" / "90-a.appendix.html.j2").write_text("x")
    assert discover_sections(rep) == [("a", "sections/10-a.html.j2"), ("a", "sections/90-a.appendix.html.j2")]


def test_step_times_are_read_from_any_results_schema():
    from ser.report.render import recorded_threads, step_seconds

    results = {
        "cnn2d": {"timings_s": {"validation": 60.0, "total": 100.0, "torch_threads": 2}},
        "data": {"seconds": 3.5},
        "features": {"extract_seconds": 20.0, "n_clips": 4},
        "cnn1d": {"seconds": {"validation": 30.0, "test": 1.0}, "training": {"threads": 4}},
        "svm": {"classes": []},  # no time recorded: left out
        "mel_examples": {"clips": []},
    }
    steps = step_seconds(results)
    assert [s["step"] for s in steps] == ["card", "features", "cnn1d", "cnn2d"]
    by = {s["step"]: s for s in steps}
    assert by["card"]["seconds"] == 3.5 and by["features"]["seconds"] == 20.0
    assert by["cnn2d"] == {"step": "cnn2d", "file": "cnn2d.json", "seconds": 100.0, "phases": {"validation": 60.0}}
    assert by["cnn1d"]["seconds"] is None and by["cnn1d"]["phases"] == {"validation": 30.0, "test": 1.0}
    assert recorded_threads(results) == {"cnn2d": 2, "cnn1d": 4}


def test_every_config_value_is_in_the_tables():
    import dataclasses

    from ser.config import CONFIG
    from ser.report.render import config_tables

    tables = {t["section"]: dict(t["rows"]) for t in config_tables(CONFIG)}
    flat = dataclasses.asdict(CONFIG)
    assert tables["build"] == {"seed": str(CONFIG.seed)}
    for section, values in flat.items():
        if isinstance(values, dict):
            assert set(tables[section]) == set(values)
    assert tables["cnn2d"]["seeds"] == ", ".join(str(s) for s in CONFIG.cnn2d.seeds)

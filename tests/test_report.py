import json

import pytest

from ser.errors import SerError
from ser.report.filters import pct, pct_interval
from ser.report.render import check_images, discover_sections, render_html


@pytest.fixture
def mini_report(tmp_path):
    rep, res = tmp_path / "report", tmp_path / "results"
    (rep / "sections").mkdir(parents=True)
    res.mkdir()
    (rep / "base.html.j2").write_text(
        "<html><head></head><body>{% for h in toc %}[{{ h.level }}:{{ h.title }}]{% endfor %}{{ body }}</body></html>")
    (rep / "sections" / "20-b.html.j2").write_text('<h2 id="b">B {{ r.x | pct }}</h2>')
    (rep / "sections" / "10-a.html.j2").write_text('<h2 id="a">A</h2><h3 id="a1">A &amp; one</h3>{{ r.y }}')
    (res / "a.json").write_text(json.dumps({"y": "<script>"}))
    (res / "b.json").write_text(json.dumps({"x": 0.5468}))
    return rep, res


def test_sections_in_number_order_with_toc_and_escaping(mini_report):
    rep, res = mini_report
    assert discover_sections(rep) == [("a", "sections/10-a.html.j2"), ("b", "sections/20-b.html.j2")]
    out = render_html(rep, res, "../figures", {})
    assert out.index('id="a"') < out.index('id="b"')
    assert "[2:A][3:A &amp; one][2:B 54.7%]" in out
    assert "&lt;script&gt;" in out and "<script>" not in out


def test_missing_value_fails_the_build(mini_report):
    from jinja2 import UndefinedError

    rep, res = mini_report
    (res / "b.json").write_text(json.dumps({}))
    with pytest.raises(UndefinedError, match="x"):
        render_html(rep, res, "../figures", {})


def test_missing_results_file_is_named(mini_report):
    rep, res = mini_report
    (res / "a.json").unlink()
    with pytest.raises(SerError, match=r"a\.json: results file of section 'a' is missing"):
        render_html(rep, res, "../figures", {})


def test_missing_figure_fails(tmp_path):
    (tmp_path / "there.png").write_bytes(b"x")
    check_images('<img src="there.png">', tmp_path)
    with pytest.raises(SerError, match="gone.svg"):
        check_images('<img alt="" src="there.png"><img src="gone.svg">', tmp_path)


def test_report_with_a_missing_figure_is_not_rendered(mini_report, tmp_path):
    from ser.report.render import write_report

    rep, res = mini_report
    (rep / "print.css").write_text("body { font-family: 'DejaVu Sans'; }")
    (rep / "screen.css").write_text("body { max-width: 45em; }")
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "there.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    (rep / "sections" / "30-c.html.j2").write_text(
        '<h2 id="c">C</h2><img src="{{ fig }}/there.svg"><img src="{{ fig }}/gone.svg">')
    (res / "c.json").write_text("{}")
    out = tmp_path / "build"
    out.mkdir()
    with pytest.raises(SerError, match=r"missing figures: [^,]*/figures/gone\.svg$"):  # only the missing one
        write_report(rep, res, out / "report.html", out / "report.pdf", figures, {})
    assert not (out / "report.pdf").exists() and not (out / "report.html").exists()
    (figures / "gone.svg").write_text((figures / "there.svg").read_text())
    write_report(rep, res, out / "report.html", out / "report.pdf", figures, {})
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_filters():
    assert pct(0.5) == "50.0%" and pct(0.123, 0) == "12%"
    assert pct_interval((0.4, 0.6)) == "40.0–60.0%"
    with pytest.raises(SerError):
        pct(float("nan"))


def test_same_inputs_give_the_same_pdf_bytes(mini_report, tmp_path):
    from ser.report.render import write_report

    rep, res = mini_report
    (rep / "print.css").write_text("body { font-family: 'DejaVu Sans'; }")
    (rep / "screen.css").write_text("body { max-width: 45em; }")
    import time

    out = []
    for i in range(2):
        time.sleep(1.1 * i)  # a timestamp in the PDF would now differ
        write_report(rep, res, tmp_path / f"r{i}.html", tmp_path / f"r{i}.pdf", tmp_path, {})
        out.append((tmp_path / f"r{i}.pdf").read_bytes())
    assert out[0][:5] == b"%PDF-" and out[0] == out[1]


@pytest.mark.parametrize("p, text", [(0.0, "< 0.001"), (0.000999, "< 0.001"), (0.001, "= 0.001"),
                                     (0.0213, "= 0.021"), (0.0999, "= 0.100"), (0.1, "= 0.10"), (1.0, "= 1.00")])
def test_pvalue_filter_at_its_edges(p, text):
    from ser.report.filters import pvalue

    assert pvalue(p) == text

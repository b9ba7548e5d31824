"""Render the report: Jinja2 templates -> HTML -> PDF (WeasyPrint).

A section is one template ``report/sections/NN-key.html.j2`` and one results
file ``build/results/key.json``; the template sees that file as ``r`` (and
every results file of the folder as ``results[name]``). Sections appear in the order of NN. To add
a section, add both files: nothing else changes.
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

from .errors import ConfigError, SerError
from .io import atomic_path, load_json

SECTION_NAME = re.compile(r"^(\d+)-([a-z0-9_]+)\.html\.j2$")
HEADING = re.compile(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def discover_sections(report_dir: str | Path) -> list[tuple[str, str]]:
    """``[(key, template name)]`` in the order of their number."""
    found = []
    for p in sorted((Path(report_dir) / "sections").glob("*.html.j2")):
        m = SECTION_NAME.match(p.name)
        if not m:
            raise ConfigError(f"{p}: a section template is named NN-key.html.j2 (e.g. 20-svm.html.j2)")
        found.append((int(m.group(1)), m.group(2), f"sections/{p.name}"))
    return [(key, name) for _, key, name in sorted(found)]


# -- filters: formatting only ------------------------------------------------

def pct(x, digits: int = 1) -> str:
    """0.5468 -> '54.7%'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        raise SerError("a percentage to print is missing (None or NaN)")
    return f"{100 * x:.{digits}f}%"


def pct_interval(pair, digits: int = 1) -> str:
    """(0.45, 0.63) -> '45.0–63.0%'."""
    lo, hi = pair
    return f"{100 * lo:.{digits}f}–{100 * hi:.{digits}f}%"


def num(x, digits: int = 2) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1e-2 or abs(x) >= 1e4 else f"{x:.{digits}f}"


def seconds(x) -> str:
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


def make_env(report_dir: str | Path):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(report_dir)), undefined=StrictUndefined,
                      autoescape=True, lstrip_blocks=True)
    env.filters.update(pct=pct, pct_interval=pct_interval, num=num, seconds=seconds)
    return env


def render_html(report_dir, results_dir, figures_rel: str, meta: dict) -> str:
    """The whole report as one HTML string.

    Sections are rendered first; their ``<h2 id>``/``<h3 id>`` headings make
    the table of contents, so no title is written twice.
    """
    from markupsafe import Markup

    env = make_env(report_dir)
    sections = discover_sections(report_dir)
    results = {p.name[: -len(".json")]: load_json(p) for p in sorted(Path(results_dir).glob("*.json"))}
    for key, _ in sections:
        if key not in results:
            raise SerError(f"{Path(results_dir) / (key + '.json')}: results file of section '{key}' is missing "
                           "(run its doit task)")
    bodies = []
    for key, name in sections:
        bodies.append(env.get_template(name).render(r=results[key], results=results, fig=figures_rel, meta=meta))
    body = "\n".join(bodies)
    toc = [{"level": int(lv), "id": i, "title": Markup(t).striptags()} for lv, i, t in HEADING.findall(body)]
    return env.get_template("base.html.j2").render(body=Markup(body), toc=toc, meta=meta, results=results)


def check_images(html_text: str, base_dir: Path) -> None:
    """Every ``<img src>`` must exist: a missing figure fails the build."""
    missing = []
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', html_text):
        src = html.unescape(src)
        if "://" in src:
            continue
        if not (base_dir / src).is_file():
            missing.append(str((base_dir / src).resolve()))
    if missing:
        raise SerError("the report refers to missing figures: " + ", ".join(missing))


def write_report(report_dir, results_dir, html_path, pdf_path, figures_dir, meta: dict) -> None:
    """Render HTML and PDF atomically; the HTML sits beside the PDF and works on its own."""
    import logging
    import os

    from weasyprint import CSS, HTML

    html_path, pdf_path = Path(html_path), Path(pdf_path)
    figures_rel = os.path.relpath(figures_dir, html_path.parent)
    text = render_html(report_dir, results_dir, figures_rel, meta)
    check_images(text, html_path.parent)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    # Font subsets carry a "modified" time; a fixed one makes equal inputs give
    # byte-identical PDFs (fontTools reads SOURCE_DATE_EPOCH).
    os.environ.setdefault("SOURCE_DATE_EPOCH", "946684800")
    css = CSS(filename=str(Path(report_dir) / "print.css"))
    with atomic_path(pdf_path) as tmp:
        HTML(string=text, base_url=str(html_path.parent) + "/").write_pdf(str(tmp), stylesheets=[css])
    with atomic_path(html_path) as tmp:
        css_rel = os.path.relpath(Path(report_dir) / "print.css", html_path.parent)
        tmp.write_text(text.replace("</head>", f'<link rel="stylesheet" href="{css_rel}"></head>', 1))

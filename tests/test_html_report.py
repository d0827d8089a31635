"""``lpc check --html``: one self-contained page, rendered by a real browser."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lpc import cli
from lpc.check import CheckRequest, run
from lpc.html_report import STYLE, escape, page, render_html, table
from lpc.patch import Patch

DATA = Path(__file__).parent / "data"
SNAP = DATA / "procdump-6.18"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


class _Page(HTMLParser):
    """Every tag, every URL the page would fetch, every text run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def test_the_page_is_self_contained_and_says_the_verdict_first() -> None:
    report = run(CheckRequest(dump=str(SNAP), patch=Patch.parse("do_wait"), models=("all",)))
    page = _page(render_html(report))
    assert "script" not in page.tags and "link" not in page.tags
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    text = " ".join(page.text)
    first_verdict = text.index("overall:")
    assert first_verdict < text.index("Culprits")
    for name in report.results:
        assert f"Model {name} " in text
    assert "Models side by side" in text


def test_dump_text_is_escaped(tmp_path: Path) -> None:
    """A comm any process can set (prctl PR_SET_NAME) never becomes markup."""
    before = run(CheckRequest(dump=str(SNAP), patch=Patch.parse("do_wait")))
    stacks = (SNAP / "stacks.txt").read_text()
    for t in before.results["klp"].blocking:  # every culprit's comm: the group shows it
        stacks = stacks.replace(f"comm={t.facts.comm} ", "comm=<b>x</b> ")
    snap = tmp_path / "snap"
    shutil.copytree(SNAP, snap)
    (snap / "stacks.txt").write_text(stacks)
    report = run(CheckRequest(dump=str(snap), patch=Patch.parse("do_wait")))
    page = render_html(report, plot=False)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_page_is_one_self_contained_document_with_an_escaped_title() -> None:
    """The pieces other pages (``lpc fleet --html``) are built from."""
    hostile = '<script src="https://evil.example/x.js"></script>&"'
    doc = page(hostile, table(["comm", "tasks"], [[hostile, "3"]], numeric=(1,)))
    parsed = _page(doc)
    assert doc.startswith("<!doctype html>") and doc.count("<!doctype") == 1
    assert parsed.tags.count("html") == parsed.tags.count("head") == 1
    assert parsed.tags.count("body") == parsed.tags.count("title") == 1
    assert doc.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in doc and f"<style>{STYLE}</style>" in doc
    # The hostile title and cell are text now; outside them, nothing to run or fetch.
    rest = doc.replace(escape(hostile), "").lower()
    assert "<script" not in doc.lower() and "<link" not in rest
    assert "http://" not in rest and "https://" not in rest
    assert "script" not in parsed.tags and not parsed.urls
    assert f"<title>{escape(hostile)}</title>" in doc
    assert '<td class="num">3</td>' in doc and escape("&\"") == "&amp;&quot;"


def test_the_plot_is_rendered_without_a_temporary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run(CheckRequest(dump=str(SNAP), patch=Patch.parse("do_wait"), models=("all",)))
    # matplotlib's one-time setup (font cache) is not the page's business.
    import matplotlib.pyplot  # noqa: F401

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the HTML page made a temporary file")

    for name in ("mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile",
                 "TemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    parsed = _page(render_html(report))
    [url] = parsed.urls
    png = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


@pytest.mark.skipif(BROWSER is None, reason="no headless browser (apt-get install chromium)")
def test_a_headless_browser_renders_it(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    code = cli.main(["check", "--dump", str(SNAP), "--patch", "do_wait", "--html", str(out)])
    assert code in (0, 1, 4)
    assert f"wrote {out}" in capsys.readouterr().err
    assert BROWSER is not None
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*args, "--dump-dom", out.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "Culprits" in dom and "Tasks not yet switched vs time" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*args, f"--screenshot={shot}", "--window-size=1200,1600", out.as_uri()],
                   capture_output=True, timeout=120, check=True, cwd=tmp_path)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    # Something was drawn: text, table rules and the plot, not one flat colour.
    assert pixels.shape[0] >= 1000 and float(pixels[..., :3].std()) > 0.05

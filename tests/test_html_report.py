"""``lpc check --html``: one self-contained page, rendered by a real browser."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lpc import cli
from lpc.check import CheckRequest, run
from lpc.html_report import render_html
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

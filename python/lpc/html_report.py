"""``lpc check --html report.html``: the check as one self-contained page.

One file that opens anywhere, offline, and can be attached to a ticket. No
script, no external style sheet, font or image: the style is inline, and the
plot is a PNG in a ``data:`` URI. Everything that comes from the dump (comms,
function names, reasons quoting them) is HTML-escaped.

The page, top to bottom:
- what the kernel would refuse;
- the verdict of each model;
- the source and the kernel profile;
- the grouped culprits (the text report's table, :func:`lpc.report.culprit_table`);
- the plot (:func:`lpc.plot.plot_check_png`);
- for several models, the per-model table;
- the evidence notes, the machine's state, the warnings.

:data:`STYLE`, :func:`escape`, :func:`table` and :func:`page` are the pieces
other pages of lpc are built from (``lpc fleet --html``), so that they look
alike and stay self-contained the same way.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from lpc.check import Report
from lpc.report import culprit_table, patch_functions_text, verdict_text
from lpc.result import CheckResult

__all__ = ["STYLE", "escape", "page", "render_html", "table", "write_html"]

#: The inline style sheet of every lpc page (no external sheet or font).
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; white-space: nowrap; }
code, td.id { font-family: ui-monospace, monospace; white-space: nowrap; }
.verdict { font-size: 1.25em; font-weight: 600; padding: .4em .6em; border-radius: .3em; }
.converges { background: #e3f5e1; color: #1d5e17; }
.blocked, .refused { background: #fbe4e2; color: #8a1c12; }
.unknown { background: #fdf3d7; color: #7a5a00; }
.note { color: #555; }
img { max-width: 100%; }
"""


def escape(text: object) -> str:
    """``str(text)`` safe inside an element and inside a quoted attribute
    (quotes escaped too): dump text such as comms is set by any process."""
    return html.escape(str(text), quote=True)


def _verdict_class(converges: bool | None) -> str:
    return {True: "converges", False: "blocked", None: "unknown"}[converges]


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          numeric: Sequence[int] = ()) -> str:
    """An HTML table, every cell escaped; the columns at the indexes in
    ``numeric`` are right-aligned (``td.num`` of :data:`STYLE`)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(c)}</td>' if i in numeric
                         else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    """The whole document around ``body`` (HTML, already escaped by the
    caller): doctype, UTF-8, the escaped ``title`` and :data:`STYLE` inline,
    so that the file needs nothing else to open."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _plot_png(report: Report) -> bytes | None:
    """The plot as PNG bytes, written to no file (None when matplotlib is missing)."""
    try:
        from lpc.plot import plot_check_png
    except ImportError:  # pragma: no cover - matplotlib is a test dependency
        return None
    return plot_check_png(report.results, "tasks not yet switched: " + ", ".join(report.results))


def _model_section(result: CheckResult, refused: str | None) -> str:
    s = result.summary()
    converges = False if refused else result.converges
    word = f"REFUSED ({refused})" if refused else verdict_text(result.converges)
    eta = f" (worst case ~{s['eta_s']:g} s)" if s["eta_s"] else ""
    header, rows = culprit_table(result)
    culprits = (table(header, rows, numeric=(0,)) if rows
                else '<p class="note">No task blocks the transition now.</p>')
    profile = result.model_profile or {}
    kernel = (f"{profile.get('kernel_release') or 'unknown release'} "
              f"({profile.get('release_from')}), {profile.get('arch') or 'unknown arch'}"
              + (f", profile {profile['profile']}" if profile.get("profile") else "")
              + f": switches at {', '.join(profile.get('switch_points', ())) or 'nothing'}")
    assumed = "".join(f"<li>{escape(a)}</li>" for a in profile.get("assumed", ()))
    return (
        f"<h2>Model {escape(result.model)} (LEAVE_{escape(result.cell[0])} / "
        f"SWITCH_{escape(result.cell[1])})</h2>"
        f'<p class="verdict {_verdict_class(converges)}">{escape(word)}{escape(eta)} — '
        f"{escape(s['reason'])}</p>"
        f"<p>{s['tasks']} tasks: {s['switch']} switch now, {s['blocked']} blocked, "
        f"{s['running']} running, {s['unreliable']} unreliable.</p>"
        f"<p>Kernel: {escape(kernel)}</p>" + (f"<ul class=\"note\">{assumed}</ul>" if assumed else "")
        + f"<h3>Culprits</h3>{culprits}"
    )


def render_html(report: Report, plot: bool = True) -> str:
    """The page for a check with a patch (module docstring)."""
    machine = report.machine
    refusals = machine.refusals if machine is not None else ()
    refused = ", ".join(f"-{c}" for c, _ in refusals) or None
    first = next(iter(report.results.values()))
    parts = [f"<h1>lpc check: {escape(patch_functions_text(first.patch))}</h1>",
             f'<p class="note">{escape(report.description)}</p>']
    parts += [f'<p class="verdict refused">refused: -{escape(c)}: {escape(why)}</p>'
              for c, why in refusals]
    if report.converges is not None or not refusals:
        parts.append(f'<p class="verdict {_verdict_class(report.converges)}">'
                     f"overall: {escape(verdict_text(report.converges))}</p>")
    for result in report.results.values():
        parts.append(_model_section(result, refused))
    png = _plot_png(report) if plot else None
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<h2>Tasks not yet switched vs time</h2><img alt="tasks not yet '
                     f'switched vs time" src="data:image/png;base64,{data}">')
    if len(report.results) > 1:
        rows = [[name, f"{r.cell[0]}/{r.cell[1]}", str(r.summary()["switch"]),
                 str(r.summary()["blocked"]), verdict_text(r.converges), r.summary()["reason"]]
                for name, r in report.results.items()]
        parts.append("<h2>Models side by side</h2>" + table(
            ["model", "cell", "switch", "blocked", "verdict", "why"], rows, numeric=(2, 3)))
    notes = [*first.warnings]
    if machine is not None:
        notes += [*machine.notes, *(f"unknown: {u}" for u in machine.unknowns)]
        notes.append(f"loaded patches checked against: {machine.loaded_from}")
    if notes:
        parts.append("<h2>Evidence and notes</h2><ul>"
                     + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return page(f"lpc check: {verdict_text(report.converges)}", "\n".join(parts))


def write_html(report: Report, path: str | Path) -> Path:
    """Write the page to ``path``."""
    out = Path(path)
    out.write_text(render_html(report), encoding="utf-8")
    return out

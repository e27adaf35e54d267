"""The scorecard as one self-contained HTML page (reports/index.html): no scripts, no network."""
from __future__ import annotations

from collections import Counter
from html import escape

from pipeline.scorecard.card import Summary
from pipeline.scorecard.claims import VERDICTS, Row

COLOURS = {   # verdict -> (background, text)
    "matched": ("#d9f2d9", "#135213"), "beaten": ("#c3ebc3", "#0d400d"), "explained": ("#dce8fa", "#1b3f73"),
    "short": ("#fde2c4", "#7a3d00"), "differs": ("#f9d0d0", "#7a1010"), "ours only": ("#eceff3", "#2f3b4a"),
    "not comparable": ("#f1eee4", "#5c5237"), "not run": ("#f3f3f3", "#777777"),
    "done": ("#d9f2d9", "#135213"), "partly run": ("#fdf0c4", "#6b5200"),
}
MEANING = {
    "matched": "ours equals the seed's number (to its printed precision, or the tolerance shown)",
    "beaten": "ours is better than the seed's",
    "explained": "ours differs and the row says why (the seed's typo or error, or a different setting)",
    "short": "ours falls short of the seed's by the amount shown",
    "differs": "ours differs and no reason is known",
    "ours only": "the seed printed no number; ours is compared with a baseline where there is one",
    "not comparable": "ours exists but cannot be held against the seed's (smoke scale, other data, other hardware)",
    "not run": "ours does not exist yet: the row says what it needs",
}
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
     padding:0 1.5em;color:#1d232b}
h1{font-size:1.8em;margin:.2em 0} h2{font-size:1.25em;margin:2em 0 .3em;border-bottom:1px solid #dde2e8;padding-bottom:.2em}
p.meta{color:#4a5563;margin:.3em 0 1.2em} p.line{margin:.2em 0 .6em;color:#333}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em} th,td{padding:.32em .6em;text-align:left;
     vertical-align:top;border-bottom:1px solid #e6e9ee} th{background:#f5f7fa;font-weight:600;font-size:.92em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chip{display:inline-block;padding:.05em .55em;border-radius:.8em;font-size:.88em;white-space:nowrap}
.why{color:#4a5563;font-size:.92em} a{color:#1558b0} .legend td{border:none;padding:.15em .6em}
.counts .chip{margin-right:.3em}
"""


def chip(verdict: str, count: int | None = None) -> str:
    bg, fg = COLOURS.get(verdict, ("#eee", "#333"))
    text = verdict if count is None else f"{count} {verdict}"
    return f'<span class="chip" style="background:{bg};color:{fg}">{escape(text)}</span>'


def _links(s: Summary) -> str:
    out = []
    if "report" in s.links:
        out.append(f'<a href="{escape(s.links["report"])}">report</a>')
    if "mlflow" in s.links:
        out.append(f'<a href="{escape(s.links["mlflow"])}">MLflow runs</a>')
    return " · ".join(out) or '<span class="why">—</span>'


def _counts(s: Summary) -> str:
    return "".join(chip(v, s.counts[v]) for v in VERDICTS if s.counts.get(v))


def render(summaries: list[Summary], rows: list[Row], scale: str, mlflow_hint: str) -> str:
    """The whole page: a headline, one line per experiment, then every row by experiment."""
    total = Counter(r.verdict for r in rows)
    seeded = sum(1 for r in rows if r.values["seed"] is not None)
    done = sum(s.status == "done" for s in summaries)
    head = (f"{len(rows)} rows, {seeded} of them numbers the seed reports printed; {done} of {len(summaries)} "
            f"experiments done. Results at <b>scale: {escape(scale)}</b>"
            + (" — tiny subsets and two epochs: trained numbers are not comparable with the seeds'." if scale == "smoke"
               else "."))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Did it reproduce? — the scorecard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>Did it reproduce?</h1>",
             f'<p class="meta">Every number the five seed reports printed, ours beside it, and a verdict. {head}</p>',
             f'<p class="counts">{"".join(chip(v, total[v]) for v in VERDICTS if total[v])}</p>',
             "<table><tr><th>Experiment</th><th>Seed report</th><th>Status</th><th>What reproduced</th>"
             "<th>Links</th></tr>"]
    for s in summaries:
        parts.append(f'<tr><td><a href="#{escape(s.name)}"><code>{escape(s.name)}</code></a><br>{escape(s.title)}</td>'
                     f'<td class="why">{escape(s.seed)}</td><td>{chip(s.status)}</td>'
                     f"<td>{escape(s.line)}</td><td>{_links(s)}</td></tr>")
    parts.append("</table>")
    parts.append(f'<p class="why">{escape(mlflow_hint)}</p>')
    by_exp: dict[str, list[Row]] = {}
    for r in rows:
        by_exp.setdefault(r.experiment, []).append(r)
    for s in summaries:
        parts.append(f'<h2 id="{escape(s.name)}"><code>{escape(s.name)}</code> — {escape(s.title)}</h2>')
        parts.append(f'<p class="line">{chip(s.status)} {escape(s.line)} &nbsp; {_links(s)}</p>')
        parts.append("<table><tr><th>What</th><th>Seed</th><th>Ours</th><th>Verdict</th><th>Why / by how much</th></tr>")
        for r in by_exp.get(s.name, []):
            parts.append(f"<tr><td>{escape(r.item)}</td><td class=num>{escape(r.seed)}</td>"
                         f"<td class=num>{escape(r.ours)}</td><td>{chip(r.verdict)}</td>"
                         f'<td class="why">{escape(r.detail)}</td></tr>')
        parts.append("</table>")
    parts.append("<h2>What the verdicts mean</h2><table class=legend>")
    parts += [f"<tr><td>{chip(v)}</td><td>{escape(MEANING[v])}</td></tr>" for v in VERDICTS]
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"

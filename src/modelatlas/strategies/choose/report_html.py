"""The decision as one standalone HTML page: no script, no network, opens offline. The chart
is inline SVG: quality (with its interval as an error bar) against p95 latency under load; the
quality axis spans 0 to 1 for a bounded metric, so noise does not look dramatic."""

from __future__ import annotations

from html import escape

from modelatlas.strategies.choose.recommend import latency, money, quality
from modelatlas.strategies.choose.results import Decision, Point

W, H, PAD = 640, 360, 56

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1a1a1a}
table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.pick{background:#eef7ee}.out{color:#777}
.box{border-left:4px solid #2a7a2a;padding:.5em 1em;background:#f6faf6}svg text{font-size:12px}
@media (max-width:700px){table,tbody,tr,td,th{display:block}thead{display:none}td{border:0}
tr{border-bottom:1px solid #ddd}}
"""


def decision_html(d: Decision) -> str:
    """The standalone page: the section below with its own style."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Decision {escape(d.id)}</title>
<style>{STYLE}</style></head><body>
<h1>Which model: decision {escape(d.id)}</h1>
{decision_section(d)}
</body></html>"""


def decision_section(d: Decision) -> str:
    """The decision's body, also shown inside the studio's page."""
    rows = "".join(_row(p, d) for p in d.points)
    short = "".join(
        f"<li><b>{escape(c.model)}</b>: {escape('; '.join(c.why))}</li>" for c in d.shortlist.candidates
    )
    left = "".join(f"<li>{escape(x.model)}: {escape(x.why)}</li>" for x in d.shortlist.left_out[:30])
    more = len(d.shortlist.left_out) - 30
    left += f"<li>and {more} more</li>" if more > 0 else ""
    return f"""<p>Dataset <code>{escape(d.dataset)}</code>, metric <b>{escape(d.metric)}</b>,
load at {d.concurrency} concurrent requests; {d.created_at}; spent {money(d.spent_usd)} on hosted calls.</p>
<div class="box"><p>{escape(d.recommendation)}</p></div>
<p>Why {escape(d.metric)}: {escape(d.metric_reason or "given")}.</p>
<h2>Candidates</h2>
<div class="table-wrap"><table class="data">
<caption class="visually-hidden">Candidates and their figures</caption>
<thead><tr><th scope="col">model</th><th scope="col">{escape(d.metric)} [95% CI]</th>
<th scope="col">$ per 1,000 requests</th><th scope="col">p95 latency</th>
<th scope="col">tokens/s (all streams)</th>
<th scope="col">Pareto front</th><th scope="col">note</th></tr></thead>
<tbody>{rows}</tbody></table></div>
{chart(d)}
<h2>Shortlist</h2><p>{d.shortlist.matched} of {d.shortlist.searched} catalog models match the constraints.</p>
<ul>{short}</ul>
{f"<h3>Matched but not tested</h3><ul>{left}</ul>" if left else ""}
<p>Evaluation run: <code>{escape(d.run_id or "-")}</code>
(<code>modelatlas runs show {escape(d.run_id or "")}</code>).</p>"""


def _row(p: Point, d: Decision) -> str:
    css = "pick" if p.model == d.pick else ("out" if not p.eligible else "")
    note = (
        "picked"
        if p.model == d.pick
        else ("tied with the pick" if p.model in d.tied_with else (p.why_not or ""))
    )
    tps = "-" if p.tokens_per_s is None else f"{p.tokens_per_s:.1f}"
    return (
        f'<tr class="{css}"><td>{escape(p.model)}</td><td class="n">{escape(quality(p))}</td>'
        f'<td class="n">{money(p.cost_per_1k)}</td><td class="n">{latency(p)}</td><td class="n">{tps}</td>'
        f"<td>{'yes' if p.on_front else 'no'}</td><td>{escape(note)}</td></tr>"
    )


def chart(d: Decision) -> str:
    """Quality against p95 latency; points without a latency are listed under the chart."""
    shown = [p for p in d.points if p.quality is not None and p.p95_ms is not None]
    missing = [p.model for p in d.points if p not in shown]
    if not shown:
        return "<p>No candidate has both a score and a latency to chart.</p>"
    values = [v for p in shown for v in (p.quality, p.ci_low, p.ci_high) if v is not None]
    bounded = all(0.0 <= v <= 1.0 for v in values)
    y0, y1 = (0.0, 1.0) if bounded else (min(values), max(values) or 1.0)
    x1 = max(p.p95_ms or 0.0 for p in shown) * 1.15 or 1.0

    def x(v: float) -> float:
        return PAD + (W - 2 * PAD) * v / x1

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - y0) / ((y1 - y0) or 1.0)

    parts = [f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#444"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#444"/>',
             f'<text x="{W / 2}" y="{H - 14}" text-anchor="middle">p95 latency, ms (0 to {x1:,.0f})</text>',
             f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">'
             f"{escape(d.metric)} ({y0:g} to {y1:g})</text>"]  # fmt: skip
    for i, p in enumerate(shown):
        cx, cy = x(p.p95_ms or 0.0), y(p.quality or 0.0)
        if p.ci_low is not None and p.ci_high is not None:
            parts.append(
                f'<line x1="{cx:.1f}" y1="{y(p.ci_low):.1f}" x2="{cx:.1f}" '
                f'y2="{y(p.ci_high):.1f}" stroke="#888"/>'
            )
        color = "#2a7a2a" if p.model == d.pick else ("#1f5fa8" if p.on_front else "#999")
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color}">'
            f"<title>{escape(p.model)}</title></circle>"
        )
        right = cx > W * 0.6  # a label near the right edge goes to the left of its point
        anchor, lx = ("end", cx - 8) if right else ("start", cx + 8)
        label = escape(p.model.split("/")[-1])
        parts.append(
            f'<text x="{lx:.1f}" y="{cy - 6 - 12 * (i % 2):.1f}" text-anchor="{anchor}">{label}</text>'
        )
    for v in (y0, (y0 + y1) / 2, y1):
        parts.append(f'<text x="{PAD - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2g}</text>')
    note = f"<p>Not charted (no latency or no score): {escape(', '.join(missing))}.</p>" if missing else ""
    svg = (
        f'<svg viewBox="0 0 {W} {H}" width="100%" style="max-width:{W}px" role="img" '
        'aria-label="quality against latency">'
        f"{''.join(parts)}</svg>"
    )
    legend = "<p>Error bars: 95% intervals. Green: the pick; blue: on the Pareto front.</p>"
    return f"<h2>Quality against latency</h2>{svg}{legend}{note}"

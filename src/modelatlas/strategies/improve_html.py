"""The `improve` comparison as an HTML section for the standalone report."""

from __future__ import annotations

import jinja2

from modelatlas.evals.results import MetricSummary
from modelatlas.formats import usd
from modelatlas.strategies.results import ImproveReport

SECTION = """<section><h2>Improve: which approach is worth it?</h2>
<p><strong>Recommendation:</strong> {{ r.recommendation }}</p>
<table><tr><th>approach</th><th>{{ r.metric }} (95% CI)</th><th>vs zero-shot</th><th>$ per 1,000 queries</th>
<th>latency p50 / p95 (s)</th><th>prompt tokens</th><th>training (once)</th></tr>
{% for a in rows %}<tr><td>{{ a.approach }}<br><span class="muted">{{ a.arm }}</span></td>
<td class="num">{{ a.quality }}</td><td>{{ a.gain }}</td><td class="num">{{ a.cost }}</td>
<td class="num">{{ a.latency }}</td><td class="num">{{ a.tokens }}</td><td>{{ a.training }}</td></tr>
{% endfor %}
</table>{% for note in r.notes %}<p class="muted">{{ note }}</p>{% endfor %}</section>"""


def improve_section(result: ImproveReport) -> str:
    metric = result.metric
    rows = []
    for a in result.approaches:
        if a.missing:
            continue
        stats, vs = a.metrics[metric], a.vs_baseline
        rows.append(
            {
                "approach": a.approach,
                "arm": a.arm,
                "quality": _ci(stats),
                "gain": "baseline"
                if vs is None
                else f"{vs.diff:+.3f} [{vs.ci_low:+.3f}, {vs.ci_high:+.3f}] p={vs.p_value:.3g}: {vs.verdict}",
                "cost": usd(a.cost_per_1k),
                "latency": f"{_n(a.latency_p50)} / {_n(a.latency_p95)}",
                "tokens": f"{a.context_tokens:.0f}" if a.context_tokens else "?",
                "training": f"{a.training_seconds / 60:.1f} min" if a.training_seconds else "",
            }
        )
    env = jinja2.Environment(autoescape=True)
    return env.from_string(SECTION).render(r=result, rows=rows)


def _ci(stats: MetricSummary) -> str:
    if stats.mean is None:
        return "-"
    if stats.ci_low is None:
        return f"{stats.mean:.3f}"
    return f"{stats.mean:.3f} [{stats.ci_low:.3f}, {stats.ci_high:.3f}]"


def _n(value) -> str:
    return "?" if value is None else f"{value:.2f}"

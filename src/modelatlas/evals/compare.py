"""Two runs side by side: the same arms and metrics, with a paired test when the data is the same."""

from __future__ import annotations

from modelatlas.evals import records
from modelatlas.evals.finish import summary_for
from modelatlas.evals.results import ComparisonRow, RunComparison
from modelatlas.evals.types import ItemResult, arm_label


def compare_runs(run_a: str, run_b: str) -> RunComparison:
    """Rows of (arm, metric, mean in A, mean in B, difference, and a paired CI and p when possible)."""
    from modelatlas.evals.metrics.registry import get_metric
    from modelatlas.evals.stats import paired_bootstrap, permutation_test

    info_a, info_b = records.get_run(run_a), records.get_run(run_b)
    sum_a, sum_b = summary_for(run_a), summary_for(run_b)
    same_data = info_a.dataset_hash == info_b.dataset_hash
    items_a, items_b = _by_arm(run_a), _by_arm(run_b)
    rows = []
    for arm in sum_a.models:
        other = sum_b.arm(arm.model)
        if other is None:
            continue
        for metric, stats in arm.metrics.items():
            if metric not in other.metrics:
                continue
            a, b = stats.mean, other.metrics[metric].mean
            row = ComparisonRow(
                arm=arm.model, metric=metric, a=a, b=b, diff=None if a is None or b is None else a - b
            )
            if same_data:
                row = _paired(
                    row,
                    items_a[arm.model],
                    items_b[arm.model],
                    get_metric(metric),
                    paired_bootstrap,
                    permutation_test,
                )
            rows.append(row)
    return RunComparison(a=info_a, b=info_b, same_dataset=same_data, rows=rows)


def _by_arm(run_id: str) -> dict[str, dict[str, ItemResult]]:
    arms: dict[str, dict[str, ItemResult]] = {}
    for r in records.load_items(run_id):
        arms.setdefault(arm_label(r.model, r.strategy), {})[r.item_id] = r
    return arms


def _paired(
    row: ComparisonRow, a: dict, b: dict, metric, paired_bootstrap, permutation_test
) -> ComparisonRow:
    """``row`` with the paired test over the items both runs scored ok (unchanged with under two)."""
    name = row.metric
    shared = [
        i
        for i in a
        if i in b
        and a[i].scores.get(name)
        and b[i].scores.get(name)
        and a[i].scores[name].ok
        and b[i].scores[name].ok
    ]
    if len(shared) < 2:
        return row
    sa = [a[i].scores[name] for i in shared]
    sb = [b[i].scores[name] for i in shared]
    diff, low, high = paired_bootstrap(
        len(shared),
        lambda idx: metric.aggregate([sa[j] for j in idx]),
        lambda idx: metric.aggregate([sb[j] for j in idx]),
    )
    p = permutation_test([s.value for s in sa], [s.value for s in sb])
    better = (diff > 0) == metric.higher_is_better
    verdict = "no significant difference" if low <= 0 <= high else ("a better" if better else "b better")
    paired = {"diff": diff, "ci_low": low, "ci_high": high, "p_value": p, "verdict": verdict}
    return ComparisonRow.model_validate(row.model_dump() | paired)

"""The evaluation as a page a manager can read: ``tailor evaluate --report DIR``.

:func:`write_report` takes exactly the dict ``tailor evaluate --json`` prints (with
``recall_curve`` per model when the run computed one), so the page never disagrees with the
JSON. It writes ``DIR/index.html`` (one file, inline CSS, nothing fetched from the network) and
the PNG charts it shows by relative path, drawn by matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from tailor.evaluate.runner import CURVE_KS

__all__ = ["CURVE_KS", "headline", "winner", "write_report"]

BASELINE = "popularity"
"""The model every other one is compared with in the headline."""

RECALL_CURVE_PNG = "recall_curve.png"
ACCURACY_COVERAGE_PNG = "accuracy_vs_coverage.png"
RECALL_CI_PNG = "recall_ci.png"
SEGMENTS_PNG = "recall_by_segment.png"
FAIRNESS_GROUPS_PNG = "fairness_groups.png"
PARITY_PNG = "exposure_parity.png"
TOP_VALUES = 15  # attribute values drawn in an exposure chart; the rest are summed as "other"
_SHARE_COLOURS = ("#9aa5b1", "#3e7cb1", "#2f8f46")  # purchases, slots, slots with parity
_NOT_FIGURES = ("ci95", "recall_curve", "segments")  # per-model keys that are not one number

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 62rem; padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d9dee3; }
.headline { font-size: 1.25rem; background: #eef6ee; border-left: 5px solid #2f8f46;
            padding: .8rem 1rem; margin: 1rem 0; }
.muted { color: #616e7c; }
.note { background: #f5f7fa; border-left: 5px solid #9aa5b1; padding: .6rem 1rem; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d9dee3; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f7fa; }
th.winner { background: #dff0e2; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
"""


def write_report(data: Mapping[str, Any], directory: Path) -> Path:
    """Write the evaluation report into ``directory``; returns the path of its ``index.html``.

    Parameters
    ----------
    data : mapping
        What ``tailor evaluate --json`` prints: ``split`` (kind, test_days, test_fraction, k,
        exclude_purchased, train and test summaries), ``models`` (name to figures: the metrics
        @k, coverage, ..., ``ci95``, optionally ``recall_curve``, cut-off to recall (the
        cut-offs may be ints or, after a JSON round trip, strings), and optionally
        ``segments``, segment to {customers, recall@k, ndcg@k, precision@k}), ``default`` and
        optionally ``fairness`` (:func:`tailor.evaluate.fairness.audit`).
    directory : Path
        Created if missing; ``index.html`` and the PNG charts are (over)written there.
    """
    models: Mapping[str, Mapping[str, Any]] = data["models"]
    if not models:
        raise ValueError("the evaluation has no models to report")
    k = int(data["split"]["k"])
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    charts = []
    curves = {name: _curve(f) for name, f in models.items() if f.get("recall_curve")}
    if curves:
        _recall_curve_chart(curves, k, directory / RECALL_CURVE_PNG)
        charts.append(
            (
                RECALL_CURVE_PNG,
                "Recall by list length",
                "The share of what each customer bought next that a list of the given length "
                "contains; longer lists find more.",
            )
        )
    _accuracy_coverage_chart(models, k, directory / ACCURACY_COVERAGE_PNG)
    charts.append(
        (
            ACCURACY_COVERAGE_PNG,
            "Accuracy vs catalog coverage",
            f"Up is better ranking (NDCG@{k}); right means the lists show more of the catalog. "
            "Popularity shows everyone much the same items.",
        )
    )
    _recall_ci_chart(models, k, directory / RECALL_CI_PNG)
    charts.append(
        (
            RECALL_CI_PNG,
            f"Recall@{k} with 95 % intervals",
            "Bars whose error bars overlap may not differ beyond chance (bootstrap over "
            "customers).",
        )
    )

    segmented = {name: f["segments"] for name, f in models.items() if f.get("segments")}
    if segmented:
        _segment_chart(segmented, k, directory / SEGMENTS_PNG)

    fairness = _fairness_section(data, directory)
    path = directory / "index.html"
    path.write_text(_page(data, headline(data), charts, segmented, fairness), encoding="utf-8")
    return path


def winner(models: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """The model with the best NDCG@k (recall@k breaks ties; NaN counts as worst)."""
    ndcg, recall = f"ndcg@{k}", f"recall@{k}"
    return max(models, key=lambda n: (_number(models[n].get(ndcg)), _number(models[n].get(recall))))


def headline(data: Mapping[str, Any]) -> str:
    """The winner and by how much it beats the best other model and popularity, in words.

    E.g. "hybrid finds 2.4 % more of what customers bought next than recency_frequency, the
    best other model, and 145.7 % more than popularity (recall@10 0.1415, 0.1382 and 0.0576)."
    """
    models = data["models"]
    k = int(data["split"]["k"])
    best = winner(models, k)
    others = {name: f for name, f in models.items() if name != best}
    if not others:
        return (
            f"{best} is the only model evaluated (recall@{k} {_fmt(models[best][f'recall@{k}'])})."
        )
    runner_up = winner(others, k)
    recall = {name: _number(models[name][f"recall@{k}"]) for name in models}
    amount, word = _relative(recall[best], recall[runner_up])
    text = f"{best} finds {amount} of what customers bought next {word} {runner_up}"
    shown = [best, runner_up]
    if BASELINE in others and runner_up != BASELINE:
        amount, word = _relative(recall[best], recall[BASELINE])
        text += f", the best other model, and {amount} {word} {BASELINE}"
        shown.append(BASELINE)
    values = " vs ".join(_fmt(models[name][f"recall@{k}"]) for name in shown)
    ndcg = " vs ".join(_fmt(models[name][f"ndcg@{k}"]) for name in shown)
    return f"{text} (recall@{k} {values}); it ranks best by NDCG@{k} ({ndcg})."


def format_figure(value: Any) -> str:
    """A figure as the report's table shows it: 4 decimals, ints as they are, NaN as a dash."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


# -- charts ---------------------------------------------------------------------------------------


def _recall_curve_chart(curves: Mapping[str, dict[int, float]], k: int, path: Path) -> None:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for name, curve in curves.items():
        cuts = sorted(curve)
        ax.plot(cuts, [curve[c] for c in cuts], marker="o", label=name)
    ax.axvline(k, color="#9aa5b1", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    all_cuts = sorted({c for curve in curves.values() for c in curve})
    ax.set_xticks(all_cuts, [str(c) for c in all_cuts])
    ax.set_xlabel("list length k (dotted: the evaluated k)")
    ax.set_ylabel("recall@k")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)


def _accuracy_coverage_chart(models: Mapping[str, Mapping[str, Any]], k: int, path: Path) -> None:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    top = 0.0
    for n, (name, figures) in enumerate(models.items()):
        x, y = _number(figures.get("coverage")), _number(figures.get(f"ndcg@{k}"))
        top = max(top, y)
        ax.scatter([x], [y], s=50)
        # Labels alternate above and below their points, so close neighbours stay readable.
        offset = (6, 6) if n % 2 == 0 else (6, -12)
        ax.annotate(name, (x, y), xytext=offset, textcoords="offset points", fontsize="small")
    ax.set_xlabel("catalog coverage (share of items shown to anyone)")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_xlim(0, 1.25)  # room right of full coverage for the labels
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylim(0, max(top, 0.01) * 1.15)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)


def _recall_ci_chart(models: Mapping[str, Mapping[str, Any]], k: int, path: Path) -> None:
    names = list(models)
    values = [_number(models[n].get(f"recall@{k}")) for n in names]
    intervals = [models[n].get("ci95", {}).get(f"recall@{k}") for n in names]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    yerr = None
    if all(interval is not None for interval in intervals):
        low = [max(0.0, v - _number(i[0])) for v, i in zip(values, intervals, strict=True)]
        high = [max(0.0, _number(i[1]) - v) for v, i in zip(values, intervals, strict=True)]
        yerr = [low, high]
    ax.bar(names, values, yerr=yerr, capsize=4, color="#3e7cb1")
    ax.set_ylabel(f"recall@{k}")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelrotation=20)
    fig.savefig(path, dpi=100)


def _segment_chart(segmented: Mapping[str, Mapping[str, Any]], k: int, path: Path) -> None:
    """Grouped bars: one group per segment, one bar per model, recall@k."""
    labels = _segment_labels(segmented)
    names = list(segmented)
    width = 0.8 / len(names)
    fig = Figure(figsize=(max(7.0, 0.9 * len(labels) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    for n, name in enumerate(names):
        values = [_number(segmented[name].get(label, {}).get(f"recall@{k}")) for label in labels]
        positions = [i + (n - (len(names) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(positions, [max(v, 0.0) for v in values], width=width, label=name)
    customers = [_segment_size(segmented, label) for label in labels]
    ax.set_xticks(
        range(len(labels)),
        [f"{label}\n({n:,})" for label, n in zip(labels, customers, strict=True)],
    )
    ax.tick_params(axis="x", labelsize="small", labelrotation=20)
    ax.set_ylabel(f"recall@{k}")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=min(4, len(names)))
    fig.savefig(path, dpi=100)


# -- the page -------------------------------------------------------------------------------------


def _page(
    data: Mapping[str, Any],
    headline_text: str,
    charts: list[tuple[str, str, str]],
    segmented: Mapping[str, Mapping[str, Any]] | None = None,
    fairness: list[str] | None = None,
) -> str:
    split = data["split"]
    k = int(split["k"])
    models = data["models"]
    best = winner(models, k)
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Recommendation evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>How well do the recommenders predict what customers buy next?</h1>",
        f'<p class="muted">{html.escape(_split_sentence(split))}</p>',
        f'<p class="headline" id="headline">{html.escape(headline_text)}</p>',
    ]
    default = data.get("default")
    if default:
        sections.append(
            f"<p>The build uses <b>{html.escape(str(default))}</b> by default: it is chosen on a "
            "validation period carved from the training data, never by these test figures, so "
            "it can differ from the winner here.</p>"
        )
    for file, title, caption in charts:
        sections += [
            f"<h2>{html.escape(title)}</h2>",
            f'<img src="{file}" alt="{html.escape(title)}">',
            f'<p class="muted">{html.escape(caption)}</p>',
        ]
    if not any(f.get("recall_curve") for f in models.values()):
        sections.append('<p class="muted">No recall curve: the run computed recall at k only.</p>')
    sections.append("<h2>By customer segment</h2>")
    if segmented:
        sections += [
            f'<img src="{SEGMENTS_PNG}" alt="Recall by customer segment">',
            f'<p class="muted">Recall@{k} of each model within each RFM segment (segments as of '
            "the training cut; customers evaluated in brackets). A model that wins overall can "
            "lose on a segment that matters to you.</p>",
            _segment_table(segmented, k),
        ]
    else:
        sections.append(
            '<p class="note">Per-segment bars (how each model does for each group of customers) '
            "appear here when customer segments exist: this data has no purchases to segment "
            "customers by.</p>"
        )
    sections += fairness or []
    sections += [
        "<h2>All figures</h2>",
        _metrics_table(models, best),
        "<h2>The split</h2>",
        _split_table(split),
        "</body></html>",
    ]
    return "\n".join(sections) + "\n"


def _metrics_table(models: Mapping[str, Mapping[str, Any]], best: str) -> str:
    """One row per figure (the keys of --json, in its order), one column per model."""
    keys: list[str] = []
    for figures in models.values():
        keys += [key for key in figures if key not in keys and key not in _NOT_FIGURES]
    head = "".join(
        f"<th{' class=winner' if name == best else ''}>{html.escape(name)}</th>" for name in models
    )
    rows = [f"<table id=metrics><tr><th>figure</th>{head}</tr>"]
    for key in keys:
        cells = "".join(
            f'<td data-model="{html.escape(name)}" data-metric="{html.escape(key)}">'
            f"{format_figure(figures.get(key, math.nan))}</td>"
            for name, figures in models.items()
        )
        rows.append(f"<tr><td>{html.escape(key)}</td>{cells}</tr>")
    interval_keys: list[str] = []
    for figures in models.values():
        interval_keys += [key for key in figures.get("ci95", {}) if key not in interval_keys]
    for key in interval_keys:
        cells = "".join(
            f"<td>{_interval(figures.get('ci95', {}).get(key))}</td>" for figures in models.values()
        )
        rows.append(f"<tr><td>{html.escape(key)} 95 % interval</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _segment_table(segmented: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """One row per (segment, figure), one column per model, plus the segment's customers."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in segmented)
    rows = [f"<table id=segments><tr><th>segment</th><th>figure</th>{head}</tr>"]
    for label in _segment_labels(segmented):
        size = format_figure(_segment_size(segmented, label))
        for metric in ("recall", "ndcg", "precision"):
            key = f"{metric}@{k}"
            cells = "".join(
                f'<td data-model="{html.escape(name)}" data-segment="{html.escape(label)}" '
                f'data-metric="{key}">{format_figure(segments.get(label, {}).get(key, math.nan))}'
                "</td>"
                for name, segments in segmented.items()
            )
            first = f"{html.escape(label)} ({size} customers)" if metric == "recall" else ""
            rows.append(f"<tr><td>{first}</td><td>{key}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _segment_labels(segmented: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every segment label, in the order the figures list them (largest first)."""
    labels: list[str] = []
    for segments in segmented.values():
        labels += [label for label in segments if label not in labels]
    return labels


def _segment_size(segmented: Mapping[str, Mapping[str, Any]], label: str) -> int:
    return max(int(s[label]["customers"]) for s in segmented.values() if label in s)


# -- fairness -------------------------------------------------------------------------------------


def _fairness_section(data: Mapping[str, Any], directory: Path) -> list[str]:
    """The page's fairness section (and its charts, drawn into ``directory``)."""
    audit = data.get("fairness")
    if not audit:
        return [
            "<h2>Fairness</h2>",
            '<p class="note">Run <code>tailor evaluate --fairness</code> to see how well the '
            "lists serve each group of customers (age, income, household) and how much of them "
            "each department and brand gets, against what customers buy.</p>",
        ]
    k = int(data["split"]["k"])
    model = str(audit["model"])
    overall = _number(data["models"].get(model, {}).get(f"recall@{k}"))
    parts = [
        "<h2>Fairness: whom the lists serve well</h2>",
        f"<p>Figures of <b>{html.escape(model)}</b>, the default. The worst/best ratio divides "
        f"the lowest group's mean by the highest's, among groups with a known value and at "
        f"least {int(audit['min_customers'])} customers evaluated: 1 means every group is "
        "served alike. Bars show 95 % intervals (bootstrap over the group's customers): "
        "where the worst and best groups' intervals overlap, the gap may be chance.</p>",
    ]
    groups = audit.get("groups") or {}
    if groups:
        _groups_chart(groups, k, overall, directory / FAIRNESS_GROUPS_PNG)
        parts.append(f'<img src="{FAIRNESS_GROUPS_PNG}" alt="Recall by customer group">')
        parts.append("<ul>")
        parts += [
            f"<li>{html.escape(_group_sentence(attribute, quality, k))}</li>"
            for attribute, quality in groups.items()
        ]
        parts.append("</ul>")
        parts += [_groups_table(attribute, quality, k) for attribute, quality in groups.items()]
        parts.append('<p class="muted">* not in the ratio: unknown value or too few customers.</p>')
    else:
        parts.append('<p class="note">The customers table holds no attribute that forms groups '
                     "(age band, income band, household size, ...).</p>")  # fmt: skip
    parts.append("<h2>Fairness: what the lists show</h2>")
    exposure = audit.get("exposure") or {}
    if not exposure:
        parts.append('<p class="note">The catalogue holds no attribute with a few values '
                     "(department, brand) to measure exposure by.</p>")  # fmt: skip
    used: set[str] = set()
    for attribute, shown in exposure.items():
        file = _chart_name(attribute, used)
        _shares_chart(
            shown["values"],
            {"share of purchases": "purchases", "share of slots": "slots"},
            f"Share of purchases and of recommendation slots, by {attribute}",
            directory / file,
        )
        parts += [
            f"<h3>By {html.escape(attribute)}</h3>",
            f'<img src="{file}" alt="Exposure by {html.escape(attribute)}">',
            f"<p>{html.escape(_exposure_sentence(attribute, shown))}</p>",
            _exposure_table(attribute, shown),
        ]
    parity = audit.get("parity")
    if parity:
        _shares_chart(
            parity["exposure"],
            {"share of purchases": "purchases", "share of slots": "slots_before",
             "share of slots with parity": "slots_after"},
            f"Exposure by {parity['attribute']}, with and without the parity re-rank",
            directory / PARITY_PNG,
        )  # fmt: skip
        parts += [
            "<h2>Fairness: what exposure parity would cost</h2>",
            f'<img src="{PARITY_PNG}" alt="Exposure before and after the parity re-rank">',
            f"<p>{html.escape(_parity_sentence(parity, k))}</p>",
            _parity_table(parity, k),
        ]
    brief = audit.get("models") or {}
    if len(brief) > 1:
        parts += ["<h3>Every model in brief</h3>", _fairness_models_table(brief, k)]
    return parts


def _group_sentence(attribute: str, quality: Mapping[str, Any], k: int) -> str:
    key = f"recall@{k}"
    worst, best = quality["worst"].get(key), quality["best"].get(key)
    if worst is None or best is None:
        return f"By {attribute}: too few groups with enough customers to compare."
    groups = quality["groups"]
    low, high = groups[worst], groups[best]
    ratio = _number(quality["worst_best_ratio"].get(key))
    text = (
        f"By {attribute}, the lists of the worst-served group ({worst}, {low['customers']:,} "
        f"customers) hold {_percent(low[key])} of what its customers bought next (recall@{k}), "
        f"{_percent(ratio, 0)} of the best-served group's {_percent(high[key])} ({best})"
    )
    low_ci, high_ci = low.get("ci95", {}).get(key), high.get("ci95", {}).get(key)
    if low_ci and high_ci:
        overlap = _number(low_ci[1]) >= _number(high_ci[0])
        text += (
            "; their intervals overlap, so the gap may be chance."
            if overlap
            else "; their intervals do not overlap: a gap worth looking into."
        )
    else:
        text += "."
    return text


def _groups_table(attribute: str, quality: Mapping[str, Any], k: int) -> str:
    metrics = [f"recall@{k}", f"ndcg@{k}"]
    head = "".join(f"<th>{m}</th><th>{m} 95 % interval</th>" for m in metrics)
    rows = [
        f'<table class="fairness-groups" data-attribute="{html.escape(attribute)}">'
        f"<tr><th>{html.escape(attribute)}</th><th>customers</th>{head}</tr>"
    ]
    compared = set(quality.get("compared") or [])
    for label, group in quality["groups"].items():
        mark = "" if label in compared else " *"
        cells = "".join(
            f'<td data-group="{html.escape(label)}" data-metric="{m}">'
            f"{format_figure(group.get(m, math.nan))}</td>"
            f"<td>{_interval(group.get('ci95', {}).get(m))}</td>"
            for m in metrics
        )
        rows.append(
            f"<tr><td>{html.escape(label)}{mark}</td>"
            f"<td>{format_figure(int(group['customers']))}</td>{cells}</tr>"
        )
    ratios = quality["worst_best_ratio"]
    cells = "".join(
        f"<td>{format_figure(_plain_float(ratios.get(m)))}</td><td></td>" for m in metrics
    )
    rows.append(f"<tr><td>worst / best</td><td></td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _exposure_sentence(attribute: str, shown: Mapping[str, Any]) -> str:
    values = shown["values"]
    gap = _number(shown["gap"])
    text = (
        f"The lists' mix by {attribute} differs from what customers buy by {_percent(gap)} of "
        "the slots (the exposure gap: the share of slots that would have to change hands for "
        "the lists to mirror purchases)."
    )
    if len(values) >= 2:
        # By the difference of the shares, not their ratio: a value with 0.1 % of purchases
        # shown 0.3 % of the time is no headline.
        excess = {
            v: _plain_float(f["slots"]) - _plain_float(f["purchases"]) for v, f in values.items()
        }
        over = max(values.items(), key=lambda vf: excess[vf[0]])
        under = min(values.items(), key=lambda vf: excess[vf[0]])
        text += (
            f" Most over-shown: {over[0]} ({_percent(over[1]['slots'])} of the slots, "
            f"{_percent(over[1]['purchases'])} of purchases); most under-shown: {under[0]} "
            f"({_percent(under[1]['slots'])} of the slots, {_percent(under[1]['purchases'])} of "
            "purchases)."
        )
    return text


def _exposure_table(attribute: str, shown: Mapping[str, Any]) -> str:
    rows = [
        f'<table class="exposure" data-attribute="{html.escape(attribute)}"><tr>'
        f"<th>{html.escape(attribute)}</th><th>share of slots</th><th>share of purchases</th>"
        "<th>slots / purchases</th></tr>"
    ]
    for value, figures in shown["values"].items():
        cells = "".join(
            f'<td data-value="{html.escape(value)}" data-figure="{key}">'
            f"{format_figure(_plain_float(figures.get(key)))}</td>"
            for key in ("slots", "purchases", "ratio")
        )
        rows.append(f"<tr><td>{html.escape(value)}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _parity_sentence(parity: Mapping[str, Any], k: int) -> str:
    before, after, change = parity["before"], parity["after"], parity["relative_change"]
    attribute, strength = parity["attribute"], _number(parity["strength"])
    aim = (
        "match their shares of purchases"
        if strength >= 1
        else f"move {_percent(strength, 0)} of the way towards their shares of purchases"
    )
    recall, ndcg = f"recall@{k}", f"ndcg@{k}"
    return (
        f"Re-picking each list of {k} from the model's top {parity['candidates']} so that the "
        f"shares of the slots by {attribute} {aim} changes "
        f"{_percent(_number(parity['lists_changed']), 0)} of the lists. The exposure gap goes "
        f"from {_percent(before['exposure_gap'])} to {_percent(after['exposure_gap'])} of the "
        f"slots. The lists then hold {_relative_change(change[recall])} of what customers "
        f"bought next (recall@{k} {_fmt(before[recall])} to {_fmt(after[recall])}) and rank it "
        f"{_relative_change(change[ndcg], 'worse', 'better')} (NDCG@{k} {_fmt(before[ndcg])} "
        f"to {_fmt(after[ndcg])}).{_chance(parity['change'].get('ci95', {}), (recall, ndcg))}"
    )


def _chance(intervals: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """Which changes a 95 % interval (paired, over customers) says may be chance."""
    chance = [key for key in keys if _includes_zero(intervals.get(key))]
    real = [key for key in keys if intervals.get(key) and key not in chance]
    parts = []
    if chance:
        parts.append(f"the change in {' and '.join(chance)} may be chance (its 95 % interval "
                     "includes 0)")  # fmt: skip
    if real:
        parts.append(f"the change in {' and '.join(real)} is beyond chance")
    return f" Over these customers, {'; '.join(parts)}." if parts else ""


def _includes_zero(interval: Any) -> bool:
    if not interval:
        return False
    return _plain_float(interval[0]) <= 0 <= _plain_float(interval[1])


def _parity_table(parity: Mapping[str, Any], k: int) -> str:
    rows = ["<table id=parity><tr><th></th><th>before</th><th>after</th><th>change</th>"
            "<th>change 95 % interval</th></tr>"]  # fmt: skip
    for key in (f"recall@{k}", f"ndcg@{k}", "exposure_gap"):
        before, after = parity["before"][key], parity["after"][key]
        interval = parity["change"].get("ci95", {}).get(key)
        rows.append(
            f'<tr><td>{key}</td><td data-figure="{key}" data-when="before">'
            f"{format_figure(_plain_float(before))}</td>"
            f'<td data-figure="{key}" data-when="after">{format_figure(_plain_float(after))}</td>'
            f"<td>{format_figure(_plain_float(after) - _plain_float(before))}</td>"
            f"<td>{_interval(interval)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _fairness_models_table(brief: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """One row per model: the worst/best recall ratio of each customer attribute, the exposure
    gap of each item attribute and, with parity, its cost."""
    key = f"recall@{k}"
    groups = list(dict.fromkeys(a for f in brief.values() for a in f["worst_best_ratio"]))
    items = list(dict.fromkeys(a for f in brief.values() for a in f["exposure_gap"]))
    parity = any("parity" in f for f in brief.values())
    head = "".join(f"<th>{html.escape(a)} worst/best</th>" for a in groups)
    head += "".join(f"<th>{html.escape(a)} exposure gap</th>" for a in items)
    if parity:
        head += f"<th>{key} change with parity</th><th>exposure gap with parity</th>"
    rows = [f"<table id=fairness-models><tr><th>model</th>{head}</tr>"]
    for name, figures in brief.items():
        cells = "".join(
            f"<td>{format_figure(_plain_float(figures['worst_best_ratio'].get(a, {}).get(key)))}"
            "</td>"
            for a in groups
        )
        cells += "".join(
            f"<td>{format_figure(_plain_float(figures['exposure_gap'].get(a)))}</td>" for a in items
        )
        if parity:
            cost = figures.get("parity") or {}
            cells += (
                f"<td>{format_figure(_plain_float(cost.get('change', {}).get(key)))}</td>"
                f"<td>{format_figure(_plain_float(cost.get('after', {}).get('exposure_gap')))}"
                "</td>"
            )
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _groups_chart(
    groups: Mapping[str, Mapping[str, Any]], k: int, overall: float, path: Path
) -> None:
    """One panel per customer attribute: recall@k per group with its 95 % interval."""
    key = f"recall@{k}"
    columns = 2 if len(groups) > 1 else 1
    rows = math.ceil(len(groups) / columns)
    fig = Figure(figsize=(10 if columns == 2 else 6, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (attribute, quality) in zip(axes, groups.items(), strict=False):
        labels = list(quality["groups"])
        values = [max(_number(quality["groups"][g].get(key)), 0.0) for g in labels]
        low, high = [], []
        for g, v in zip(labels, values, strict=True):
            interval = quality["groups"][g].get("ci95", {}).get(key) or [v, v]
            low.append(max(0.0, v - _plain_float(interval[0])))
            high.append(max(0.0, _plain_float(interval[1]) - v))
        compared = set(quality.get("compared") or [])
        colours = ["#3e7cb1" if g in compared else "#b8c4ce" for g in labels]
        ax.bar(range(len(labels)), values, yerr=[low, high], capsize=3, color=colours)
        if math.isfinite(overall):
            ax.axhline(overall, color="#616e7c", linestyle=":", linewidth=1)
        sizes = [int(quality["groups"][g]["customers"]) for g in labels]
        # Slant the labels when they would not fit side by side (a panel is about 400 px wide,
        # a character of x-small text about 5 px).
        slanted = max(len(g) for g in labels) * 5 > 400 / len(labels)
        ax.set_xticks(
            range(len(labels)),
            [
                f"{g}{' ' if slanted else chr(10)}({n:,})"
                for g, n in zip(labels, sizes, strict=True)
            ],
            rotation=40 if slanted else 0,
            ha="right" if slanted else "center",
            rotation_mode="anchor",
            fontsize="x-small",
        )
        ratio = _number(quality["worst_best_ratio"].get(key))
        title = f"{attribute} (worst/best {ratio:.2f})" if math.isfinite(ratio) else attribute
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel(key)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=100)


def _shares_chart(
    values: Mapping[str, Mapping[str, Any]], series: Mapping[str, str], title: str, path: Path
) -> None:
    """Horizontal bars, one group per attribute value, one bar per series (a share)."""
    shares = {
        value: [max(_plain_float(figures.get(key)), 0.0) for key in series.values()]
        for value, figures in values.items()
    }
    shown = sorted(shares, key=lambda v: -max(shares[v]))[:TOP_VALUES]
    rest = [v for v in shares if v not in shown]
    labels = [v for v in shares if v in shown]  # the order of the figures: by purchases
    bars = [shares[v] for v in labels]
    if rest:
        labels.append(f"other ({len(rest)})")
        bars.append([sum(shares[v][n] for v in rest) for n in range(len(series))])
    height = 0.8 / len(series)
    fig = Figure(figsize=(7, 1.2 + 0.22 * len(series) * len(labels)), layout="constrained")
    ax = fig.subplots()
    for n, name in enumerate(series):
        positions = [i + (n - (len(series) - 1) / 2) * height for i in range(len(labels))]
        colour = _SHARE_COLOURS[n % len(_SHARE_COLOURS)]
        ax.barh(positions, [b[n] for b in bars], height=height, label=name, color=colour)
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)


def _chart_name(attribute: str, used: set[str]) -> str:
    """A file name for an attribute's exposure chart, safe and unique within the report."""
    slug = re.sub(r"[^a-z0-9]+", "_", attribute.lower()).strip("_") or "attribute"
    name, n = f"exposure_{slug}.png", 2
    while name in used:
        name, n = f"exposure_{slug}_{n}.png", n + 1
    used.add(name)
    return name


def _split_table(split: Mapping[str, Any]) -> str:
    train, test = split.get("train") or {}, split.get("test") or {}
    keys = list(dict.fromkeys([*train, *test]))
    rows = ["<table id=split><tr><th></th><th>train</th><th>test</th></tr>"]
    for key in keys:
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{_plain(train.get(key))}</td>"
            f"<td>{_plain(test.get(key))}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _split_sentence(split: Mapping[str, Any]) -> str:
    kind, k = split["kind"], split["k"]
    if kind == "temporal":
        days = _days(split.get("test_days"))
        how = f"trained on everything before the last {days} days, tested on them"
    elif kind == "last-basket":
        how = "tested on each customer's last basket, trained on everything before it"
    elif kind == "random":
        whose = "item's customers" if split.get("holdout_by") == "item" else "customer's items"
        how = f"tested on a random {_plain(split.get('test_fraction'))} of each {whose}"
    else:
        how = f"split {kind}"
    test = split.get("test") or {}
    span = ""
    if test.get("first_event") and test.get("last_event"):
        span = f" ({str(test['first_event'])[:10]} to {str(test['last_event'])[:10]})"
    only_new = "; only items new to the customer count" if split.get("exclude_purchased") else ""
    threshold = split.get("relevance_threshold")
    if threshold is not None:
        only_new += f"; only ratings of {_plain(threshold)} or more count as relevant"
    return f"A {kind} split: {how}{span}; each model shows every customer {k} items{only_new}."


# -- helpers --------------------------------------------------------------------------------------


def _curve(figures: Mapping[str, Any]) -> dict[int, float]:
    return {int(cut): _number(value) for cut, value in figures["recall_curve"].items()}


def _number(value: Any) -> float:
    """A figure as a float; missing or NaN is -inf so that it sorts last."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(number) else number


def _percent(share: Any, decimals: int = 1) -> str:
    """A share as the page writes it: "37.7 %"; missing or NaN as a dash."""
    value = _plain_float(share)
    return "—" if math.isnan(value) else f"{100 * value:.{decimals}f} %"


def _relative_change(change: Any, less: str = "less", more: str = "more") -> str:
    """A relative change in words: "0.7 % less", "1.2 % more" or "as much"."""
    value = _plain_float(change)
    if math.isnan(value):
        return "—"
    if abs(value) < 0.0005:
        return "as much" if less == "less" else "as well"
    return f"{_percent(abs(value))} {less if value < 0 else more}"


def _plain_float(value: Any) -> float:
    """A figure as a float, NaN where missing (shown as a dash)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _relative(value: float, other: float) -> tuple[str, str]:
    """("2.4 % more", "than"), ("1.0 % less", "than") or ("as much", "as")."""
    if not math.isfinite(value) or not math.isfinite(other) or abs(value - other) < 1e-12:
        return "as much", "as"
    if other <= 0:
        return "more", "than"
    change = (value / other - 1) * 100
    if abs(change) < 0.05:
        return "as much", "as"
    return f"{abs(change):.1f} % {'more' if change > 0 else 'less'}", "than"


def _fmt(value: Any) -> str:
    return format_figure(float(value)) if value is not None else "—"


def _interval(interval: Any) -> str:
    if not interval:
        return "—"
    return f"{format_figure(float(interval[0]))} – {format_figure(float(interval[1]))}"


def _days(value: Any) -> str:
    if value is None:
        return "?"
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return format_figure(value)

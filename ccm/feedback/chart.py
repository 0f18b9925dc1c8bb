"""The report as a picture: the response curve over time (cumulative opens, clicks and
conversions by hours since the first send) and, where there was an experiment, the
conversion rate of each variant beside the hold-out. PNG or SVG, by the file's suffix."""
from __future__ import annotations

from pathlib import Path

from ccm.feedback.response_report import Report

LABELS = {"opened": "opened", "clicked": "clicked", "converted": "converted", "paid": "paid"}


def write_chart(report: Report, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"{path.name}: the chart is written as .png or .svg")
    experiments = [e for e in report.experiments if e.variants]
    figure = Figure(figsize=(9, 4.2 + 3.2 * len(experiments)), layout="constrained")
    axes = figure.subplots(1 + len(experiments), 1, squeeze=False)[:, 0]
    curve = axes[0]
    for kind, points in report.curve.items():
        hours = [0.0] + [h for h, _ in points]
        counts = [0] + [n for _, n in points]
        curve.step(hours, counts, where="post", label=LABELS.get(kind, kind))
    curve.set_title(f"Responses over time — {report.title}")
    curve.set_xlabel("hours since the first message was sent")
    curve.set_ylabel("customers (cumulative)")
    curve.yaxis.set_major_locator(MaxNLocator(integer=True))
    curve.set_ylim(bottom=0)
    if report.curve:
        curve.legend(loc="upper left")
    else:
        curve.text(0.5, 0.5, "no responses recorded yet", ha="center", va="center", transform=curve.transAxes)
    for axis, experiment in zip(axes[1:], experiments):
        names = sorted(experiment.variants, key=lambda v: (v == "holdout", v))
        rates = [100 * experiment.variants[v]["converted"] / experiment.variants[v]["n"] if experiment.variants[v]["n"] else 0 for v in names]
        colours = ["#9aa5b1" if v == "holdout" else "#1f4e79" for v in names]
        bars = axis.bar(names, rates, color=colours)
        for bar, name in zip(bars, names):
            cell = experiment.variants[name]
            axis.annotate(f"{cell['converted']}/{cell['n']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=9)
        winner = f"winner: {experiment.winner}" if experiment.winner else "no significant winner yet"
        axis.set_title(f"Experiment {experiment.name}: conversion rate ({winner})")
        axis.set_ylabel("% converted")
        axis.set_ylim(0, max([*rates, 1.0]) * 1.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Date": None} if suffix == ".svg" else None)
    return path

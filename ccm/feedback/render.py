"""A report for people: a table on the terminal, a CSV file for spreadsheets (cells that a
spreadsheet would run as formulas are escaped by ``defusedcsv``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from defusedcsv import csv

from ccm.feedback.response_report import Report, Row

COLUMNS = ("messages", "sent", "delivered", "opened", "clicked", "responded", "converted", "unsubscribed", "bounced")


def _percent(row: Row, metric: str) -> str:
    rate = row.rate(metric)
    return "" if rate is None or metric in ("messages", "sent") else f" {rate:.0%}"


def _line(name: str, row: Row, currency: str) -> str:
    cells = "  ".join(f"{getattr(row, metric)}{_percent(row, metric)}".rjust(11) for metric in COLUMNS)
    roi = "" if row.roi is None else f"{row.roi:+.0%}"
    money = f"{row.cost:.2f}".rjust(10) + f"{row.revenue:.2f}".rjust(11) + roi.rjust(8)
    return f"  {name[:28]:<28}{cells}{money}"


def print_report(report: Report, echo: Callable[[str], None]) -> None:
    echo(report.title)
    header = "  ".join(metric.rjust(11) for metric in COLUMNS)
    echo(f"  {'':<28}{header}{'cost'.rjust(10)}{'revenue'.rjust(11)}{'ROI'.rjust(8)}   ({report.currency}; rates of sent)")
    echo(_line("total", report.total, report.currency))
    for dimension, groups in report.by.items():
        echo(f" by {dimension}")
        for group, row in groups.items():
            echo(_line(group, row, report.currency))
    for experiment in report.experiments:
        echo(f" experiment {experiment.name}: " + (f"winner {experiment.winner}" if experiment.winner else "no significant winner"))
        for variant, cell in sorted(experiment.variants.items()):
            rate = cell["converted"] / cell["n"] if cell["n"] else 0
            echo(f"   {variant:<16} {cell['converted']}/{cell['n']} converted ({rate:.1%})")
        for comparison in experiment.versus_holdout + experiment.versus_best:
            lift = "n/a" if comparison.lift is None else f"{comparison.lift:+.1%}"
            p = "n/a" if comparison.p_value is None else f"{comparison.p_value:.3f}"
            flag = ("significant" if comparison.significant else "not significant" if comparison.enough_data else
                    "too few customers or conversions to tell")
            echo(f"   {comparison.variant} vs {comparison.against}: lift {lift}, p = {p} ({flag})")
    if report.bots_excluded:
        echo(f" {report.bots_excluded} opens and clicks by scanners and bots left out")
    for currency, amount in report.other_currencies.items():
        echo(f" revenue in {currency} not included: {amount}")


def write_csv(report: Report, path: Path) -> Path:
    rows = report.table()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path

"""``ccm smpp listen``: the SMSC's delivery receipts and replies, recorded as they arrive
(``[channels] sms`` an smpp:// URL; ``ccm.feedback.listen_smpp`` does the work). One line per
batch on stderr, the totals on stdout when it stops: on SIGTERM or Ctrl-C, after the batch
in hand is recorded, or with ``--once`` when the SMSC has sent nothing for ``--idle`` seconds."""
from __future__ import annotations

import json
import signal
import threading

import click
from flask import Flask

from channels import ChannelConfigError
from ccm.cli.common import clean_errors, engine, require_schema
from ccm.feedback import InboundResult, Listened, SmppListenError, listen_smpp, smpp_inbound_channel
from ccm.runs.periodic import set_on_signal


@click.group("smpp", help="SMS over SMPP ([channels] sms an smpp:// URL): the SMSC's receipts and replies.")
def smpp_group() -> None:
    pass


@smpp_group.command("listen", help="Bind to the SMSC as a receiver (as a transceiver with bind=transceiver) and record its "
                                   "delivery receipts and replies (STOP, HELP, others) until SIGTERM or Ctrl-C, binding again "
                                   "with backoff when the link drops. Senders keep bind=transmitter.")
@click.option("--once", is_flag=True, help="Read until the SMSC has sent nothing for --idle seconds, then exit (cron, tests); "
                                           "a failed bind is then an error.")
@click.option("--idle", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
              help="Seconds of nothing after which --once exits.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON when it stops.")
@clean_errors(SmppListenError, ChannelConfigError)
def listen_command(once: bool, idle: float, as_json: bool) -> None:
    channel = smpp_inbound_channel(engine().settings)
    require_schema()
    stop = threading.Event()
    replaced = set_on_signal(stop) if threading.current_thread() is threading.main_thread() else {}
    try:
        with channel:
            listened = listen_smpp(engine(), channel, stop, once=once, idle_seconds=idle, on_batch=_batch_line)
    finally:
        for sig, handler in replaced.items():
            signal.signal(sig, handler)
    if as_json:
        click.echo(json.dumps(listened.to_json(), indent=2))
    else:
        click.echo(_totals(listened))


def _counts(result: InboundResult) -> str:
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result.by_type.items())) or "nothing new"
    return f"{kinds}; {result.duplicates} seen before; {result.unknown} about messages we do not know"


def _batch_line(result: InboundResult) -> None:
    click.echo(f"{result.recorded + result.duplicates + result.unknown} events: {_counts(result)}", err=True)


def _totals(listened: Listened) -> str:
    return f"{listened.batches} batches, {listened.binds} binds: {_counts(listened.result)}"


def init_app(app: Flask) -> None:
    app.cli.add_command(smpp_group)

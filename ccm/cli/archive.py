"""``ccm reprint`` and ``ccm archive find``: the archived documents, byte for byte."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import select

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.cli.identity import acting
from ccm.models import ArchivedDocument, Customer
from ccm.runs import archive_root, ArchiveError, reprint
from ccm.staff import record


@click.command("reprint", help="Write the archived document of a message, exactly as it was sent (never re-rendered).")
@click.argument("message_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default: reprint-<MESSAGE_ID>.pdf).")
@clean_errors(ArchiveError)
def reprint_command(message_id: int, out: Path | None) -> None:
    require_schema()
    actor = acting("archive:reprint", fresh=True)
    ccm = engine()
    with ccm.db.session() as session:
        entry, data = reprint(session, archive_root(ccm.var_dir), message_id)
        record(session, actor.name, "reprint", "message", str(message_id), account=entry.account, cycle=entry.cycle, via="cli")
    target = out or Path(f"reprint-{message_id}.pdf")
    target.write_bytes(data)
    click.echo(f"{target}: message {message_id}, account {entry.account}, cycle {entry.cycle}, {entry.pages} pages, sha256 {entry.sha256[:16]}… verified")


@click.group("archive", help="Find archived documents.")
def archive_group() -> None:
    pass


@archive_group.command("find", help="Archived documents of a customer (by external id), optionally of one account or cycle.")
@click.option("--customer", "external_id", required=True)
@click.option("--account")
@click.option("--cycle")
@click.option("--json", "as_json", is_flag=True)
@clean_errors()
def find_command(external_id: str, account: str | None, cycle: str | None, as_json: bool) -> None:
    require_schema()
    acting("archive:view")
    with engine().db.reader() as session:
        query = select(ArchivedDocument).join(Customer).where(Customer.external_id == external_id)
        if account:
            query = query.where(ArchivedDocument.account == account)
        if cycle:
            query = query.where(ArchivedDocument.cycle == cycle)
        rows = [
            {"message_id": d.message_id, "communication": d.communication, "cycle": d.cycle, "account": d.account,
             "pages": d.pages, "pdf_a": d.pdf_a, "sha256": d.sha256, "path": d.path}
            for d in session.scalars(query.order_by(ArchivedDocument.cycle, ArchivedDocument.id))
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no archived documents")
    for row in rows:
        click.echo(f"message {row['message_id']}  {row['communication']}  {row['cycle']}  account {row['account']}  {row['pages']} pages")


def init_app(app: Flask) -> None:
    app.cli.add_command(reprint_command)
    app.cli.add_command(archive_group)

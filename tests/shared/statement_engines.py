"""The monthly statement's document engine in tests: the shipped default is the Typst
statement; tests of what only the HTML path has (static pages, ``<a href>`` rewriting, HTML
blocks) switch the communication to the HTML statement."""
from __future__ import annotations


def html_statement(engine) -> None:
    """Make the monthly statement the HTML one (WeasyPrint, its terms a static page): for
    tests of what only the HTML path has. The shipped default is the Typst statement."""
    from sqlalchemy import select

    from ccm.communications import MONTHLY_STATEMENT, ensure_built_in
    from ccm.models import Communication

    with engine.db.session() as session:
        ensure_built_in(session)
        statement = session.scalar(select(Communication).where(Communication.name == MONTHLY_STATEMENT))
        statement.config = {**statement.config, "document": "statement/statement.html", "static_pages": ["statement/terms.html"]}

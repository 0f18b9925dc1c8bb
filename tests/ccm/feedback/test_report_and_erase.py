"""Reports: the statistics against known values, CSV with formula cells escaped, charts;
and erasure: personal data gone everywhere, hashed suppressions that hold on re-import."""
from __future__ import annotations

import csv
import hashlib
import json

from sqlalchemy import func, select

from ccm.feedback.erase import erase_customer
from ccm.feedback.events import Event, record
from ccm.feedback.response_report import compare, run_report, two_proportion_z
from ccm.imports import import_customers, import_feed
from ccm.models import ArchivedDocument, Consent, Customer, FeedRecord, Message, Suppression, utcnow
from ccm.runs import service
from signed_in import as_user



def test_two_proportion_z_test_matches_known_values():
    z, p = two_proportion_z(30, 100, 20, 100)  # 30% against 20%
    assert round(z, 3) == 1.633 and round(p, 4) == 0.1025
    z, p = two_proportion_z(150, 1000, 100, 1000)
    assert round(z, 2) == 3.38 and p < 0.001
    assert two_proportion_z(0, 0, 1, 10) == (None, None) and two_proportion_z(0, 10, 0, 10) == (None, None)
    lift = compare("offer", {"n": 100, "converted": 30}, "holdout", {"n": 100, "converted": 20})
    assert round(lift.lift, 3) == 0.5 and lift.enough_data and not lift.significant
    big = compare("offer", {"n": 1000, "converted": 150}, "holdout", {"n": 1000, "converted": 100})
    assert big.enough_data and big.significant
    # 0 of 40 against 1 of 1: p is tiny, but one hold-out customer proves nothing.
    tiny = compare("offer", {"n": 40, "converted": 0}, "holdout", {"n": 1, "converted": 1})
    assert tiny.p_value < 0.001 and not tiny.enough_data and not tiny.significant
    assert tiny.to_json()["significant"] is False and tiny.to_json()["enough_data"] is False
    # Rare conversions: 4 expected in the smaller group at the pooled rate is too few.
    assert not compare("offer", {"n": 100, "converted": 8}, "holdout", {"n": 100, "converted": 0}).enough_data


def test_the_report_counts_each_message_once_and_the_csv_is_safe(campaign, tmp_path):
    app, engine, outcome, settings = campaign
    with engine.db.session() as session:
        sent = list(session.scalars(select(Message).where(Message.state == "sent", Message.channel == "email").order_by(Message.id).limit(3)))
        for n, message in enumerate(sent):
            record(session, Event(f"o{n}", "opened", "track", utcnow(), message_id=message.id), settings)
        record(session, Event("c0", "clicked", "track", utcnow(), message_id=sent[0].id), settings)
        record(session, Event("p0", "paid", "api", utcnow(), message_id=sent[0].id, amount="10.00", currency="USD"), settings)
        record(session, Event("p1", "paid", "api", utcnow(), message_id=sent[0].id, amount="5.50", currency="USD"), settings)
        record(session, Event("p2", "paid", "api", utcnow(), message_id=sent[1].id, amount="7.00", currency="EUR"), settings)
        record(session, Event("b0", "opened", "track", utcnow(), message_id=sent[2].id, bot=True), settings)
        # A marketer's experiment name that a spreadsheet would run as a formula.
        sent[1].decisions = {"email.offer": {"experiment": "=HYPERLINK(\"http://evil\")", "variant": "a"}}
    with engine.db.session() as session:
        report = run_report(session, outcome.plan.run_id, settings["costs"])
    total = report.total
    assert (total.opened, total.clicked, total.responded, total.converted) == (3, 1, 2, 2)  # two payments of one message: one conversion
    assert str(total.revenue) == "15.50" and report.other_currencies == {"EUR": "7.00"} and report.bots_excluded == 1
    assert total.cost == sum((total_cost for total_cost in (row.cost for row in report.by["channel"].values())), start=0)
    out = tmp_path / "report.csv"
    result = app.test_cli_runner().invoke(args=["report", "run", str(outcome.plan.run_id), "--csv", str(out),
                                                "--chart", str(tmp_path / "chart.svg")])
    assert result.exit_code == 0, result.output
    assert "experiment weekly-deals-offer" in result.output
    with out.open(newline="", encoding="utf-8") as fh:
        groups = [row["group"] for row in csv.DictReader(fh)]
    assert "'=HYPERLINK(\"http://evil\")/a" in groups and not any(g.startswith("=") for g in groups)
    svg = (tmp_path / "chart.svg").read_text()
    assert svg.startswith("<?xml") and "Responses over time" in svg and "weekly-deals-offer" in svg
    png = app.test_cli_runner().invoke(args=["report", "communication", "deals", "--chart", str(tmp_path / "chart.png"), "--json"])
    assert png.exit_code == 0 and (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads(png.output)["by"]["run"]
    assert app.test_cli_runner().invoke(args=["report", "run", "99"]).exit_code == 1


def test_erasure_removes_personal_data_and_a_reimport_stays_suppressed(loaded, tmp_path):
    engine = loaded
    service.run_cycle(engine, "statement", "2026-11", progress=False)
    with engine.db.session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == "C-PRINT"))
        customer_id, email, phone = customer.id, customer.email, customer.phone
        archived = [engine.var_dir / "archive" / d.path for d in session.scalars(select(ArchivedDocument).where(ArchivedDocument.customer_id == customer_id))]
    assert archived and all(path.exists() for path in archived)
    runner, agent = engine_runner(engine), as_user(engine, "sue", "service")
    refused = runner.invoke(args=["customers", "erase", "C-PRINT"], input="n\n", env=agent)
    assert refused.exit_code == 1
    done = runner.invoke(args=["customers", "erase", "C-PRINT", "--yes"], env=agent)
    assert done.exit_code == 0, done.output
    assert runner.invoke(args=["customers", "erase", "C-PRINT", "--yes"], env=agent).exit_code == 1  # no such customer any more
    with engine.db.session() as session:
        erased = session.get(Customer, customer_id)
        assert (erased.name, erased.email, erased.phone, erased.address_line1, erased.attributes) == ("(erased)", None, None, None, {})
        assert erased.external_id == f"erased-{customer_id}" and erased.erased_at is not None
        from ccm.models.authoring import AuditLog

        audited = session.scalar(select(AuditLog).where(AuditLog.action == "customer.erase"))
        assert (audited.actor, audited.object_name, audited.details["via"]) == ("sue", f"erased-{customer_id}", "cli")
        assert session.scalar(select(func.count()).select_from(Consent).where(Consent.customer_id == customer_id)) == 0
        keys = list(session.scalars(select(Message.idempotency_key).where(Message.customer_id == customer_id)))
        assert keys and all(":erased-" in key for key in keys)  # made again from the anonymised account
        records = list(session.scalars(select(FeedRecord).where(FeedRecord.customer_id == customer_id)))
        assert all(r.lines == [] and r.account.startswith("erased-") for r in records)
        assert session.scalar(select(func.count()).select_from(ArchivedDocument).where(ArchivedDocument.customer_id == customer_id)) == 0
        addresses = set(session.scalars(select(Suppression.address)))
    assert not any(path.exists() for path in archived)
    # Keyed: not the plain SHA-256 of the address, which anyone could compute for every phone number.
    unkeyed = {"sha256:" + hashlib.sha256(where.encode()).hexdigest() for where in (email, phone)}
    assert email not in addresses and phone not in addresses and not addresses & unkeyed
    assert len(addresses) == 2 and all(a.startswith("hmac-sha256:") and len(a) == 12 + 64 for a in addresses)
    dump = "\n".join(engine.db.engine.raw_connection().iterdump())
    assert email not in dump and phone not in dump and "Bob O" not in dump

    # The same person imported again (say, from an old billing extract) is never e-mailed or texted.
    import_customers(engine.db, tmp_path / "customers.csv", rejects_dir=tmp_path, progress=False)
    feed = tmp_path / "feed.jsonl"
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    again = service.run_cycle(engine, "statement", "2026-11", progress=False)
    with engine.db.session() as session:
        back = session.scalar(select(Customer).where(Customer.external_id == "C-PRINT"))
        messages = list(session.scalars(select(Message).where(Message.customer_id == back.id)))
    assert back.id != customer_id and messages
    for message in messages:
        assert message.channel == "print" or message.state == "suppressed", (message.channel, message.state, message.reason)
    assert any("sms suppressed (erased)" in (m.reason or "") for m in messages) or not back.phone
    assert again.report.complete and again.plan.planned == len(messages)  # nothing planned again for the erased record


def test_suppression_hashes_are_keyed_by_the_engines_secret_and_unkeyed_ones_still_hold(loaded, make_settings, tmp_path):
    from ccm.wiring import Engine
    from ccm.keys import suppression_key
    from ccm.runs.policy import hashed_address, legacy_hash

    engine = loaded
    # Every process of the engine (a worker builds its own Engine) derives the same key; another secret, another key.
    worker = Engine.from_settings(engine.settings)
    other = Engine.from_settings(make_settings(tmp_path / "other", web={"secret_key": "another-secret-0123456789abcdef"}))
    other.db.upgrade()  # only an upgrade makes a database file
    keys = []
    for each in (engine, worker, other):
        with each.db.reader() as session:
            keys.append(suppression_key(session))
    worker.close()
    other.close()
    key = keys[0]
    assert keys[1] == key and keys[2] != key
    assert hashed_address("+14155550102", key) != hashed_address("+14155550102", keys[2])

    # An erasure made before the hashes were keyed left "sha256:<hex>": it still suppresses.
    with engine.db.session() as session:
        session.add(Suppression(channel="sms", address=legacy_hash("+14155550102"), reason="erased", source="erasure"))
    service.run_cycle(engine, "statement", "2026-11", progress=False)
    with engine.db.reader() as session:
        reminder = session.scalar(select(Message).join(Customer).where(Customer.external_id == "C-PRINT", Message.channel == "sms"))
    assert reminder.state == "suppressed" and reminder.reason == "sms suppressed (erased)"
    # Erasing that customer replaces the unkeyed hash with a keyed one, keeping its reason.
    erase_customer(engine, "C-PRINT")
    with engine.db.reader() as session:
        rows = {(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))}
    assert rows == {("sms", hashed_address("+14155550102", key), "erased"), ("email", hashed_address("bob@example.com", key), "erased")}


def engine_runner(engine):
    """A CLI runner bound to this engine's app."""
    from flask import Flask

    import ccm.cli

    app = Flask("erase-test", template_folder=None, static_folder=None)
    app.config["CCM"] = engine.settings
    app.extensions["ccm"] = engine
    ccm.cli.init_app(app)
    return app.test_cli_runner()


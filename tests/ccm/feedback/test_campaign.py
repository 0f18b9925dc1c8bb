"""A campaign: planned from its audience with marketing consent, the experiment's hold-out
withheld, links rewritten at compose time, RFC 8058 headers on marketing e-mail only."""
from __future__ import annotations

from sqlalchemy import select

from ccm.models import Customer, Message
from ccm.runs import service

from .conftest import CAMPAIGN_CYCLE, PUBLIC, delivered, in_holdout, people


def test_the_audience_gets_one_message_each_by_consent_and_the_holdout_is_withheld(campaign, tmp_path):
    app, engine, outcome, _ = campaign
    report = outcome.report
    rows = people()
    assert report.records_in == len(rows) and report.complete
    with engine.db.session() as session:
        messages = {ext: m for m, ext in session.execute(select(Message, Customer.external_id).join(Customer))}
    assert set(messages) == {row["external_id"] for row in rows}  # one message per customer, no more
    for ext, message in messages.items():
        if ext == "NONE":
            assert message.state == "suppressed" and message.reason.startswith("no deliverable channel")
        elif in_holdout(ext):
            assert message.state == "suppressed" and message.reason == "hold-out of experiment weekly-deals-offer"
            assert message.decisions["email.offer"]["variant"] == "holdout"
        else:
            assert message.state == "sent", (ext, message.reason)
            assert message.channel == ("sms" if ext.startswith("S") else "email")
            assert message.decisions["email.offer"]["variant"] in ("saver", "bundle")
    held = [ext for ext in messages if in_holdout(ext) and ext != "NONE"]
    assert held == ["E051"]  # by the hash of the experiment and the customer (about 10% of a large audience)
    assert report.suppressed_reasons["hold-out of experiment weekly-deals-offer"] == len(held)


def test_links_are_tracked_and_recorded_and_marketing_mail_has_one_click_unsubscribe(campaign, tmp_path):
    app, engine, outcome, _ = campaign
    got = delivered(engine, tmp_path / "var")
    mail = next(sent for sent in got.values() if sent.channel == "email")
    assert mail.raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.unsubscribe_url.startswith(f"{PUBLIC}/u/")
    clicks = mail.links(f"{PUBLIC}/t/c/")
    assert len(clicks) == 2  # the offer and "see all deals"
    assert len(mail.links(f"{PUBLIC}/t/o/")) == 1  # the open pixel
    assert "https://northwind.example" not in mail.html  # every outside link goes through the redirect
    text = mail.raw.get_body(("plain",)).get_content()
    assert f"{PUBLIC}/t/c/" in text and "https://northwind.example/deals" not in text
    with engine.db.session() as session:
        links = session.get(Message, mail.message_id).links
    assert links[-1] == "https://northwind.example/deals" and links[0].startswith("https://northwind.example/offers/")
    sms = next(sent for sent in got.values() if sent.channel == "sms")
    assert f"{PUBLIC}/t/c/" in sms.sms and "STOP" in sms.sms


def test_statement_mail_has_no_unsubscribe_header(loaded, tmp_path):
    service.run_cycle(loaded, "statement", "2026-11", progress=False)
    import email
    import email.policy

    files = list((tmp_path / "var" / "maildir" / "new").glob("*"))
    assert files
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["List-Unsubscribe"] is None
        assert message["Message-ID"].startswith("<m0")  # the message reference, for bounces


def test_a_second_run_of_the_same_cycle_sends_nothing_twice(campaign):
    app, engine, outcome, _ = campaign
    again = service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    assert again.plan.planned == 0 and again.report.by_channel == outcome.report.by_channel


def test_topic_and_frequency_chosen_by_the_customer_hold_at_planning(campaign):
    app, engine, outcome, _ = campaign
    with engine.db.session() as session:
        no_offers = session.scalar(select(Customer).where(Customer.external_id == "E001"))
        no_offers.preferences = {"topics": ["news"], "frequency": "as_it_happens"}
        monthly = session.scalar(select(Customer).where(Customer.external_id == "E002"))
        monthly.preferences = {"topics": ["offers"], "frequency": "monthly"}
    nxt = service.run_cycle(engine, "deals", "2026-12-07", progress=False)
    with engine.db.session() as session:
        reasons = dict(session.execute(
            select(Customer.external_id, Message.reason).join(Customer).where(Message.run_id == nxt.plan.run_id)).all())
    assert reasons["E001"] == "opted out of topic offers"
    assert reasons["E002"] == "frequency chosen by the customer (monthly)" or in_holdout("E002")


def test_a_campaign_cycle_is_a_label(campaign):
    app, engine, *_ = campaign
    result = app.test_cli_runner().invoke(args=["run", "deals", "--cycle", "no spaces please"])
    assert result.exit_code == 1 and "a campaign's cycle is a label" in result.output


def test_a_printed_statement_carries_a_short_tracked_payment_link_and_its_qr_code(app, loaded, tmp_path):
    import re
    import subprocess

    service.run_cycle(loaded, "statement", "2026-11", progress=False)
    with loaded.db.session() as session:
        printed = session.scalars(select(Message).where(Message.channel == "print", Message.purpose == "statement",
                                                        Message.state == "sent")).first()
        links = printed.links
    (document,) = (tmp_path / "var" / "archive").glob(f"*/*/*/m{printed.id:09d}-*.pdf")  # what was printed, as archived
    text = subprocess.run(["pdftotext", str(document), "-"], capture_output=True, text=True, check=True).stdout
    short = re.search(r"http://127\.0\.0\.1:8000/s/([0-9a-f]+-0-[A-Za-z0-9_-]{10})", text)
    assert short and "Pay online" in text and links == ["https://northwind.example/pay"]
    client = app.test_client()
    response = client.get(f"/s/{short.group(1)}", headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
    assert response.status_code == 302 and response.headers["Location"] == "https://northwind.example/pay"
    code = short.group(1)
    tampered = code[:-1] + ("x" if code[-1] != "x" else "y")  # always a different last character
    assert tampered != code and client.get(f"/s/{tampered}").status_code == 400  # one character off: refused
    from ccm.models.feedback import ResponseEvent

    with loaded.db.session() as session:
        (event,) = session.scalars(select(ResponseEvent))
        assert (event.type, event.message_id, event.channel) == ("clicked", printed.id, "print")

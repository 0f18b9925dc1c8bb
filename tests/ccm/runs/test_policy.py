"""Channel policies: ordered channels with conditions in the rule language, reachability
(address, consent, suppression) and the customer's own choice."""
from __future__ import annotations

from sqlalchemy import select, update

from ccm.models import Communication, Customer, Message
from ccm.runs import service

CYCLE = "2026-11"


def _set_policy(engine, policy: dict) -> None:
    from ccm.communications import ensure_built_in

    with engine.db.session() as session:
        ensure_built_in(session)
        communication = session.scalar(select(Communication).where(Communication.name == "monthly-statement"))
        communication.config = dict(communication.config, channel_policy=policy)


def _channels(engine) -> dict[str, str]:
    with engine.db.session() as session:
        rows = session.execute(select(Customer.external_id, Message.channel).join(Customer).where(Message.purpose == "statement"))
        return dict(rows.all())


def test_conditions_in_the_rule_language_choose_the_channel(loaded):
    _set_policy(loaded, {"order": [
        {"channel": "print", "when": "balance_due > 130"},  # big balances on paper, even for paperless customers
        {"channel": "email", "when": "paperless"},
        {"channel": "print"},
    ]})
    service.run_cycle(loaded, "statement", CYCLE, progress=False)
    channels = _channels(loaded)
    # C-EMAIL is paperless but owes 137.02: paper. C-SMSONLY owes nothing: e-mail. C-NOWHERE
    # owes 124.68, has no e-mail and no postal address: suppressed.
    assert channels == {"C-EMAIL": "print", "C-PRINT": "print", "C-ZH": "print", "C-NOCONSENT": "print",
                        "C-NOWHERE": "none", "C-SMSONLY": "email"}


def test_the_customers_preferred_channel_goes_first_when_allowed(loaded):
    with loaded.db.session() as session:
        session.execute(update(Customer).where(Customer.external_id == "C-PRINT").values(preferred_channel="sms"))
        session.execute(update(Customer).where(Customer.external_id == "C-EMAIL").values(preferred_channel="sms"))  # no SMS consent
    _set_policy(loaded, {"order": [{"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "sms"}],
                         "prefer_customer_choice": True})
    outcome = service.run_cycle(loaded, "statement", CYCLE, progress=False)
    channels = _channels(loaded)
    assert channels["C-PRINT"] == "sms" and channels["C-EMAIL"] == "email"
    assert outcome.report.complete
    with loaded.db.session() as session:
        by_sms = session.scalar(select(Message).join(Customer).where(Customer.external_id == "C-PRINT", Message.purpose == "statement"))
        assert by_sms.state == "sent" and "sms/statement_ready.txt" in by_sms.template_versions


def test_a_bad_policy_condition_stops_planning_with_its_position(loaded, runner):
    _set_policy(loaded, {"order": [{"channel": "email", "when": "paperles"}, {"channel": "print"}]})
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 1
    assert "channel policy entry 1 (email): unknown field 'paperles' at column 1; did you mean 'paperless'?" in result.output

"""One eligibility decision for every way a message is made (issue 14): a channel policy
that names a segment chooses the same channel for a planned campaign message and for a
triggered one; an erased customer, a customer over the frequency cap or one who opted out
of the topic get the same reason either way."""
from __future__ import annotations

from sqlalchemy import select

from ccm.communications import ensure_built_in, get_communication
from ccm.models import Customer, Message
from ccm.runs import plan_run, trigger
from ccm.runs.eligibility import Eligibility
from ccm.segments import refresh, save_segment

BY_SEGMENT = {"order": [{"channel": "sms", "when": 'in_segment("texters")'}, {"channel": "email"}], "prefer_customer_choice": False}


def _use_policy(engine, name: str) -> None:
    with engine.db.session() as session:
        ensure_built_in(session)
        communication = get_communication(session, name)
        communication.config = {**communication.config, "channel_policy": BY_SEGMENT}


def test_a_segment_in_the_channel_policy_holds_for_planned_and_triggered_messages(campaign_engine):
    engine = campaign_engine
    with engine.db.session() as session:
        save_segment(session, "texters", 'external_id in ("S001", "S002")')
        refresh(session, engine.settings)
    for name in ("deals", "payment-received"):
        _use_policy(engine, name)
    run_id = plan_run(engine, "deals", "2026-12-02").run_id
    with engine.db.session() as session:
        ids = dict(session.execute(select(Customer.external_id, Customer.id).where(Customer.external_id.in_(("S001", "S005")))).all())
        planned = {customer: (channel, reason) for customer, channel, reason in session.execute(
            select(Message.customer_id, Message.channel, Message.reason).where(Message.run_id == run_id))}
    triggered = {ext: trigger(engine, "payment.received", f"evt-{ext}", ids[ext], {"id": f"evt-{ext}", "data": {}})[0]
                 for ext in ("S001", "S005")}
    assert planned[ids["S001"]][0] == triggered["S001"].channel == "sms"  # a member of the segment: by SMS
    # not a member: e-mail, which this customer has not got; suppressed both ways, for the same reason
    assert planned[ids["S005"]] == ("none", triggered["S005"].reason) and triggered["S005"].channel is None
    assert "no e-mail address" in triggered["S005"].reason


def test_the_same_customer_gets_the_same_answer_and_reason(campaign_engine):
    engine = campaign_engine
    with engine.db.session() as session:
        ensure_built_in(session)
        deals = get_communication(session, "deals")
        customers = list(session.scalars(select(Customer).where(Customer.external_id.in_(("E001", "E002")))))
        customers[0].preferences = {"topics": ["news"]}  # not offers: the weekly deals' topic
        session.flush()
        first = Eligibility(engine, session, deals).choose(customers)
        again = Eligibility(engine, session, deals).choose(list(reversed(customers)))
    assert first == again
    reasons = {c.external_id: first[c.id].reason for c in customers}
    assert reasons["E001"] == "opted out of topic offers" and first[customers[0].id].suppressed
    assert not first[customers[1].id].suppressed

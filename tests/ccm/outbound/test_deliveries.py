"""Deliveries to a real receiver on 127.0.0.1: signed the Standard Webhooks way (checked with
the ``standardwebhooks`` package), retried after a 500 with the same webhook-id, dead after
``max_attempts`` or at once on a 4xx or a redirect to another host, Retry-After honoured,
loopback targets refused unless allowed, the secret stored sealed."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from ccm import outbound
from ccm.models import utcnow
from ccm.models.authoring import AuditLog
from ccm.models.webhooks import WebhookDelivery, WebhookSubscription


def _subscribe(engine, url: str, *types: str) -> outbound.Created:
    return outbound.create_subscription(engine, "crm", url, list(types or ["template.approved"]), actor="ada")


def _emit(engine, event_type: str = "template.approved", **data) -> None:
    with engine.db.session() as session:
        outbound.emit(session, event_type, data or {"template": "letters/welcome.html", "version": 2, "approved_by": "olga"})


def _deliveries(engine) -> list[WebhookDelivery]:
    with engine.db.reader() as session:
        found = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        session.expunge_all()
        return found


def test_a_delivery_is_signed_and_retried_after_a_500_with_the_same_id(engine, receiver):
    created = _subscribe(engine, receiver.url)
    assert created.secret.startswith("whsec_")
    receiver.answers.append((500, {}))
    _emit(engine)
    assert outbound.deliver_due(engine).summary == "0 delivered, 1 to retry, 0 dead"
    [waiting] = _deliveries(engine)
    assert (waiting.state, waiting.attempts, waiting.last_status) == ("failed", 1, 500)
    assert outbound.deliver_due(engine).delivered == 1
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == waiting.event_id
    payload = Webhook(created.secret).verify(second.body, second.headers)
    assert payload["type"] == "template.approved" and payload["id"] == waiting.event_id
    assert payload["data"] == {"template": "letters/welcome.html", "version": 2, "approved_by": "olga"}
    assert dt.datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert second.headers["content-type"] == "application/json" and second.path == "/hooks"
    with pytest.raises(Exception):
        Webhook(outbound.create_subscription(engine, "other", receiver.url, ["run.completed"], "ada").secret).verify(
            second.body, second.headers)
    [done] = _deliveries(engine)
    assert (done.state, done.attempts, done.last_status, done.delivered_at is not None) == ("delivered", 2, 200, True)
    assert outbound.deliver_due(engine).summary == "0 delivered, 0 to retry, 0 dead"  # delivered once only


def test_dead_after_max_attempts(engine, receiver):
    _subscribe(engine, receiver.url)
    receiver.answers.extend([(503, {})] * 5)
    _emit(engine)
    for _ in range(3):
        outbound.deliver_due(engine)
    [dead] = _deliveries(engine)
    assert (dead.state, dead.attempts, dead.next_attempt_at) == ("dead", 3, None)
    assert dead.last_error == "gave up after 3 attempts; last: answered 503"
    assert outbound.deliver_due(engine).summary == "0 delivered, 0 to retry, 0 dead" and len(receiver.received) == 3


@pytest.mark.parametrize("answer", [(404, {}), (410, {}), (302, {"Location": "http://elsewhere.example/"}),
                                    (307, {"Location": "http://example.com/hooks"})])
def test_a_4xx_or_a_redirect_elsewhere_is_dead_at_once(engine, receiver, answer):
    _subscribe(engine, receiver.url)
    receiver.answers.append(answer)
    _emit(engine)
    assert outbound.deliver_due(engine).dead == 1
    [dead] = _deliveries(engine)
    assert (dead.state, dead.attempts, dead.last_status) == ("dead", 1, answer[0])
    assert len(receiver.received) == 1


def test_a_redirect_to_the_same_host_is_followed(engine, receiver):
    _subscribe(engine, receiver.url)
    receiver.answers.append((308, {"Location": "/moved"}))
    _emit(engine)
    assert outbound.deliver_due(engine).delivered == 1
    assert [r.path for r in receiver.received] == ["/hooks", "/moved"]


def test_retry_after_is_honoured_within_the_cap(engine, receiver):
    engine.settings["webhooks"]["retry_cap_seconds"] = 600
    _subscribe(engine, receiver.url)
    receiver.answers.append((429, {"Retry-After": "120"}))
    _emit(engine)
    before = utcnow()
    assert outbound.deliver_due(engine).retrying == 1
    [waiting] = _deliveries(engine)
    assert waiting.next_attempt_at >= before + dt.timedelta(seconds=119)
    assert outbound.deliver_due(engine).summary == "0 delivered, 0 to retry, 0 dead"  # not due yet
    assert outbound.deliver_due(engine, now=utcnow() + dt.timedelta(seconds=121)).delivered == 1
    settings = {"retry_base_seconds": 30, "retry_cap_seconds": 3600}
    assert [15 <= outbound.backoff(settings, 1) <= 30, 60 <= outbound.backoff(settings, 3) <= 120] == [True, True]
    assert outbound.backoff(settings, 1, asked=99999) == 3600


def test_a_connection_refused_is_retried(engine):
    _subscribe(engine, "http://127.0.0.1:9/nothing-listens")
    _emit(engine)
    assert outbound.deliver_due(engine).retrying == 1
    assert _deliveries(engine)[0].last_error == "connection failed (ConnectionRefusedError)"


def test_loopback_and_private_targets_are_refused_unless_allowed(engine, receiver):
    _subscribe(engine, receiver.url)
    _emit(engine)
    engine.settings["webhooks"]["allow_private"] = False
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://[::1]/x", "http://localhost:8000/x", "ftp://example.com/x",
                "http://169.254.169.254/latest"):
        with pytest.raises(outbound.SubscriptionError, match="refused|only http"):
            outbound.create_subscription(engine, "bad", url, ["run.completed"], "ada")
    assert outbound.deliver_due(engine).dead == 1  # checked again at the attempt: the address is loopback
    assert _deliveries(engine)[0].last_error.startswith("loopback and private addresses are refused")
    assert receiver.received == []


def test_the_secret_is_stored_sealed_and_changes_are_audited(engine, receiver):
    created = _subscribe(engine, receiver.url)
    with engine.db.reader() as session:
        stored = session.scalar(select(WebhookSubscription.secret))
    assert created.secret not in stored and created.secret[6:] not in stored and stored.startswith("v2:")
    outbound.change_subscription(engine, created.subscription.id, "bob", active=False)
    _emit(engine)
    assert _deliveries(engine) == []  # a disabled subscription gets no events
    outbound.change_subscription(engine, created.subscription.id, "bob", active=True, event_types=["run.completed"])
    test = outbound.send_test(engine, created.subscription.id, "bob")
    assert test.event_type == "webhook.test" and outbound.deliver_due(engine).delivered == 1
    assert json.loads(receiver.received[0].body)["data"] == {"subscription": "crm"}
    outbound.delete_subscription(engine, created.subscription.id, "bob")
    with engine.db.reader() as session:
        audited = [(a.actor, a.action) for a in session.scalars(select(AuditLog).where(AuditLog.object_type == "webhook")
                                                                .order_by(AuditLog.id))]
        assert session.scalar(select(WebhookDelivery.id)) is None
    assert audited == [("ada", "webhook.create"), ("bob", "webhook.change"), ("bob", "webhook.change"), ("bob", "webhook.test"),
                       ("bob", "webhook.delete")]


def test_a_secret_sealed_before_fernet_still_signs_and_is_sealed_again(engine, receiver):
    """Subscriptions made when secrets were sealed the old way (v1:, an HMAC stream) keep
    working; the first delivery seals theirs again with Fernet. Another engine secret opens
    neither."""
    import base64
    import hashlib
    import hmac
    import secrets as random

    from ccm.keys import derived_key
    from ccm.outbound.secrets import SecretUnreadable, unseal

    created = _subscribe(engine, receiver.url)
    key = derived_key(engine.settings, "webhooks")  # sealed as before: nonce, XOR with the HMAC stream, HMAC tag
    encrypt, authenticate = hmac.new(key, b"encrypt", hashlib.sha256).digest(), hmac.new(key, b"authenticate", hashlib.sha256).digest()
    nonce, plain = random.token_bytes(16), created.secret.encode()
    stream = b"".join(hmac.new(encrypt, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest() for n in range(len(plain) // 32 + 1))
    cipher = bytes(a ^ b for a, b in zip(plain, stream))
    old = "v1:" + base64.b64encode(nonce + cipher + hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()).decode()
    with engine.db.session() as session:
        session.execute(update(WebhookSubscription).values(secret=old))
    outbound.send_test(engine, created.subscription.id, "ada")
    assert outbound.deliver_due(engine).delivered == 1
    Webhook(created.secret).verify(receiver.received[0].body, receiver.received[0].headers)
    with engine.db.reader() as session:
        stored = session.scalar(select(WebhookSubscription.secret))
    assert stored.startswith("v2:") and unseal(engine.settings, stored) == created.secret
    other = {**engine.settings, "web": {**engine.settings["web"], "secret_key": "another secret of at least thirty-two characters"}}
    for sealed in (stored, old):
        with pytest.raises(SecretUnreadable):
            unseal(other, sealed)

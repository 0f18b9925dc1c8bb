"""The public endpoints through Flask's test client: tokens (forged, expired, cross-purpose),
no open redirect, bots flagged, unsubscribe only by POST, rate limits, the preference centre."""
from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from ccm.models.feedback import ResponseEvent
from ccm.links import Signer
from ccm.feedback.tracking import Hit, bot_reason
from ccm.models import Consent, Customer, Message

from .conftest import delivered

BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _events(engine, **where) -> list[ResponseEvent]:
    with engine.db.session() as session:
        query = select(ResponseEvent).order_by(ResponseEvent.id)
        for name, value in where.items():
            query = query.where(getattr(ResponseEvent, name) == value)
        return list(session.scalars(query))


def _mail(engine, tmp_path):
    return next(sent for sent in delivered(engine, tmp_path / "var").values() if sent.channel == "email")


def test_forged_tampered_expired_and_cross_purpose_tokens_are_refused(campaign, tmp_path, monkeypatch):
    app, engine, _, settings = campaign
    client = app.test_client()
    message = _mail(engine, tmp_path).message_id
    good = Signer.from_settings(settings)
    forged = Signer("not-our-secret", 400).dumps("click", [message, 0])
    assert client.get(f"/t/c/{forged}").status_code == 400
    assert client.get(f"/t/c/{good.dumps('open', [message])}").status_code == 400  # an open token as a click
    assert client.post(f"/u/{good.dumps('click', [message, 0])}").status_code == 400
    assert client.get(f"/p/{good.dumps('unsubscribe', [message])}").status_code == 400
    assert client.get(f"/t/o/{good.dumps('click', [message, 0])}.gif").status_code == 400
    assert client.get(f"/t/c/{good.dumps('click', [message, 'x'])}").status_code == 404
    assert client.get(f"/t/c/{good.dumps('click', ['1', 0])}").status_code == 404
    # Made 401 days ago: older than token_max_age_days (400).
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 401 * 86400)
    old = good.dumps("click", [message, 0])
    monkeypatch.undo()
    response = client.get(f"/t/c/{old}")
    assert response.status_code == 400 and b"expired" in response.data
    assert _events(engine) == []  # nothing was recorded


def test_a_click_redirects_only_to_the_recorded_url_and_records_once(campaign, tmp_path):
    app, engine, _, settings = campaign
    client = app.test_client()
    mail = _mail(engine, tmp_path)
    with engine.db.session() as session:
        links = session.get(Message, mail.message_id).links
    signer = Signer.from_settings(settings)
    for position, url in enumerate(links):
        response = client.get(f"/t/c/{signer.dumps('click', [mail.message_id, position])}", headers=BROWSER)
        assert response.status_code == 302 and response.headers["Location"] == url
        assert response.headers["Cache-Control"].startswith("no-store")
    assert client.get(f"/t/c/{signer.dumps('click', [mail.message_id, len(links)])}").status_code == 404
    client.get(_path(mail.links("http://ccm.test/t/c/")[0]), headers=BROWSER)  # the same link again
    clicks = _events(engine, type="clicked")
    assert len(clicks) == len(links) and all(not e.bot and e.variant.startswith("weekly-deals-offer/") for e in clicks)
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        assert customer.click_count == len(links) and customer.last_click_at and customer.last_response_at


@pytest.mark.parametrize(("agent", "method", "seconds", "reason"), [
    (BROWSER["User-Agent"], "GET", 3600, None),
    (BROWSER["User-Agent"], "HEAD", 3600, "HEAD request"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "GET", 3600, "crawler user agent"),
    ("Mozilla/5.0 Barracuda Sentinel link scanner", "GET", 3600, "scanner user agent"),
    ("", "GET", 3600, "scanner user agent"),
    (BROWSER["User-Agent"], "GET", 2, "within seconds of delivery"),
])
def test_bots_and_scanners_are_told_apart_from_people(agent, method, seconds, reason):
    now = dt.datetime(2026, 11, 30, 12, 0, 0)
    settings = {"feedback": {"bot_user_agents": ["barracuda"], "bot_seconds": 10}}
    assert bot_reason(settings, Hit(agent, method), now - dt.timedelta(seconds=seconds), now) == reason


def test_a_bot_open_does_not_count_and_a_person_after_it_does(campaign, tmp_path):
    app, engine, *_ = campaign
    client = app.test_client()
    pixel = _path(_mail(engine, tmp_path).links("http://ccm.test/t/o/")[0])
    assert client.head(pixel).status_code == 200
    assert client.get(pixel, headers={"User-Agent": "python-requests/2.32"}).status_code == 200
    assert client.get(pixel, headers=BROWSER).status_code == 200
    assert client.get(pixel, headers=BROWSER).status_code == 200  # opened twice: one open
    opens = _events(engine, type="opened")
    assert [(e.bot, e.detail) for e in opens] == [(True, "HEAD request"), (False, None)]
    with engine.db.session() as session:
        assert session.get(Customer, opens[1].customer_id).open_count == 1


def test_unsubscribe_page_on_get_and_one_click_on_post_without_cookies(campaign, tmp_path):
    app, engine, *_ = campaign
    mail = _mail(engine, tmp_path)
    url = _path(mail.unsubscribe_url)
    client = app.test_client(use_cookies=False)
    page = client.get(url)
    assert page.status_code == 200 and b'method="post"' in page.data
    assert b"/p/" not in page.data and b"Email Customer" not in page.data  # no way from this link to the customer's data
    assert _events(engine) == []
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and client.post(url).status_code == 200  # twice: the same
    assert [e.type for e in _events(engine)] == ["unsubscribed"]
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        consent = {(c.channel, c.purpose): (c.granted, c.source) for c in customer.consents}
    assert consent[("email", "marketing")] == (False, "track: unsubscribe")
    assert consent[("email", "service")][0] is True  # statements still come by e-mail
    # Subscribed again (say, in the preference centre), then the same link once more: unsubscribed again.
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        from ccm.feedback.events import set_consent

        set_consent(session, customer, "email", "marketing", True, "preference centre")
    assert client.post(url).status_code == 200
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        assert not customer.has_consent("email", "marketing")


def test_public_endpoints_are_rate_limited_with_retry_after(make_settings, tmp_path):
    from app import create_app

    from .conftest import feedback_settings

    app = create_app(feedback_settings(make_settings, tmp_path, web={"rate_limit": "3/minute"}))
    app.extensions["ccm"].db.upgrade()
    client = app.test_client()
    codes = [client.get("/t/o/nonsense.gif").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    limited = client.get("/t/o/nonsense.gif")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    app.extensions["ccm"].close()


def test_the_preference_centre_saves_choices_with_csrf(campaign, tmp_path):
    app, engine, *_ = campaign
    mail = _mail(engine, tmp_path)
    link = re.search(r'href="(http://ccm\.test/p/[^"]+)"', mail.html).group(1)
    client = app.test_client()
    page = client.get(_path(link))
    assert page.status_code == 200 and b"How often" in page.data
    form = {"topics": ["news", "tips"], "frequency": "monthly", "paperless": "yes", "preferred_channel": "email"}
    assert client.post(_path(link), data=form).status_code == 400  # no CSRF token: refused
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    saved = client.post(_path(link), data={**form, "csrf_token": token})
    assert saved.status_code == 200 and b"Saved" in saved.data
    bad = client.post(_path(link), data={**form, "frequency": "hourly", "csrf_token": token})
    assert bad.status_code == 400 and b"no such frequency" in bad.data
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        assert customer.preferences == {"topics": ["news", "tips"], "frequency": "monthly"}
        assert customer.paperless and customer.preferred_channel == "email"
        consent = session.scalar(select(Consent).where(Consent.customer_id == customer.id, Consent.channel == "email",
                                                       Consent.purpose == "marketing"))
        assert not consent.granted and consent.source == "preference centre"  # offers by e-mail unticked
    event = _events(engine, type="preferences")[0]
    assert event.data["changed"] == ["frequency", "offers_email", "paperless", "preferred_channel", "topics"]


def test_behind_a_proxy_clients_are_told_apart_and_unsubscribes_are_never_rate_limited(make_settings, tmp_path):
    from app import create_app

    from .conftest import feedback_settings

    app = create_app(feedback_settings(make_settings, tmp_path, web={"rate_limit": "2/minute", "proxy_hops": 1}))
    app.extensions["ccm"].db.upgrade()
    client = app.test_client()
    codes = [client.get("/t/o/x.gif", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(4)]
    assert codes == [400, 400, 400, 400]  # four customers behind one proxy: four buckets
    same = [client.get("/t/o/x.gif", headers={"X-Forwarded-For": "198.51.100.7"}).status_code for _ in range(3)]
    assert same == [400, 400, 429]
    posts = [client.post("/u/not-a-token", headers={"X-Forwarded-For": "198.51.100.7"}).status_code for _ in range(5)]
    assert 429 not in posts  # a mail provider's one-click POSTs all come from a few servers
    app.extensions["ccm"].close()


def test_the_rate_limiters_counters_start_no_thread_per_hit():
    """limits' memory storage starts a timer thread every 10 ms of traffic; ours sweeps
    expired counters itself (this guards the private hook it replaces)."""
    import threading

    from ccm.web.limits_storage import SWEEP_EVERY, LazyMemoryStorage

    storage = LazyMemoryStorage("ccm-memory://")
    storage.timer.join()  # the one the base class starts when made
    before = threading.active_count()
    for n in range(SWEEP_EVERY + 10):
        storage.incr(f"client-{n % 7}", expiry=0.001 if n < 5 else 60)
    assert threading.active_count() == before and not storage.timer.is_alive()
    assert all(storage.get(f"client-{n}") > 0 for n in range(7))
    assert len(storage.expirations) == 7  # the short-lived ones were swept and counted again

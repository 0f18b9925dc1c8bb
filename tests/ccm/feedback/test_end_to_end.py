"""The feedback loop end to end, with real processes and real HTTP: the weekly deals and one
customer's statement go out (`ccm run`), `ccm serve` runs the public endpoints, and a script
plays customers who open, click, unsubscribe (RFC 8058 POST), reply STOP, HELP and a
question, bounce, complain, whose texts are confirmed by delivery receipts, who buy the
offer, convert in the hold-out group and pay their statement. `ccm report` shows exactly
those numbers (counts, cost, revenue, ROI, variants, lift against the hold-out), the next
run excludes everyone who asked, bounced or complained, and no log line holds an address
or a phone number."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import select

from app import create_app
from ccm.models import Customer, Message, Suppression

from ccm.feedback.response_report import two_proportion_z
from ccm.runs.compose import file_id

from .conftest import CAMPAIGN_CYCLE, delivered, feedback_settings, free_port, in_holdout, people, signed, write_people

CCM = str(Path(sys.executable).with_name("ccm"))
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": BROWSER, **(headers or {})})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def ccm(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([CCM, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def test_customers_respond_through_the_real_endpoints_and_the_report_adds_up(make_settings, config_file, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = feedback_settings(make_settings, tmp_path, web={"public_url": base, "port": port}, ccm={"log_level": "INFO"},
                                 feedback={"receipt_channels": ["sms"]})  # the SMS gateway confirms delivery
    env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
    logs = []
    ccm(env, "db", "upgrade")
    logs.append(ccm(env, "customers", "import", str(write_people(tmp_path / "people.csv", people()))).stderr)
    logs.append(ccm(env, "run", "deals", "--cycle", CAMPAIGN_CYCLE, "--workers", "1").stderr)
    rows = people()
    reached_ids = [row["external_id"] for row in rows if row["external_id"].startswith("E") and not in_holdout(row["external_id"])]
    payer = reached_ids[7]  # also gets the November statement, by post, and pays it
    logs.append(ccm(env, "run", "statement", "--cycle", "2026-11", "--feed", str(_statement_feed(tmp_path, payer)),
                    "--workers", "1").stderr)
    api_token = ccm(env, "tokens", "create", "shop").stdout.strip()

    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_up(base, server)
        app = create_app(settings)
        engine = app.extensions["ccm"]
        got = delivered(engine, tmp_path / "var")
        reached = [ext for ext in got if ext.startswith("E") and not in_holdout(ext)]
        assert reached == reached_ids
        opener, clicker, unsubscriber, looker, bouncer, buyer, complainer = reached[:7]
        sms_stop, sms_help, sms_question = "S000", "S001", "S002"
        holdout = next(ext for ext in (row["external_id"] for row in people()) if in_holdout(ext))

        # Opens: a person (counted) and a mail scanner's HEAD request on a link (flagged, not counted).
        for ext in (opener, clicker):
            status, headers, body = http("GET", got[ext].links(f"{base}/t/o/")[0])
            assert status == 200 and headers["Content-Type"] == "image/gif" and body.startswith(b"GIF89a")
        status, headers, _ = http("GET", got[clicker].links(f"{base}/t/c/")[0])
        with engine.db.session() as session:
            recorded = session.get(Message, got[clicker].message_id).links[0]
        assert status == 302 and headers["Location"] == recorded  # only where the message pointed when sent
        assert http("HEAD", got[looker].links(f"{base}/t/c/")[1])[0] == 302

        # Unsubscribe: a GET (a link scanner, a curious customer) changes nothing; a POST without cookies does.
        assert http("GET", got[looker].unsubscribe_url)[0] == 200
        status, _, page = http("POST", got[unsubscriber].unsubscribe_url, b"List-Unsubscribe=One-Click",
                               {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and b"unsubscribed" in page
        assert http("POST", got["BOTH"].unsubscribe_url, b"List-Unsubscribe=One-Click",
                    {"Content-Type": "application/x-www-form-urlencoded"})[0] == 200

        # SMS replies and an e-mail bounce through signed provider callbacks.
        replies = {"events": [
            {"id": "sms-1", "type": "reply", "from": "+14155550000", "text": "Stop"},
            {"id": "sms-2", "type": "reply", "from": "+14155550001", "text": "HELP"},
            {"id": "sms-3", "type": "reply", "from": "+14155550002", "text": "When are you open on Sunday?"},
        ]}
        body, headers = signed(replies)
        status, _, answer = http("POST", f"{base}/inbound/sms", body, headers)
        assert status == 200 and json.loads(answer)["recorded"] == 3
        assert json.loads(http("POST", f"{base}/inbound/sms", *signed(replies))[2])["duplicates"] == 3  # sent twice: nothing new
        assert http("POST", f"{base}/inbound/sms", body, {**headers, "X-CCM-Signature": "sha256=" + "0" * 64})[0] == 401
        bounce = {"events": [{"id": "b-1", "type": "bounce", "message": got[bouncer].raw["Message-ID"], "permanent": True,
                              "status": "5.1.1", "reason": f"550 5.1.1 <e{bouncer[1:]}@example.com> no such user"}]}
        assert json.loads(http("POST", f"{base}/inbound/email", *signed(bounce, "email"))[2])["recorded"] == 1
        complaint = {"events": [{"id": "c-1", "type": "complaint", "message": got[complainer].raw["Message-ID"]}]}
        assert json.loads(http("POST", f"{base}/inbound/email", *signed(complaint, "email"))[2])["by_type"] == {"complained": 1}
        receipts = {"events": [{"id": f"dlr-{ext}", "type": "delivered", "message": _ref(engine, got[ext].message_id)}
                               for ext in (sms_help, sms_question)]}
        assert json.loads(http("POST", f"{base}/inbound/sms", *signed(receipts))[2])["by_type"] == {"delivered": 2}

        # A purchase of the offer, a conversion in the hold-out group and the payment of a statement,
        # through the API; the purchase sent again is a duplicate.
        auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
        purchase = json.dumps({"id": "order-1", "type": "conversion", "customer": buyer, "amount": "49.90", "currency": "USD",
                               "reference": "Energy Saver plan"}).encode()
        assert http("POST", f"{base}/api/v1/events", purchase, auth)[0] == 201
        assert http("POST", f"{base}/api/v1/events", purchase, auth)[0] == 200
        conversion = json.dumps({"id": "order-7", "type": "conversion", "customer": holdout, "amount": "20.00", "currency": "USD"}).encode()
        assert json.loads(http("POST", f"{base}/api/v1/events", conversion, auth)[2])["recorded"] is True
        assert http("POST", f"{base}/api/v1/events", purchase, {"Content-Type": "application/json"})[0] == 401
        payment = json.dumps({"id": "pay-2026-11-1", "type": "payment", "customer": payer, "amount": "120.00", "currency": "USD",
                              "reference": "paid statement 2026-11"}).encode()
        status, _, answer = http("POST", f"{base}/api/v1/events", payment, auth)
        with engine.db.session() as session:
            statement_id = session.scalar(select(Message.id).join(Customer).where(
                Customer.external_id == payer, Message.purpose == "statement", Message.state == "sent"))
        assert status == 201 and json.loads(answer)["message_id"] == statement_id  # the statement it paid, not the offer

        # Tokens that are forged, tampered with or meant for another purpose are refused.
        pixel = got[opener].links(f"{base}/t/o/")[0]
        token = pixel.rsplit("/", 1)[1].removesuffix(".gif")
        assert http("GET", f"{base}/t/c/{token}")[0] == 400  # an open token used as a click
        assert http("POST", f"{base}/u/{token}")[0] == 400  # ... or as an unsubscribe
        assert http("GET", pixel[:-8] + ("A" if pixel[-8] != "A" else "B") + pixel[-7:])[0] == 400  # one character changed
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
        logs.append(err + out)

    report = json.loads(ccm(env, "report", "run", "1", "--json").stdout)
    total, by_channel = report["total"], report["by"]["channel"]
    emails = 59 + 1  # E000..E059 but the hold-out's E051, and BOTH
    assert (total["messages"], total["sent"]) == (emails + 8 + 1, emails + 8)  # NONE has no channel; the hold-out is apart
    assert total["delivered"] == emails - 1 + 2  # e-mail: sent but the bounce; SMS: the two receipts
    assert total["opened"] == 2 and total["clicked"] == 1 and report["bots_excluded"] == 1
    assert total["unsubscribed"] == 3  # two unsubscribe POSTs and a STOP; the GET did nothing
    assert (total["bounced"], total["complained"]) == (1, 1)
    assert total["converted"] == 1 and total["revenue"] == "49.90"  # the purchase; the hold-out's is not the campaign's
    assert total["responded"] == 3  # the click, the question, the purchase
    assert total["cost"] == "0.68" and total["roi"] == round((49.90 - 0.68) / 0.68, 4)  # 60 x 0.006 + 8 x 0.04
    assert {name: (row["messages"], row["sent"], row["delivered"], row["cost"]) for name, row in by_channel.items()} == {
        "email": (emails, emails, emails - 1, "0.36"), "sms": (8, 8, 2, "0.32"), "(no channel)": (1, 0, 0, "0.00"),
        "(withheld)": (1, 0, 0, "0.00")}
    assert by_channel["sms"]["unsubscribed"] == 1
    assert by_channel["(withheld)"]["converted"] == 1 and by_channel["(withheld)"]["revenue"] == "20.00"
    _check_variants(engine, report, {"opened": {opener, clicker}, "clicked": {clicker}, "responded": {clicker, sms_question, buyer},
                                     "converted": {buyer}, "unsubscribed": {unsubscriber, "BOTH", sms_stop}, "bounced": {bouncer},
                                     "complained": {complainer}, "undelivered": {bouncer} | {f"S{i:03d}" for i in (0, 3, 4, 5, 6, 7)}})

    statement = json.loads(ccm(env, "report", "run", "2", "--json").stdout)["total"]
    assert (statement["messages"], statement["sent"], statement["converted"], statement["responded"]) == (1, 1, 1, 1)
    assert (statement["revenue"], statement["cost"], statement["roi"]) == ("120.00", "0.60", 199.0)  # (120 - 0.60) / 0.60

    # The customers who asked (or bounced) are excluded from the next run, on that channel.
    nxt = json.loads(ccm(env, "run", "deals", "--cycle", "2026-12-07", "--workers", "1", "--json").stdout)
    with engine.db.session() as session:
        states = {ext: (m.state, m.channel, m.reason) for m, ext in session.execute(
            select(Message, Customer.external_id).join(Customer).where(Message.run_id == nxt["run_id"]))}
        suppressed = {(s.channel, s.reason) for s in session.scalars(select(Suppression))}
    assert states[unsubscriber][0] == "suppressed" and "no email consent" in states[unsubscriber][2]
    assert states[bouncer][0] == "suppressed" and "email suppressed (hard_bounce)" in states[bouncer][2]
    assert states[complainer][0] == "suppressed" and "no email consent" in states[complainer][2]
    assert states[sms_stop][0] == "suppressed" and "sms suppressed (stop)" in states[sms_stop][2]
    assert states["BOTH"][:2] == ("sent", "sms")  # unsubscribed from e-mail offers, still wants texts
    assert states[looker][0] == "sent" and states[sms_help][0] == "sent" and states[sms_question][0] == "sent"
    assert suppressed == {("sms", "stop"), ("email", "hard_bounce"), ("email", "complaint")}
    help_lines = [json.loads(line) for line in (tmp_path / "var" / "sms" / "outbox.jsonl").read_text().splitlines()]
    assert [line["to"] for line in help_lines if "Reply STOP to opt out" in line["text"] and "Help:" in line["text"]] == ["+14155550001"]

    joined = "\n".join(logs)
    assert "event " in joined  # the server logged what it recorded ...
    assert not re.search(r"@example\.com|\+1415555\d{4}|Sunday", joined)  # ... without an address, a number or a text
    engine.close()


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            if http("GET", f"{base}/api/v1/openapi.json")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("ccm serve did not start")


def _ref(engine, message_id: int) -> str:
    with engine.db.session() as session:
        return file_id(session.get(Message, message_id))


def _statement_feed(folder: Path, customer: str) -> Path:
    """One November statement of 120.00 due, for ``customer``."""
    record = {"account": "ACC-PAYER", "customer_id": customer, "period": "2026-11", "opening_balance": "100.00",
              "closing_balance": "120.00", "amount_due": "120.00", "due_date": "2026-12-15", "currency": "USD",
              "lines": [{"date": "2026-11-05", "description": "Electricity, October usage", "amount": "20.00"}]}
    path = folder / "statement-feed.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def _check_variants(engine, report: dict, did: dict[str, set[str]]) -> None:
    """Every variant row and the experiment, from each customer's variant and what the script made them do."""
    with engine.db.session() as session:
        messages = [(ext, m.channel, m.state, m.decisions.get("email.offer", {}).get("variant"))
                    for m, ext in session.execute(select(Message, Customer.external_id).join(Customer).where(Message.run_id == 1))]
    cost = {"email": 0.006, "sms": 0.04}
    for variant in ("saver", "bundle", "holdout"):
        mine = [(ext, channel, state) for ext, channel, state, chosen in messages if chosen == variant]
        sent = [ext for ext, _, state in mine if state == "sent"]
        row = report["by"]["variant"][f"weekly-deals-offer/{variant}"]
        assert (row["messages"], row["sent"]) == (len(mine), len(sent))
        assert row["delivered"] == len([ext for ext in sent if ext not in did["undelivered"]])
        for metric in ("opened", "clicked", "responded", "converted", "unsubscribed", "bounced", "complained"):
            assert row[metric] == len([ext for ext, *_ in mine if ext in did[metric] or (variant == "holdout" and metric in
                                       ("responded", "converted"))]), (variant, metric)
        assert row["cost"] == f"{sum(cost[channel] for ext, channel, state in mine if state == 'sent'):.2f}"
        assert row["revenue"] == ("49.90" if variant != "holdout" and set(did["converted"]) & set(sent) else
                                  "20.00" if variant == "holdout" else "0.00")
    experiment = report["experiments"][0]
    cells = experiment["variants"]
    assert cells["holdout"] == {"n": 1, "converted": 1, "clicked": 0}
    for variant in ("saver", "bundle"):
        sent = [ext for ext, _, state, chosen in messages if chosen == variant and state == "sent"]
        converted = len(did["converted"] & set(sent))
        assert cells[variant] == {"n": len(sent), "converted": converted, "clicked": len(did["clicked"] & set(sent))}
        (versus,) = [c for c in experiment["versus_holdout"] if c["variant"] == variant]
        z, p = two_proportion_z(converted, len(sent), 1, 1)
        assert versus["lift"] == round(converted / len(sent) / 1.0 - 1, 4)  # the hold-out converted 1 of 1
        assert versus["p_value"] == round(p, 4) and not versus["enough_data"] and not versus["significant"]  # 1 hold-out
        pooled = (converted + 1) / (len(sent) + 1)  # the z-test worked by hand
        assert math.isclose(z, (converted / len(sent) - 1) / math.sqrt(pooled * (1 - pooled) * (1 / len(sent) + 1)))
    assert experiment["winner"] is None  # one conversion each way: nothing significant

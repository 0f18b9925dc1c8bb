"""SMS through an HTTP gateway, end to end on loopback: the statement cycle's SMS reminders go
through the sms-http adapter (JSON preset) to the demo's local gateway (``ccm demo
sms-gateway``), which reports each delivery to the engine's ``/inbound/sms`` as a provider
does, signed; the receipts are recorded against the messages, and a phone reported
unreachable for good is suppressed for SMS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import func, select

from app import create_app
from ccm.demo import DemoSmsGateway
from ccm.imports import import_customers, import_feed
from ccm.models import Message, Suppression
from ccm.models.feedback import ResponseEvent
from ccm.runs import service
from shared_population import free_port, wait_for

CCM = str(Path(sys.executable).with_name("ccm"))
SECRET = "a callback secret of thirty-two characters or more"


def test_sms_reminders_go_through_the_gateway_and_its_receipts_are_recorded(make_settings, tmp_path, customers_file, feed_file,
                                                                             config_file):
    port = free_port()
    gateway = DemoSmsGateway(tmp_path / "gateway", "demo-token", callback=f"http://127.0.0.1:{port}/inbound/sms", secret=SECRET,
                             receipt_delay=0.05, unreachable=("+8613800138000",)).start()
    sms = f"sms+http://:demo-token@{gateway.url.removeprefix('http://')}/v1/messages?preset=json&from=Northwind"
    settings = make_settings(tmp_path, channels={"sms": sms}, feedback={"webhook_secret": SECRET},
                             web={"public_url": f"http://127.0.0.1:{port}", "port": port})
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=dict(os.environ, CCM_CONFIG=str(config_file(settings))),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/console/signin")
        import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
        import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)
        outcome = service.run_cycle(engine, "statement", "2026-11", progress=False)
        assert outcome.report.state == "completed", outcome.report
        with engine.db.reader() as session:
            texts = {m.id: m for m in session.scalars(select(Message).where(Message.channel == "sms", Message.state == "sent"))}
        assert len(texts) == 2 and all(m.provider_id.startswith("gw-") for m in texts.values())
        handed = [json.loads(line) for line in (tmp_path / "gateway" / "messages.jsonl").read_text().splitlines()]
        assert sorted(row["id"] for row in handed) == sorted(m.provider_id for m in texts.values())
        assert all(row["from"] == "Northwind" and row["text"] for row in handed)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.db.reader() as session:
                events = {(e.type, e.message_id, e.channel) for e in session.scalars(select(ResponseEvent))}
            if len(events) >= 2:
                break
            time.sleep(0.2)
        kinds = sorted(kind for kind, message_id, channel in events if message_id in texts and channel == "sms")
        assert kinds == ["bounced", "delivered"], events
        with engine.db.reader() as session:  # the phone reported unreachable for good gets no more SMS
            assert session.scalar(select(func.count()).select_from(Suppression).where(Suppression.channel == "sms")) == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        gateway.stop()
        engine.close()


def test_the_demo_gateway_runs_from_the_command_line(tmp_path, config_file, make_settings):
    port = free_port()
    env = dict(os.environ, CCM_CONFIG=str(config_file(make_settings(tmp_path))))
    gateway = subprocess.Popen([CCM, "demo", "sms-gateway", "--port", str(port), "--token", "t0k3n"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = gateway.stdout.readline()
        assert first.startswith(f"SMS gateway on http://127.0.0.1:{port}"), first
        body = json.dumps({"to": "+14155550101", "from": "Northwind", "text": "Your statement is ready", "reference": "m1"})
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages", data=body.encode(), method="POST",
                                         headers={"Authorization": "Bearer t0k3n", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201 and json.load(answer)["id"].startswith("gw-")
        wrong = urllib.request.Request(request.full_url, data=body.encode(), method="POST", headers={"Authorization": "Bearer x"})
        try:
            urllib.request.urlopen(wrong, timeout=10)
            raise AssertionError("a wrong token was accepted")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
    finally:
        gateway.terminate()
        output = gateway.communicate(timeout=15)[0]
    assert "stopped after 1 messages" in output
    kept = (tmp_path / "var" / "sms-gateway" / "messages.jsonl").read_text().splitlines()
    assert len(kept) == 1 and json.loads(kept[0])["reference"] == "m1"

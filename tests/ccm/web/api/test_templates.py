"""Templates through the API as a client uses them: the library in pages, a template's
versions, a version's source with its ETag; drafts saved against that ETag (428 without it,
412 when someone saved since, 422 with each problem's line and column); submit, approve
(the author refused by maker-checker), reject with a comment; and previews: the e-mail's
HTML, a PDF and an SMS with its encoding and segments, for a customer or on sample data."""
from __future__ import annotations

INSERT = "inserts/go_paperless.html"
BASE = f"/api/v1/templates/{INSERT}"
BROKEN = '<aside class="insert">\n  <h2>{{ _("Go paperless") }</h2>\n</aside>\n'  # a "}}" missing on line 2
GOOD = ('<aside class="insert insert--paperless">\n  <h2>{{ _("Go paperless") }}</h2>\n'
        '  <p>Paper-free from today, {{ customer.name }}.</p>\n</aside>\n')


def test_the_library_and_a_version_with_its_etag(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("viewer")
    first = client.get("/api/v1/templates", query_string={"limit": 5}, headers=headers).json
    second = client.get("/api/v1/templates", query_string={"limit": 5, "cursor": first["next_cursor"]}, headers=headers).json
    names = [row["name"] for row in first["items"] + second["items"]]
    assert len(names) == 10 and names == sorted(names)
    template = client.get(BASE, headers=headers).json
    assert template["kind"] == "insert" and template["versions"][0]["state"] == "approved"
    version = client.get(f"{BASE}/versions/1", headers=headers)
    assert version.status_code == 200 and "Go paperless" in version.json["source"]
    assert version.headers["ETag"] == version.json["etag"] == template["versions"][0]["etag"]
    assert version.headers["ETag"].startswith('"v1-') and not version.headers["ETag"].startswith("W/")
    assert client.get(f"{BASE}/versions/9", headers=headers).status_code == 404
    assert client.get("/api/v1/templates/nothing/here", headers=headers).status_code == 404


def test_a_draft_needs_the_etag_it_is_based_on_and_shows_each_problem_at_its_line_and_column(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("marketer")
    etag = client.get(f"{BASE}/versions/1", headers=headers).headers["ETag"]
    missing = client.put(f"{BASE}/draft", json={"source": GOOD}, headers=headers)
    assert missing.status_code == 428 and missing.json["field"] == "If-Match" and etag in missing.json["detail"]
    stale = client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**headers, "If-Match": '"v1-0000"'})
    assert stale.status_code == 412
    broken = client.put(f"{BASE}/draft", json={"source": BROKEN}, headers={**headers, "If-Match": etag})
    assert broken.status_code == 422 and broken.content_type.startswith("application/problem+json")
    assert [(p["line"], p["severity"]) for p in broken.json["problems"]] == [(2, "error")]
    assert broken.json["problems"][0]["column"] >= 1 and "line 2, column" in broken.json["errors"][0]["detail"]
    made = client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**headers, "If-Match": etag})
    assert made.status_code == 201 and made.json["version"] == 2 and made.json["state"] == "draft"
    assert made.headers["ETag"] == made.json["etag"] != etag
    changed = client.put(f"{BASE}/draft", json={"source": GOOD.replace("today", "now")}, headers={**headers, "If-Match": made.headers["ETag"]})
    assert changed.status_code == 200 and changed.json["version"] == 2 and changed.headers["ETag"] != made.headers["ETag"]
    again = client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**headers, "If-Match": made.headers["ETag"]})
    assert again.status_code == 412, "the draft changed since that ETag"
    source = client.get(f"{BASE}/versions/2", headers=headers)
    assert "from now" in source.json["source"] and source.headers["ETag"] == changed.headers["ETag"]


def test_a_new_template_is_made_without_if_match_and_needs_its_kind(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("marketer")
    url = "/api/v1/templates/inserts/autumn.html/draft"
    source = "<aside><p>Autumn for {{ customer.name }}</p></aside>\n"
    assert client.put(url, json={"source": source}, headers=headers).json["field"] == "kind"
    assert client.put(url, json={"source": source, "kind": "insert"}, headers={**headers, "If-Match": '"v1-x"'}).status_code == 412
    made = client.put(url, json={"source": source, "kind": "insert", "title": "Autumn"}, headers=headers)
    assert made.status_code == 201 and made.json["version"] == 1 and made.json["kind"] == "insert"
    assert client.put(url, json={"source": source}, headers=headers).status_code == 428


def test_submit_approve_by_another_and_reject_with_a_comment(deals, key_for):
    app, _ = deals
    client = app.test_client()
    maker = key_for("marketer", "approver")  # may approve, but not what it made
    checker = key_for("approver")
    etag = client.get(f"{BASE}/versions/1", headers=maker).headers["ETag"]
    client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**maker, "If-Match": etag})
    submitted = client.post(f"{BASE}/versions/2/submit", headers=maker)
    assert submitted.status_code == 200 and submitted.json["state"] == "in_review"
    assert client.post(f"{BASE}/versions/2/submit", headers=maker).status_code == 409
    own = client.post(f"{BASE}/versions/2/approve", json={}, headers=maker)
    assert own.status_code == 403 and "maker-checker" in own.json["detail"]
    refused = client.post(f"{BASE}/versions/2/approve", json={}, headers=key_for("marketer"))
    assert refused.status_code == 403 and refused.json["permission"] == "templates:approve"
    approved = client.post(f"{BASE}/versions/2/approve", json={"comment": "fine"}, headers=checker)
    assert approved.status_code == 200 and approved.json["state"] == "approved" and approved.json["approved_by"] == "system-1"
    listed = client.get("/api/v1/templates", query_string={"limit": 200}, headers=checker).json["items"]
    assert next(row for row in listed if row["name"] == INSERT)["in_effect"] == 2

    etag = client.get(f"{BASE}/versions/2", headers=maker).headers["ETag"]
    client.put(f"{BASE}/draft", json={"source": GOOD.replace("today", "soon")}, headers={**maker, "If-Match": etag})
    client.post(f"{BASE}/versions/3/submit", headers=maker)
    assert client.post(f"{BASE}/versions/3/reject", json={"comment": "  "}, headers=checker).status_code == 422
    rejected = client.post(f"{BASE}/versions/3/reject", json={"comment": "say when"}, headers=checker)
    assert rejected.status_code == 200 and rejected.json["state"] == "draft"
    assert client.post(f"{BASE}/versions/3/approve", json={}, headers=checker).status_code == 409


def test_refusals_name_the_permission(deals, key_for):
    app, _ = deals
    client, viewer = app.test_client(), key_for("viewer")
    etag = client.get(f"{BASE}/versions/1", headers=viewer).headers["ETag"]
    refused = client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**viewer, "If-Match": etag})
    assert refused.status_code == 403 and refused.json["permission"] == "templates:edit"
    assert client.post(f"{BASE}/versions/1/submit", headers=viewer).json["permission"] == "templates:submit"
    assert client.post(f"{BASE}/versions/1/reject", json={"comment": "no"}, headers=viewer).json["permission"] == "templates:approve"
    assert client.get("/api/v1/templates", headers=key_for("billing")).json["permission"] == "templates:view"
    assert client.get("/api/v1/templates").status_code == 401


def test_previews_as_the_customer_sees_them(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("viewer")
    sms = client.post("/api/v1/templates/sms/weekly_deals.txt/preview", json={"customer": "S001"}, headers=headers)
    assert sms.status_code == 200 and sms.content_type == "application/json"
    assert sms.json["encoding"] in ("GSM-7", "UCS-2") and sms.json["segments"] >= 1 and sms.json["text"]
    email = client.post("/api/v1/templates/email/statement_ready.html/preview", json={}, headers=headers)  # sample data
    assert email.status_code == 200, email.json
    assert email.mimetype == "text/html" and "sandbox" in email.headers["Content-Security-Policy"]
    assert "<html" in email.get_data(as_text=True).lower()
    pdf = client.post(f"{BASE}/preview", json={"source": GOOD, "format": "pdf"}, headers=headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    wrong = client.post("/api/v1/templates/sms/weekly_deals.txt/preview", json={"format": "pdf"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json["field"] == "format"
    nobody = client.post("/api/v1/templates/sms/weekly_deals.txt/preview", json={"customer": "NOBODY"}, headers=headers)
    assert nobody.status_code == 422 and nobody.json["field"] == "customer"
    broken = client.post(f"{BASE}/preview", json={"source": BROKEN}, headers=headers)
    assert broken.status_code == 422
    assert client.post("/api/v1/templates/nothing.html/preview", json={}, headers=headers).status_code == 404


def test_an_approval_takes_effect_when_asked_never_in_the_past(deals, key_for):
    app, _ = deals
    client, maker, checker = app.test_client(), key_for("marketer"), key_for("approver")
    etag = client.get(f"{BASE}/versions/1", headers=maker).headers["ETag"]
    client.put(f"{BASE}/draft", json={"source": GOOD}, headers={**maker, "If-Match": etag})
    client.post(f"{BASE}/versions/2/submit", headers=maker)
    past = client.post(f"{BASE}/versions/2/approve", json={"effective_from": "2020-01-01T00:00:00+00:00"}, headers=checker)
    assert past.status_code == 409 and "retroactively" in past.json["detail"]
    edge = client.post(f"{BASE}/versions/2/approve", json={"effective_from": "0001-01-01T00:00:00+01:00"}, headers=checker)
    assert edge.status_code == 422 and edge.json["field"] == "effective_from"
    later = client.post(f"{BASE}/versions/2/approve", json={"effective_from": "2999-01-01T09:00:00+01:00"}, headers=checker)
    assert later.status_code == 200 and later.json["effective_from"] == "2999-01-01T08:00:00+00:00"


def test_a_preview_from_given_data_lays_it_over_the_sample(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("viewer")
    given = {"customer": {"name": "<b>张伟</b>", "locale": "zh_CN", "address": {"city": "杭州市"}},
             "event": {"amount": "88.00", "currency": "CNY", "reference": "INV-7"}}
    answer = client.post("/api/v1/templates/email/payment_received.html/preview", json={"data": given}, headers=headers)
    assert answer.status_code == 200, answer.json
    html = answer.get_data(as_text=True)
    assert "&lt;b&gt;张伟&lt;/b&gt;" in html and "<b>张伟" not in html  # the name as typed, escaped
    assert "INV-7" in html and "¥88.00" in html and "尊敬的" in html  # in the given locale, its currency formatted
    sample = client.post("/api/v1/templates/email/payment_received.html/preview", json={}, headers=headers).get_data(as_text=True)
    assert "张伟" not in sample and "INV-7" not in sample

    both = client.post("/api/v1/templates/email/payment_received.html/preview", json={"customer": "E001", "data": given},
                       headers=headers)
    assert both.status_code == 422 and both.json["field"] == "data"
    for bad in ({"customer": {"locale": "xx_not"}}, {"customer": {"locale": "fa_IR"}}, {"customer": {"timezone": "../../etc/passwd"}}):
        refused = client.post("/api/v1/templates/email/payment_received.html/preview", json={"data": bad}, headers=headers)
        assert refused.status_code == 422 and refused.json["field"].startswith("data.customer."), refused.json


def test_a_statement_preview_on_given_billing_data(deals, key_for):
    """The billing system asks how a statement will look with its own figures: checked as
    the feed import checks them, and printed in the PDF."""
    import io

    from pypdf import PdfReader

    app, _ = deals
    client, headers = app.test_client(), key_for("viewer")
    statement = {"account": "ACC-PREVIEW-9", "period": "2026-10", "currency": "EUR", "opening_balance": "10.00",
                 "closing_balance": "62.50", "amount_due": "62.50", "due_date": "2026-11-20",
                 "lines": [{"date": "2026-10-05", "description": "Wind <b>turbine</b> #{rent}", "amount": "60.00"},
                           {"date": "2026-10-09", "description": "Refund of deposit", "amount": "-7.50"}]}
    given = {"customer": {"name": "Zoë Example", "locale": "de_DE"}, "statement": statement}
    answer = client.post("/api/v1/templates/statement/statement.html/preview", json={"data": given, "format": "pdf"}, headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "application/pdf", answer.get_data()[:300]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.data)).pages)
    assert "ACC-PREVIEW-9" in text and "Wind <b>turbine</b> #{rent}" in text and "Zoë Example" in text
    assert "62,50" in text and "-7,50" in text.replace("−", "-")  # amounts in the customer's locale
    for field, change in (("closing_balance", {"closing_balance": "99.00"}), ("lines[0].date", {"lines": [
            {"date": "2025-01-01", "description": "x", "amount": "52.50"}]}), ("currency", {"currency": "XXQ"})):
        refused = client.post("/api/v1/templates/statement/statement.html/preview",
                              json={"data": {"statement": {**statement, **change}}, "format": "pdf"}, headers=headers)
        assert refused.status_code == 422 and refused.json["field"] == f"data.statement.{field}", refused.json

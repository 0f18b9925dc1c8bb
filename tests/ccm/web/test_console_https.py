"""The console behind HTTPS: the session cookie is Secure, HSTS is sent, and forms pass the
CSRF check (which compares the Referer over HTTPS) in a real browser; behind a TLS proxy the
scheme comes from X-Forwarded-Proto."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server

from app import create_app
from ccm.staff import create_user

from .conftest import PASSWORD, browser_sign_in, csrf_of


def test_the_console_works_over_https_in_a_browser(make_settings, tmp_path, tls_files, browser):
    from shared_population import free_port

    port = free_port()
    base = f"https://127.0.0.1:{port}"
    app = create_app(make_settings(tmp_path, web={"public_url": base, "port": port}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    create_user(engine, "viewer", PASSWORD, ["viewer"], actor="test")
    cert, key = tls_files
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=(str(cert), str(key)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        browser_sign_in(page, base, "viewer")
        session = next(cookie for cookie in context.cookies() if cookie["name"] == "session")
        assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
        answer = page.goto(f"{base}/console/account")
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        page.get_by_label("Time zone", exact=True).select_option("Asia/Shanghai")
        page.get_by_role("button", name="Save").first.click()
        assert page.get_by_role("status").inner_text() == "Saved."  # the form passed the CSRF check
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/console/signin")
        context.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    engine.close()


def test_behind_a_tls_proxy_the_session_cookie_is_secure(make_settings, tmp_path):
    app = create_app(make_settings(tmp_path, web={"public_url": "https://ccm.example", "proxy_hops": 1,
                                                  "allowed_hosts": ["ccm.example"]}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    create_user(engine, "viewer", PASSWORD, ["viewer"], actor="test")
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ccm.example", "X-Forwarded-For": "203.0.113.9"}
    page = client.get("/console/signin", headers=proxied, base_url="http://ccm.example")
    signed = client.post("/console/signin", headers={**proxied, "Referer": "https://ccm.example/console/signin"},
                         base_url="http://ccm.example", data={"name": "viewer", "password": PASSWORD,
                                                              "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert signed.status_code == 302 and signed.headers["Location"] == "/console/"
    cookie = signed.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    engine.close()

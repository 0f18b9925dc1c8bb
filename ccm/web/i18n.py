"""The pages' language (Flask-Babel): a customer's page speaks the customer's language
(``customers.locale``, once a view has read their token: ``speak``), any other page the
language a console user chose in their account (``staff_locale``), any other page the
language the browser asks for (``Accept-Language``), English where we have no catalogue.

Catalogues: ``ccm/web/translations/<locale>/LC_MESSAGES/messages.po``, compiled to ``.mo``
by ``scripts/translations.sh`` (extract, update, compile); both are committed, so running
the app needs no build step.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel, get_locale, refresh
from flask_babel import gettext as _
from markupsafe import Markup

from documents.i18n import negotiate

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("en", "zh_Hans")


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=_locale, default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.globals["page_language"] = page_language
    app.jinja_env.filters["bdi"] = bdi
    app.context_processor(lambda: _page_context(app.config["CCM"]))


def _page_context(settings: dict) -> dict:
    """What every page may show: the company's branding, and the names of the choices the
    preference centre offers, in the page's language."""
    company = settings["company"]
    return {
        "brand": {"color": settings["web"]["brand_color"], "address": company["address_lines"], "website": company["website"]},
        "topic_names": {"offers": _("Offers"), "news": _("News"), "tips": _("Tips")},
        "frequency_names": {"as_it_happens": _("As it happens"), "weekly": _("At most once a week"), "monthly": _("At most once a month")},
    }


def speak(locale: str) -> None:
    """This request answers a customer whose locale is ``locale`` (e.g. ``zh_CN``)."""
    g.customer_locale = locale
    refresh()  # the locale chosen before (for the request's first words) is chosen again


def bdi(value: object) -> Markup:
    """A customer's string isolated from the text around it (a name written right to left,
    or with bidi controls, cannot turn the sentence around)."""
    return Markup("<bdi>{}</bdi>").format(value)


def _locale() -> str:
    chosen = g.get("customer_locale") or g.get("staff_locale")  # a customer's page; a console user's setting
    if chosen is not None:
        return negotiate(chosen, LANGUAGES[1:]) or "en"
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans", "zh-SG"], default="en")
    return "zh_Hans" if best.startswith("zh") else "en"


def page_language() -> str:
    """The ``lang`` of the page: a BCP 47 tag (``zh-Hans``)."""
    return str(get_locale() or "en").replace("_", "-")

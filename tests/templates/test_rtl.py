"""Arabic and Hebrew documents (issue 13): laid out right to left, translated, dates and
amounts in the customer's locale, customer strings isolated; the PDFs read back.

A PDF keeps glyphs where they stand, not the order they are read in. ``page_lines`` gives
each line of a page as it stands, left to right, with every Arabic or Hebrew word spelled
as it is written; ``rtl(phrase)`` is how a right-to-left phrase stands on such a line
(its words from right to left). Arabic words with a lam-alef ligature (لا, لإ) are not
compared word for word: the PDF maps the ligature's one glyph to both letters, and a word
read back glyph by glyph from the right gives them swapped.
"""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass

import pytest

from documents import TemplateEnvironment, WeasyPrintRenderer, inline_css, load_po, pdf_fonts, sms_info

from .conftest import TEMPLATES, make_context, render_for

FSI, PDI, RLM = "\u2068", "\u2069", "\u200f"
RIGHT_TO_LEFT_LETTER = re.compile("[\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\ufb1d-\ufdff\ufe70-\ufeff]")
RIGHT_TO_LEFT_RUN = re.compile("[\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\ufb1d-\ufdff\ufe70-\ufeff]+")
WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
A4_WIDTH = 595.28
RIGHT_EDGE = A4_WIDTH - 16 * 72 / 25.4  # the right page margin is 16 mm


@dataclass(frozen=True)
class Line:
    text: str
    left: float
    right: float


def page_lines(data: bytes, page: int = 1) -> list[Line]:
    """The lines of ``page`` top down, each as it stands left to right (words of a
    right-to-left script spelled as written), with its left and right edge in points."""
    out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), "-", "-"],
                         input=data, capture_output=True, check=True).stdout.decode("utf-8")
    words = []
    for x0, y0, x1, y1, text in WORD.findall(out):
        text = html.unescape(text)
        spelled = RIGHT_TO_LEFT_RUN.sub(lambda run: run[0][::-1], text)  # the glyphs of a run stand right to left
        words.append((float(x0), (float(y0) + float(y1)) / 2, float(x1), spelled))
    rows: list[list[tuple[float, float, float, str]]] = []
    for word in sorted(words, key=lambda word: word[1]):
        if rows and abs(rows[-1][0][1] - word[1]) < 2.5:
            rows[-1].append(word)
        else:
            rows.append([word])
    return [Line(" ".join(word[3] for word in sorted(row)), min(w[0] for w in row), max(w[2] for w in row))
            for row in rows]


def rtl(phrase: str) -> str:
    """How ``phrase``, read from right to left, stands on a line (each of its left-to-right
    runs must be one word: a number, an amount)."""
    return " ".join(reversed(phrase.split()))


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def line_with(lines: list[Line], text: str) -> Line:
    found = [line for line in lines if line.text == text]
    assert found, f"{text!r} not in {texts(lines)}"
    return found[0]


def customer_in(locale: str, context: dict) -> dict:
    context["customer"].update(locale=locale, timezone="Asia/Jerusalem" if locale.startswith("he") else "Africa/Cairo")
    return context


# Per locale: the statement's words as they stand on the page, left to right.
STATEMENT = {
    "ar_EG": {
        "lang": "ar-EG",
        "heading": rtl("كشف الحساب الشهري"),
        "summary": rtl("ملخص الحساب"),
        # 01/11/2026 – 30/11/2026 read from the right; the label at the right of the value
        "period": "2026/11/30 – 2026/11/01 " + rtl("فترة الكشف"),
        "amount_due": "$US 980.15 " + rtl("المبلغ المستحق"),  # 980.15 US$ read from the right
        "due_date_starts": rtl("21 ديسمبر 2026") + " ",  # then its label (تاريخ الاستحقاق, a lam-alef)
        "line": "$US 1,250.00 Card purchase #000 at Corner Grocery 2026/11/1",
        "due_date_html": f"{FSI}21 ديسمبر 2026{PDI}",
        "amount_due_html": f"{FSI}{RLM}980.15\xa0US${PDI}",
        "page": rtl("صفحة 1 من 2"),
    },
    "he_IL": {
        "lang": "he-IL",
        "heading": rtl("דף חשבון חודשי"),
        "summary": rtl("סיכום החשבון"),
        "period": rtl("תקופת דף החשבון 1 בנוב׳ 2026 – 30 בנוב׳ 2026"),
        "amount_due": rtl("סכום לתשלום 980.15 $"),
        "due_date_starts": rtl("21 בדצמבר 2026") + " ",
        "line": "$ 1,250.00 Card purchase #000 at Corner Grocery 1.11.2026",
        "due_date_html": f"{FSI}21 בדצמבר 2026{PDI}",
        "amount_due_html": f"{FSI}{RLM}980.15\xa0{RLM}${PDI}",
        "page": rtl("עמוד 1 מתוך 2"),
    },
}


@pytest.mark.parametrize("locale", sorted(STATEMENT))
def test_statement_pdf_is_right_to_left_translated_and_in_the_locales_forms(env: TemplateEnvironment,
                                                                             renderer: WeasyPrintRenderer,
                                                                             locale: str) -> None:
    expected = STATEMENT[locale]
    html_text = render_for(env, "statement/statement.html", customer_in(locale, make_context(lines=3)))
    assert f'<html lang="{expected["lang"]}" dir="rtl">' in html_text
    assert expected["due_date_html"] in html_text and expected["amount_due_html"] in html_text

    pdf = renderer.render(html_text, stylesheets=["assets/statement.css"])
    lines = page_lines(pdf.data)
    heading = line_with(lines, expected["heading"])
    assert heading.right == pytest.approx(RIGHT_EDGE, abs=1) and heading.left > A4_WIDTH / 2  # at the right
    assert line_with(lines, expected["summary"]).right == pytest.approx(RIGHT_EDGE, abs=1)
    line_with(lines, expected["period"])
    line_with(lines, expected["amount_due"])
    assert any(line.startswith(expected["due_date_starts"]) for line in texts(lines)), texts(lines)
    transaction = line_with(lines, expected["line"])  # date at the right, amount at the left
    assert transaction.left < 70 and transaction.right == pytest.approx(RIGHT_EDGE - 5.7, abs=1)
    footer = [line for line in texts(lines) if line.startswith(expected["page"])]
    assert footer == [f"{expected['page']} Acme Energy"]  # the company's name in the right-hand corner
    everything = "\n".join(texts(lines))
    assert "012026" not in everything and "Monthly statement" not in everything
    assert any("DejaVu" in font for font in pdf_fonts(pdf.data))  # a font with the script, embedded


def test_the_english_statement_is_unchanged_left_to_right(env: TemplateEnvironment,
                                                          renderer: WeasyPrintRenderer) -> None:
    html_text = render_for(env, "statement/statement.html", make_context(lines=3))
    assert '<html lang="en-US" dir="ltr">' in html_text and FSI not in html_text
    lines = page_lines(renderer.render(html_text, stylesheets=["assets/statement.css"]).data)
    heading = line_with(lines, "Monthly statement")
    assert heading.left == pytest.approx(20 * 72 / 25.4, abs=1)
    line_with(lines, "Amount due $980.15")
    line_with(lines, "Statement period Nov 1, 2026 – Nov 30, 2026")


NAME = "Ann Lee Jr."  # in a right-to-left sentence without an isolate the final dot jumps to the name's left


def test_a_latin_name_inside_arabic_text_is_isolated(env: TemplateEnvironment, renderer: WeasyPrintRenderer) -> None:
    context = customer_in("ar_EG", make_context(lines=1))
    context["customer"]["name"] = NAME
    context["customer"]["address"]["line1"] = "12 Elm Street"
    insert = render_for(env, "inserts/premium_upgrade.html", context)
    assert f"{FSI}{NAME}{PDI}، احصل على دعم ذي أولوية" in insert
    context["slots"]["statement.insert"] = insert
    pdf = renderer.render(render_for(env, "statement/statement.html", context), stylesheets=["assets/statement.css"])
    lines = texts(page_lines(pdf.data))
    assert "12 Elm Street" in lines  # the address line keeps its order too
    sentence = [line for line in lines if NAME in line]
    assert len(sentence) == 2 and sentence[0] == NAME  # the recipient, then the insert
    assert sentence[1].endswith(f" ،{NAME}")  # the name starts the sentence, at the right, its comma after it

    # the same sentence with the name not isolated: what the isolate prevents
    bare = TemplateEnvironment({"t.html": '<html dir="rtl"><p>{{ customer.name }}، مرحبا بك</p></html>'}.get)
    unisolated = texts(page_lines(renderer.render(bare.render("t.html", context, locale="ar_EG")).data))
    assert unisolated == [rtl("مرحبا بك") + " ،.Ann Lee Jr"], unisolated


@pytest.mark.parametrize("locale, heading, due", [
    ("he_IL", "החשבון שלך", "סכום לתשלום 980.15 $"),
    ("ar_EG", "فاتورتك", "المبلغ المستحق 980.15 $US"),
])
def test_bill_is_right_to_left_and_its_scan_line_left_to_right(env: TemplateEnvironment, renderer: WeasyPrintRenderer,
                                                               locale: str, heading: str, due: str) -> None:
    html_text = render_for(env, "bill/bill.html", customer_in(locale, make_context(lines=1)))
    assert 'dir="rtl"' in html_text
    lines = page_lines(renderer.render(html_text, stylesheets=["assets/bill.css"]).data)
    assert line_with(lines, rtl(heading)).right == pytest.approx(RIGHT_EDGE, abs=1)
    line_with(lines, rtl(due))
    scan = line_with(lines, "ACC-0042-7788 2026-11 980.15")  # read by machines, left to right
    assert scan.left == pytest.approx(20 * 72 / 25.4, abs=1)


@pytest.mark.parametrize("locale, heading", [("ar_EG", "كيف نستخدم بياناتك"), ("he_IL", "כיצד אנו משתמשים במידע שלך")])
def test_terms_page_is_right_to_left(env: TemplateEnvironment, renderer: WeasyPrintRenderer,
                                     locale: str, heading: str) -> None:
    html_text = render_for(env, "statement/terms.html", customer_in(locale, make_context(lines=1)))
    assert 'dir="rtl"' in html_text
    lines = page_lines(renderer.render(html_text, stylesheets=["assets/statement.css"]).data)
    assert line_with(lines, rtl(heading)).right == pytest.approx(RIGHT_EDGE, abs=1)


EMAIL = {
    "ar_EG": ("كشف حسابك من ⁨Acme Energy⁩ لفترة ⁨2026-11⁩ جاهز",
              "عزيزي/عزيزتي ⁨Alice Walker⁩،",
              "كشف حسابك لفترة ⁨2026-11⁩ جاهز.",
              f"المبلغ المستحق: {FSI}{RLM}980.15\xa0US${PDI}",
              f"تاريخ الاستحقاق: {FSI}21 ديسمبر 2026{PDI}"),
    "he_IL": ("דף החשבון שלך מ-⁨Acme Energy⁩ לתקופה ⁨2026-11⁩ מוכן",
              "שלום ⁨Alice Walker⁩,",
              "דף החשבון שלך לתקופה ⁨2026-11⁩ מוכן.",
              f"סכום לתשלום: {FSI}{RLM}980.15\xa0{RLM}${PDI}",
              f"תאריך אחרון לתשלום: {FSI}21 בדצמבר 2026{PDI}"),
}


@pytest.mark.parametrize("locale", sorted(EMAIL))
def test_statement_ready_email_is_right_to_left(env: TemplateEnvironment, locale: str) -> None:
    subject, greeting, ready, amount, due = EMAIL[locale]
    context = customer_in(locale, make_context(lines=1))
    assert render_for(env, "email/statement_ready.subject.txt", context).strip() == subject
    text = render_for(env, "email/statement_ready.txt", context)
    assert text.splitlines()[:6] == [greeting, "", ready, "", amount, due]
    html_text = render_for(env, "email/statement_ready.html", context)
    lang = locale.replace("_", "-")
    assert f'<html lang="{lang}" dir="rtl">' in html_text and '<div class="container" dir="rtl">' in html_text
    assert f"<p>{greeting}</p>" in html_text and f"<p>{ready}</p>" in html_text
    inlined = inline_css(html_text)
    value_cell = re.search(r'<td class="value" style="([^"]*)"', inlined)
    assert value_cell and "text-align: left" in value_cell[1]  # the values at the left in right-to-left


SMS = {
    ("ar_EG", "sms/statement_ready.txt"):
        f"كشف حسابك من {FSI}Acme Energy{PDI} لفترة {FSI}2026-11{PDI} جاهز. المبلغ المستحق "
        f"{FSI}{RLM}980.15\xa0US${PDI} في موعد أقصاه {FSI}21{RLM}/12{RLM}/2026{PDI}.",
    ("he_IL", "sms/statement_ready.txt"):
        f"דף החשבון שלך מ-{FSI}Acme Energy{PDI} לתקופה {FSI}2026-11{PDI} מוכן. סכום לתשלום "
        f"{FSI}{RLM}980.15\xa0{RLM}${PDI} עד {FSI}21 בדצמ׳ 2026{PDI}.",
    ("ar_EG", "sms/payment_due.txt"):
        f"تذكير من {FSI}Acme Energy{PDI}: يستحق مبلغ {FSI}{RLM}980.15\xa0US${PDI} في {FSI}21{RLM}/12{RLM}/2026{PDI}. "
        "إذا كنت قد سددته بالفعل، فتجاهل هذه الرسالة.",
    ("he_IL", "sms/payment_due.txt"):
        f"תזכורת מ-{FSI}Acme Energy{PDI}: סכום של {FSI}{RLM}980.15\xa0{RLM}${PDI} לתשלום עד {FSI}21 בדצמ׳ 2026{PDI}. "
        "כבר שילמת? אפשר להתעלם מהודעה זו.",
}


@pytest.mark.parametrize("locale, name", sorted(SMS))
def test_sms_texts_in_arabic_and_hebrew(env: TemplateEnvironment, locale: str, name: str) -> None:
    text = render_for(env, name, customer_in(locale, make_context(lines=1))).strip()
    assert text == SMS[locale, name]
    info = sms_info(text)
    assert info.encoding == "UCS-2" and info.segments <= 2


@pytest.mark.parametrize("language", ["ar", "he"])
def test_catalogs_keep_every_placeholder(language: str) -> None:
    for msgid, msgstr in load_po(TEMPLATES / "i18n" / f"{language}.po").items():
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", msgstr)), msgid
        assert RIGHT_TO_LEFT_LETTER.search(msgstr), msgid


@pytest.mark.parametrize("locale", ["fa_IR", "ur_PK"])
def test_other_right_to_left_locales_are_made_in_english(env: TemplateEnvironment, locale: str) -> None:
    """Imports refuse them; a customer stored with one before gets an English document, never a garbled one."""
    html_text = env.render("statement/statement.html", make_context(lines=1), locale=locale)
    assert '<html lang="en" dir="ltr">' in html_text and "Dec 1, 2026" in html_text and FSI not in html_text

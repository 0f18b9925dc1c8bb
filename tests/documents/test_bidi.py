"""Customer data with bidi controls reaches templates isolated, whatever its shape."""

from __future__ import annotations

import pytest

from documents import TemplateEnvironment

FSI, PDI = "\u2068", "\u2069"


@pytest.mark.parametrize("hostile", [
    "x\u202eevil",  # right-to-left override
    "x\u2069\u202eevil",  # a pop of the isolate first, to escape it
    "x\u202b\u202aevil\u202c",  # embeddings
    "x\u2067evil",  # an isolate never closed
])
def test_controls_are_removed_and_the_string_isolated(hostile: str) -> None:
    env = TemplateEnvironment({"t.txt": "{{ name }} | {{ rows[0].note }} | {{ pair[1] }} | rest"}.get)
    output = env.render("t.txt", {"name": hostile, "rows": [{"note": hostile}], "pair": ("ok", hostile)})
    assert output == f"{FSI}xevil{PDI} | {FSI}xevil{PDI} | {FSI}xevil{PDI} | rest"


def test_slots_are_rendered_documents_and_pass_as_they_are() -> None:
    env = TemplateEnvironment({"t.html": "{{ slot('s') }}"}.get)
    block = f"<p>{FSI}Ann{PDI}</p>"
    assert env.render("t.html", {"slots": {"s": block}}) == block


RLM = "\u200f"


def test_a_right_to_left_render_isolates_amounts_dates_parameters_and_filtered_strings() -> None:
    env = TemplateEnvironment({"t.txt": "{{ direction }}|{{ 980.15 | string | money('USD') }}|{{ day | date('long') }}|"
                                        "{{ 1234 | number }}|{{ _('Dear %(name)s,', name=name) }}|{{ name | isolate }}|"
                                        "{{ none | isolate }}"}.get,
                              translations={"ar": {"Dear %(name)s,": "عزيزي %(name)s،"}})
    from datetime import date
    data = {"day": date(2026, 12, 21), "name": "Ann Lee Jr.", "none": None}
    assert env.render("t.txt", data, locale="ar_EG").split("|") == [
        "rtl", f"{FSI}{RLM}980.15\xa0US${PDI}", f"{FSI}21 ديسمبر 2026{PDI}", f"{FSI}1,234{PDI}",
        f"عزيزي {FSI}Ann Lee Jr.{PDI}،", f"{FSI}Ann Lee Jr.{PDI}", "None"]
    # left to right: exactly as Babel formats, nothing added
    assert env.render("t.txt", data, locale="en_US").split("|") == [
        "ltr", "$980.15", "December 21, 2026", "1,234", "Dear Ann Lee Jr.,", "Ann Lee Jr.", "None"]


def test_an_isolated_value_is_not_isolated_twice() -> None:
    env = TemplateEnvironment({"t.txt": "{{ _('Due %(amount)s', amount=a | money('ILS')) }}"}.get)
    assert env.render("t.txt", {"a": "5"}, locale="he_IL") == f"Due {FSI}{RLM}5.00\xa0{RLM}₪{PDI}"

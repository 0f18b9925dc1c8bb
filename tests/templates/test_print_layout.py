"""Where the printed documents put things: the masthead beside the company block and above
the address window, whatever layout mechanism the stylesheet uses."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from documents import TemplateEnvironment, WeasyPrintRenderer

from .conftest import make_context, render_for

MM = 96 / 25.4  # CSS pixels per millimetre


def boxes(box: Any) -> Iterator[Any]:
    yield box
    for child in getattr(box, "children", []):
        yield from boxes(child)


def first(page: Any, css_class: str) -> Any:
    return next(b for b in boxes(page) if getattr(b, "element", None) is not None
                and css_class in (b.element.get("class") or "").split() and b.element_tag != "span")


@pytest.mark.parametrize("name, sheet", [("statement/statement.html", "assets/statement.css"),
                                         ("bill/bill.html", "assets/bill.css")])
@pytest.mark.parametrize("chinese", [False, True], ids=["en", "zh"])
def test_masthead_holds_logo_and_company_above_the_address(
        env: TemplateEnvironment, renderer: WeasyPrintRenderer, name: str, sheet: str, chinese: bool) -> None:
    html = render_for(env, name, make_context(chinese=chinese))
    page = renderer._layout(html, [sheet], {}).pages[0]._page_box
    masthead, logo, company, recipient = (first(page, c) for c in ("masthead", "logo", "company", "recipient"))
    assert logo.position_y == company.position_y == masthead.position_y  # both at the top
    assert logo.position_x == masthead.position_x  # logo on the left
    right = lambda b: b.position_x + b.margin_width()  # noqa: E731
    assert abs(right(company) - right(masthead)) < 0.5  # company block on the right
    assert company.margin_width() <= 80 * MM + 0.5  # never wider than the space beside the logo
    bottom = masthead.border_box_y() + masthead.border_height()
    assert bottom >= company.position_y + company.margin_height() - 0.5  # it holds the taller float
    assert bottom >= logo.position_y + logo.margin_height() - 0.5
    assert recipient.border_box_y() >= bottom + 6 * MM - 0.5  # the address window below it, never over it

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

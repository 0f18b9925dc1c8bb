"""SMS encoding, units and segmentation."""

from __future__ import annotations

from documents import sms_info


def test_gsm_single_segment_limit() -> None:
    assert sms_info("a" * 160).segments == 1
    info = sms_info("a" * 161)
    assert (info.encoding, info.segments, info.units) == ("GSM-7", 2, 161)
    assert [len(part) for part in info.parts] == [153, 8]


def test_gsm_multipart_153() -> None:
    info = sms_info("b" * 306)
    assert info.segments == 2 and all(len(part) == 153 for part in info.parts)
    assert sms_info("b" * 307).segments == 3


def test_extension_chars_count_two_and_never_split() -> None:
    assert sms_info("€" * 80).units == 160 and sms_info("€" * 80).segments == 1
    assert sms_info("[]{}~|^\\").units == 16
    info = sms_info("a" * 152 + "€" + "b" * 10)
    assert info.encoding == "GSM-7" and info.units == 164
    assert info.parts[0] == "a" * 152 and info.parts[1].startswith("€")
    assert "".join(info.parts) == "a" * 152 + "€" + "b" * 10


def test_gsm_accented_basic_set() -> None:
    assert sms_info("Café à Málaga: 5€").encoding == "UCS-2"  # 'á' is not GSM
    assert sms_info("Café à Paris: 5€").encoding == "GSM-7"


def test_ucs2_limits() -> None:
    assert sms_info("你" * 70) .segments == 1
    info = sms_info("你" * 71)
    assert (info.encoding, info.segments, info.units) == ("UCS-2", 2, 71)
    assert [len(part) for part in info.parts] == [67, 4]


def test_emoji_counts_two_units_and_is_never_split() -> None:
    assert sms_info("😀" * 35).units == 70 and sms_info("😀" * 35).segments == 1
    info = sms_info("x" * 66 + "😀" + "y")
    assert info.encoding == "UCS-2" and info.units == 69 and info.segments == 1
    info = sms_info("x" * 66 + "😀" + "y" * 10)
    assert info.parts[0] == "x" * 66 and info.parts[1].startswith("😀")
    assert all(len(part.encode("utf-16-le")) // 2 <= 67 for part in info.parts)


def test_empty_text_is_one_empty_gsm_segment() -> None:
    """As reference segment counters have it: an empty message is still one message sent."""
    info = sms_info("")
    assert (info.encoding, info.segments, info.units, info.parts) == ("GSM-7", 1, 0, ("",))

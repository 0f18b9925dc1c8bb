"""Column types that behave the same on SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

SCALE = 10_000  # money is stored as whole ten-thousandths: exact, and summable in SQL everywhere
MAX_MONEY = Decimal("900000000000000")  # 9 * 10**14, inside a signed 64-bit integer at this scale


class Money(TypeDecorator):
    """A decimal amount stored as a scaled 64-bit integer.

    SQLite has no decimal type (it would store floats); an integer of ten-thousandths is
    exact on both databases, compares and sums in SQL, and comparisons with literals in
    rule expressions get the same scaling through the bind processor.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        amount = Decimal(value)
        if abs(amount) >= MAX_MONEY:
            raise ValueError(f"amount {amount} is out of range")
        return int((amount * SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return _from_scaled(int(value))


def _from_scaled(value: int) -> Decimal:
    amount = Decimal(value) / SCALE
    # Keep at least two decimals (12.5 -> 12.50) and at most four.
    return amount.quantize(Decimal("0.01")) if amount == amount.quantize(Decimal("0.01")) else amount.quantize(Decimal("0.0001"))


JsonDoc = JSON().with_variant(JSONB(), "postgresql")

"""The rule language of segments and content decisions (README, "Rule language").

One expression, e.g. ``tier == "vip" and balance_due > 500 and days_since(last_response_at) < 90``,
parsed with Python's ``ast`` (whitelisted nodes, never ``eval``) and compiled from one
tree to a SQLAlchemy condition (audiences inside the database) and to a Python function
(one customer on demand), with the same results.
"""
from ccm.rules.errors import RuleError
from ccm.rules.fields import FIELDS, FieldSpec
from ccm.rules.parse import FUNCTIONS, parse
from ccm.rules.python import compile_python
from ccm.rules.rule import Rule, load_values, to_values, values_columns
from ccm.rules.sql import compile_sql

__all__ = [
    "FIELDS", "FUNCTIONS", "FieldSpec", "Rule", "RuleError", "compile_python", "compile_sql", "load_values",
    "parse", "to_values", "values_columns",
]

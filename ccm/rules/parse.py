"""From text to a checked tree: Python's ``ast`` in eval mode, whitelisted nodes only
(never ``eval``), fields and types checked, every error with its column.
"""
from __future__ import annotations

import ast
import datetime as dt
import difflib
import re
from collections.abc import Collection
from typing import Any

from ccm.rules import tree as t
from ccm.rules.errors import RuleError
from ccm.rules.fields import FIELDS
from ccm.rules.types import ANY, BOOL, COERCE, NUMBER, TEXT, TIME

MAX_LENGTH = 4000
MAX_DEPTH = 32  # nesting levels; deeper trees would exhaust the SQL compiler's recursion
MAX_NUMBER = 1e15
MIN_NUMBER = 1e-6
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
FUNCTIONS = {
    "days_since": 1, "lower": 1, "contains": 2, "starts_with": 2, "between": 3,
    "in_segment": 1, "attr": 1, "date": 1, "present": 1, "missing": 1,
}
COMPARE_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
ARITHMETIC_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
NAMED_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}
ORDERED = (NUMBER, TIME)
TYPE_WORDS = {NUMBER: "a number", TEXT: "text", BOOL: "yes/no", TIME: "a date", ANY: "an attribute"}


def parse(expression: str, *, segments: Collection[str] | None = None) -> t.Node:
    """Parse and check ``expression``; ``segments`` (names) checks ``in_segment`` when given."""
    return _Checker(expression, segments).check()


def _suggest(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Checker:
    def __init__(self, expression: str, segments: Collection[str] | None) -> None:
        self.text = expression
        self.segments = segments

    def fail(self, reason: str, node: ast.AST | t.Node | None = None) -> RuleError:
        column = None
        if isinstance(node, t.Node):
            column = node.column
        elif node is not None and hasattr(node, "col_offset"):
            column = self.column(node)
        return RuleError(reason, column, self.text)

    def column(self, node: ast.AST) -> int:
        # ast offsets count UTF-8 bytes; report characters, 1-based.
        encoded = self.flat.encode("utf-8")
        return len(encoded[: node.col_offset].decode("utf-8", errors="ignore")) + 1 + self.shift

    def check(self) -> t.Node:
        if not isinstance(self.text, str) or not self.text.strip():
            raise RuleError("the rule is empty")
        if len(self.text) > MAX_LENGTH:
            raise RuleError(f"the rule is longer than {MAX_LENGTH} characters")
        flat = re.sub(r"[\r\n\t]", " ", self.text)
        self.flat = flat.lstrip()
        self.shift = len(flat) - len(self.flat)  # leading blanks would be an indent error
        try:
            tree = ast.parse(self.flat, mode="eval")
        except SyntaxError as exc:
            reason = (exc.msg or "invalid syntax").replace("invalid syntax. Perhaps you forgot a comma?", "invalid syntax")
            column = exc.offset + self.shift if exc.offset else None
            raise RuleError(f"syntax error: {reason}", column, self.text) from None
        except (RecursionError, MemoryError, ValueError):
            raise RuleError("the rule is too deeply nested or invalid") from None
        depth = _depth(tree.body)
        if depth > MAX_DEPTH:
            raise RuleError(f"the rule nests {depth} levels deep; at most {MAX_DEPTH} are allowed (split it into segments)")
        try:
            return self.condition(tree.body)
        except RecursionError:
            raise RuleError("the rule is too deeply nested") from None

    # -- conditions -------------------------------------------------------------------
    def condition(self, node: ast.AST) -> t.Node:
        col = self.column(node) if hasattr(node, "col_offset") else 1
        if isinstance(node, ast.BoolOp):
            items = tuple(self.condition(value) for value in node.values)
            return t.All(col, items) if isinstance(node.op, ast.And) else t.AnyOf(col, items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return t.Not(col, self.condition(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        result = self.expression(node)
        if t.is_condition(result):
            return result
        if result.type == ANY:
            return t.Truth(col, t.Coerce(col, result, BOOL))
        if result.type == BOOL:
            return t.Truth(col, result)
        raise self.fail(f"expected a condition (yes/no) but this is {TYPE_WORDS[result.type]}; compare it, e.g. with ==", node)

    def compare(self, node: ast.Compare) -> t.Node:
        parts, left = [], self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            col = self.column(node.left) if not parts else self.column(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                parts.append(self.in_list(left, right_node, isinstance(op, ast.NotIn), node))
                left = None
                if len(node.ops) > 1:
                    raise self.fail("'in' cannot be chained with other comparisons", right_node)
                continue
            if type(op) not in COMPARE_OPS:
                raise self.fail("'is' is not supported; use == or present(x) / missing(x)", right_node)
            right = self.value(right_node)
            parts.append(self.comparison(COMPARE_OPS[type(op)], left, right, col, right_node))
            left = right
        return parts[0] if len(parts) == 1 else t.All(self.column(node), tuple(parts))

    def comparison(self, op: str, left: t.Node, right: t.Node, col: int, where: ast.AST) -> t.Node:
        left, right = self.unify(left, right, where)
        if op not in ("==", "!=") and left.type not in ORDERED:
            hint = "use ==, !=, in, contains or starts_with" if left.type == TEXT else "use == or !="
            raise self.fail(f"{TYPE_WORDS[left.type]} cannot be compared with {op}; {hint}", where)
        return t.Compare(col, op, left, right)

    def unify(self, left: t.Node, right: t.Node, where: ast.AST) -> tuple[t.Node, t.Node]:
        if left.type == ANY and right.type == ANY:
            return t.Coerce(left.column, left, TEXT), t.Coerce(right.column, right, TEXT)
        for attribute, other in ((left, right), (right, left)):
            if attribute.type == ANY and other.type not in COERCE:
                raise self.fail(
                    f"an attribute cannot be compared with {TYPE_WORDS[other.type]}; "
                    f"compare it with a number, a text or yes/no", where)
        if left.type == ANY:
            return t.Coerce(left.column, left, right.type), right
        if right.type == ANY:
            return left, t.Coerce(right.column, right, left.type)
        if left.type != right.type:
            raise self.fail(f"cannot compare {TYPE_WORDS[left.type]} with {TYPE_WORDS[right.type]}", where)
        return left, right

    def in_list(self, left: t.Node, node: ast.AST, negated: bool, whole: ast.AST) -> t.Node:
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)) or not node.elts:
            raise self.fail("'in' needs a list of values, e.g. tier in (\"vip\", \"key\")", node)
        values = [self.value(item) for item in node.elts]
        for item, value in zip(node.elts, values):
            if not isinstance(value, t.Literal):
                raise self.fail("the list after 'in' may hold only plain values", item)
        types = {value.type for value in values}
        if len(types) > 1:
            raise self.fail("the values after 'in' must all be of one type", node)
        probe, _ = self.unify(left, values[0], node)
        if probe.type == BOOL:
            raise self.fail("use == with yes/no values, not 'in'", node)
        return t.InList(self.column(whole), probe, tuple(v.value for v in values), negated)

    # -- values -----------------------------------------------------------------------
    def value(self, node: ast.AST) -> t.Node:
        result = self.expression(node)
        if t.is_condition(result):
            raise self.fail("a condition cannot be used as a value here; combine conditions with and/or/not", node)
        return result

    def number(self, node: ast.AST) -> t.Node:
        result = self.value(node)
        if result.type == ANY:
            return t.Coerce(result.column, result, NUMBER)
        if result.type != NUMBER:
            raise self.fail(f"expected a number but this is {TYPE_WORDS[result.type]}", node)
        return result

    def text_value(self, node: ast.AST) -> t.Node:
        result = self.value(node)
        if result.type == ANY:
            return t.Coerce(result.column, result, TEXT)
        if result.type != TEXT:
            raise self.fail(f"expected text but this is {TYPE_WORDS[result.type]}", node)
        return result

    def expression(self, node: ast.AST) -> t.Node:
        if not hasattr(node, "col_offset"):
            raise self.fail(f"{type(node).__name__} is not allowed in a rule")
        col = self.column(node)
        if isinstance(node, ast.Constant):
            return self.literal(node.value, node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in ("attributes", "attr"):
                return self.attribute(node.attr, node)
            raise self.fail("only attributes.NAME may use a dot", node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.number(node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(operand, t.Literal):
                return t.Literal(col, -operand.value, NUMBER)
            return t.Negate(col, operand)
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC_OPS:
            return t.Arithmetic(col, ARITHMETIC_OPS[type(node.op)], self.number(node.left), self.number(node.right))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.BoolOp, ast.Compare)) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            return self.condition(node)
        raise self.fail(f"{_describe(node)} is not allowed in a rule", node)

    def literal(self, value: Any, node: ast.AST) -> t.Node:
        col = self.column(node)
        if isinstance(value, bool):
            return t.Literal(col, value, BOOL)
        if isinstance(value, (int, float)):
            if not abs(value) < MAX_NUMBER:
                raise self.fail(f"numbers must be below {MAX_NUMBER:,.0f}", node)
            if value and abs(value) < MIN_NUMBER:
                raise self.fail("numbers have at most 6 decimals", node)
            return t.Literal(col, float(value), NUMBER)
        if isinstance(value, str):
            return t.Literal(col, value, TEXT)
        if value is None:
            raise self.fail("None is not a value in rules; use missing(x) or present(x)", node)
        raise self.fail(f"{type(value).__name__} values are not allowed in a rule", node)

    def name(self, node: ast.Name) -> t.Node:
        if node.id in NAMED_CONSTANTS:
            return t.Literal(self.column(node), NAMED_CONSTANTS[node.id], BOOL)
        spec = FIELDS.get(node.id)
        if spec is None:
            if node.id in ("null", "none", "None"):
                raise self.fail(f"{node.id} is not a value in rules; use missing(x) or present(x)", node)
            raise self.fail(f"unknown field {node.id!r}{_suggest(node.id, [*FIELDS, 'attributes'])}", node)
        return t.Field(self.column(node), spec)

    def attribute(self, key: str, node: ast.AST) -> t.Node:
        if not ATTRIBUTE_NAME.fullmatch(key):
            raise self.fail("attribute names are letters, digits and _ (up to 64)", node)
        return t.Attribute(self.column(node), key)

    def call(self, node: ast.Call) -> t.Node:
        col = self.column(node)
        if not isinstance(node.func, ast.Name):
            raise self.fail("only the rule helpers can be called, e.g. days_since(x)", node)
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(f"unknown function {name!r}{_suggest(name, FUNCTIONS)}", node)
        if node.keywords or len(node.args) != FUNCTIONS[name] or any(isinstance(a, ast.Starred) for a in node.args):
            count = FUNCTIONS[name]
            raise self.fail(f"{name}() takes {count} value{'s' if count > 1 else ''}", node)
        args = node.args
        if name in ("attr", "in_segment", "date"):
            if not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
                raise self.fail(f"{name}() takes a quoted name, e.g. {name}(\"{'2026-01-31' if name == 'date' else 'plan'}\")", args[0])
            return getattr(self, f"call_{name}")(args[0].value, args[0], col)
        if name == "days_since":
            operand = self.value(args[0])
            if operand.type != TIME:
                raise self.fail(f"days_since() needs a date field, e.g. days_since(last_response_at), not {TYPE_WORDS[operand.type]}", args[0])
            return t.DaysSince(col, operand)
        if name == "lower":
            return t.Lower(col, self.text_value(args[0]))
        if name in ("contains", "starts_with"):
            return t.TextTest(col, name, self.text_value(args[0]), self.text_value(args[1]))
        if name in ("present", "missing"):
            present = t.Present(col, self.value(args[0]))
            return present if name == "present" else t.Not(col, present)
        low = self.comparison(">=", self.value(args[0]), self.value(args[1]), col, args[1])
        high = self.comparison("<=", self.value(args[0]), self.value(args[2]), col, args[2])
        return t.All(col, (low, high))

    def call_attr(self, key: str, node: ast.AST, col: int) -> t.Node:
        return self.attribute(key, node)

    def call_date(self, text: str, node: ast.AST, col: int) -> t.Node:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise self.fail(f"date() takes a date as YYYY-MM-DD, got {text!r}", node) from None
        return t.Literal(col, dt.datetime(day.year, day.month, day.day), TIME)

    def call_in_segment(self, name: str, node: ast.AST, col: int) -> t.Node:
        if self.segments is not None and name not in self.segments:
            raise self.fail(f"unknown segment {name!r}{_suggest(name, self.segments)}", node)
        return t.InSegment(col, name)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Subscript: "indexing with []", ast.Lambda: "lambda", ast.IfExp: "if/else",
        ast.JoinedStr: "an f-string", ast.Dict: "a dict", ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator", ast.Starred: "*", ast.NamedExpr: ":=",
        ast.List: "a list (only after 'in')", ast.Tuple: "a list (only after 'in')",
    }
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return names.get(type(node), type(node).__name__)


def _depth(node: ast.AST) -> int:
    """How deep an expression tree nests (iteratively: a deep tree must not crash this)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(current))
    return deepest

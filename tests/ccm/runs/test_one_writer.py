"""Run and message state have one writer, ``ccm/runs/outbox.py`` (issue 14): every other
module of the engine reads them. Read from the source: any insert of a message or a run,
any update of a run, any update of messages that sets ``state``, and any ``run.state =`` or
``message.state =`` outside the outbox fails this test, naming the file and line."""
from __future__ import annotations

import ast
from pathlib import Path

CCM = Path(__file__).resolve().parents[3] / "ccm"
WRITER = CCM / "runs" / "outbox.py"
ENTITIES = {"Message", "Run"}


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called, args = node.func.id, node.args
            entity = next((a.id for a in args if isinstance(a, ast.Name) and a.id in ENTITIES), None)
            if called in ("insert", "insert_or_ignore") and entity:
                found.append((node.lineno, f"{called}({entity})"))
            elif called in ENTITIES and any(k.arg == "state" for k in node.keywords):
                found.append((node.lineno, f"{called}(state=...)"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Call) and isinstance(node.func.func, ast.Name):
            if node.func.func.id == "dialect_insert" and ENTITIES & _names(ast.Module(body=[ast.Expr(a) for a in node.args], type_ignores=[])):
                found.append((node.lineno, "dialect_insert(...)(Message/Run)"))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "state" and isinstance(target.value, ast.Name) \
                        and target.value.id in ("run", "message"):
                    found.append((node.lineno, f"{target.value.id}.state = ..."))
    return found + _updates(tree)


def _updates(tree: ast.AST) -> list[tuple[int, str]]:
    """``update(Run)`` at all; ``update(Message)`` where the statement (or the function
    around it) sets a state."""
    found = []
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        sets_state = any(isinstance(n, ast.keyword) and n.arg == "state" for n in ast.walk(function)) or any(
            isinstance(n, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "state" for k in n.keys) for n in ast.walk(function))
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "update" and node.args \
                    and isinstance(node.args[0], ast.Name):
                if node.args[0].id == "Run" or (node.args[0].id == "Message" and sets_state):
                    found.append((node.lineno, f"update({node.args[0].id}) setting state"))
    return found


def test_only_the_outbox_writes_run_and_message_state():
    offenders = []
    for path in sorted(CCM.rglob("*.py")):
        if path == WRITER or "migrations" in path.parts or path.parent.name == "models":
            continue
        for line, what in _writes(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(CCM.parent)}:{line}: {what}")
    assert not offenders, "run and message state are written only by ccm/runs/outbox.py:\n" + "\n".join(offenders)


def test_the_check_finds_a_writer():
    sneaky = ast.parse("def f(session):\n    session.execute(update(Message).values(state='sent'))\n    run.state = 'done'\n")
    assert [what for _, what in _writes(sneaky)] == ["run.state = ...", "update(Message) setting state"]

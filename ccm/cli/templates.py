"""``ccm templates``: author, review, approve, preview and prove templates and content blocks."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from ccm.previews import PreviewError, ProofError, render_bundle, send_proof, sms_json, write_preview
from ccm.cli.common import clean_errors, engine
from ccm.cli.identity import acting
from ccm.models import Template
from ccm.authoring import (KINDS, Problem, TemplateStoreError, ValidationFailed, WorkflowError, approve, audit, check, diff,
                           get_version, list_templates, reject, retire, save_draft, show, submit,
                           sync_library_checked, template_history)
from documents import TemplateProblem

ERRORS = (WorkflowError, TemplateStoreError, LookupError, PreviewError, ProofError, TemplateProblem)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) if as_json else text)


def _problems(problems: list[Problem]) -> None:
    for problem in problems:
        if problem.severity != "error":
            click.echo(f"  {problem}", err=problem.severity == "warning")


def _datetime(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[+zone], got {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


@click.group("templates", help="Author templates and content blocks: drafts, review, approval, preview, proofs.")
def templates_group() -> None:
    pass


@templates_group.command("sync", help="Import changed library files (templates/) as new drafts, validated as a save is "
                                       "(files with errors are refused); a new store is seeded as approved v1.")
@json_option
@clean_errors(*ERRORS)
def sync_command(as_json: bool) -> None:
    ccm = engine()
    with ccm.db.session() as session:
        result = sync_library_checked(session, ccm.templates_dir, ccm.settings)
        created = [{"name": v.template.name, "version": v.version, "state": v.state} for v in result.created]
    lines = [f"{c['name']} v{c['version']} ({c['state']})" for c in created]
    if as_json or lines or not result.refused:
        _emit(created, as_json, "\n".join(lines) or "library unchanged")
    for problems in result.refused.values():
        for problem in problems:
            click.echo(str(problem), err=True)
    if result.refused:
        raise click.ClickException(f"{len(result.refused)} library file(s) refused, not imported: {', '.join(result.refused)}")


@templates_group.command("list", help="List templates and blocks with their newest version and the version in effect.")
@json_option
@clean_errors(*ERRORS)
def list_command(as_json: bool) -> None:
    with engine().db.session() as session:
        rows = list_templates(session)
    text = "\n".join(f"{r['name']:<40} {r['kind']:<14} v{r['latest']} {r['latest_state']:<10} in effect: "
                     f"{'v' + str(r['in_effect']) if r['in_effect'] else '-'}" for r in rows)
    _emit(rows, as_json, text or "no templates: run `ccm templates sync`")


@templates_group.command("show", help="Show a version (default: the newest) with its source.")
@click.argument("name")
@click.option("--version", "version", type=int, help="Version number.")
@click.option("--source", "source_only", is_flag=True, help="Print only the source (to edit it and save a new draft).")
@json_option
@clean_errors(*ERRORS)
def show_command(name: str, version: int | None, source_only: bool, as_json: bool) -> None:
    with engine().db.session() as session:
        data = show(session, name, version)
    if source_only:
        click.echo(data["source"], nl=False)
        return
    header = (f"{data['name']} v{data['version']} · {data['kind']} · {data['state']} · author {data['author']}"
              + (f" · approved by {data['approved_by']} · effective from {data['effective_from']}" if data["approved_by"] else ""))
    _emit(data, as_json, f"{header}\n\n{data['source']}")


@templates_group.command("edit", help="Save a file as a new draft (validated; errors refuse the save), or into draft --version.")
@click.argument("name")
@click.option("--file", "file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", type=int, help="Update this draft instead of making a new one.")
@click.option("--kind", type=click.Choice(KINDS), help="Kind of a new template.")
@click.option("--title", help="Title of a new template.")
@click.option("--slots", help="Comma-separated slots the template offers (default: as the newest version).")
@json_option
@clean_errors(*ERRORS)
def edit_command(name: str, file: Path, version: int | None, kind: str | None, title: str | None, slots: str | None,
                 as_json: bool) -> None:
    actor = acting("templates:edit").name
    ccm = engine()
    try:
        source = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8 text") from None
    try:
        with ccm.db.session() as session:
            meta = None
            if slots is not None:
                current = session.scalar(select(Template).where(Template.name == name))
                base = dict(current.versions[-1].meta or {}) if current and current.versions else {}
                meta = {**base, "slots": [s.strip() for s in slots.split(",") if s.strip()]}
            saved = save_draft(session, ccm.settings, name, source, actor, kind=kind, title=title, meta=meta, version=version)
    except ValidationFailed as exc:
        for problem in exc.problems:
            if problem.severity == "error":
                click.echo(str(problem), err=True)
        raise click.ClickException(f"{name}: {len([p for p in exc.problems if p.severity == 'error'])} error(s), nothing saved") from None
    data = {"name": saved.name, "version": saved.version, "state": saved.state, "problems": [p.to_json() for p in saved.problems]}
    if as_json:
        _emit(data, True, "")
        return
    click.echo(f"{name} v{saved.version} saved as {saved.state}; submit it with: ccm templates submit {name} {saved.version}")
    _problems(saved.problems)


STEP_PERMISSIONS = {"submit": "templates:submit", "approve": "templates:approve", "reject": "templates:approve",
                    "retire": "templates:approve"}


def _step(name: str, version: int, action: str, **kwargs: Any) -> None:
    actor = acting(STEP_PERMISSIONS[action], fresh=action == "approve").name
    ccm = engine()
    try:
        with ccm.db.session() as session:
            if action == "submit":
                problems = submit(session, ccm.settings, name, version, actor)
                click.echo(f"{name} v{version} is in review; another person approves it with: ccm templates approve {name} {version}")
                _problems(problems)
            elif action == "approve":
                done = approve(session, ccm.settings, name, version, actor, **kwargs)
                click.echo(f"{name} v{version} approved by {actor}, in effect from {done.effective_from:%Y-%m-%d %H:%M} UTC")
            elif action == "reject":
                reject(session, name, version, actor, **kwargs)
                click.echo(f"{name} v{version} rejected, back to draft")
            else:
                retire(session, name, version, actor)
                click.echo(f"{name} v{version} retired")
    except ValidationFailed as exc:
        for problem in exc.problems:
            if problem.severity == "error":
                click.echo(str(problem), err=True)
        raise click.ClickException(f"{name} v{version} has errors; fix them in a new draft") from None


@templates_group.command("submit", help="Submit a draft for review (validated again).")
@click.argument("name")
@click.argument("version", type=int)
@clean_errors(*ERRORS)
def submit_command(name: str, version: int) -> None:
    _step(name, version, "submit")


@templates_group.command("approve", help="Approve a version in review; the approver must not be its author or submitter.")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--effective-from", help="When it takes effect: YYYY-MM-DD or an ISO datetime (UTC unless a zone is given). Default: now.")
@click.option("--comment", help="A note kept in the history (no customer data).")
@clean_errors(*ERRORS)
def approve_command(name: str, version: int, effective_from: str | None, comment: str | None) -> None:
    _step(name, version, "approve", effective_from=_datetime(effective_from), comment=comment)


@templates_group.command("reject", help="Send a version in review back to draft, with a reason.")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", required=True, help="What must change (no customer data).")
@clean_errors(*ERRORS)
def reject_command(name: str, version: int, reason: str) -> None:
    _step(name, version, "reject", reason=reason)


@templates_group.command("retire", help="Retire an approved version: runs planned from now on no longer use it.")
@click.argument("name")
@click.argument("version", type=int)
@clean_errors(*ERRORS)
def retire_command(name: str, version: int) -> None:
    _step(name, version, "retire")


@templates_group.command("validate", help="Validate a version (default: the newest) and print every problem with line and column.")
@click.argument("name")
@click.option("--version", "version", type=int)
@json_option
@clean_errors(*ERRORS)
def validate_command(name: str, version: int | None, as_json: bool) -> None:
    ccm = engine()
    with ccm.db.session() as session:
        problems = check(session, ccm.settings, get_version(session, name, version))
    _emit([p.to_json() for p in problems], as_json, "\n".join(str(p) for p in problems) or "no problems")
    if any(p.severity == "error" for p in problems):
        raise SystemExit(1)


@templates_group.command("diff", help="Unified diff of the source of two versions.")
@click.argument("name")
@click.argument("first", type=int)
@click.argument("second", type=int)
@json_option
@clean_errors(*ERRORS)
def diff_command(name: str, first: int, second: int, as_json: bool) -> None:
    with engine().db.session() as session:
        text = diff(session, name, first, second)
    _emit({"name": name, "from": first, "to": second, "diff": text}, as_json, text.rstrip("\n") or "no differences")


@templates_group.command("history", help="Who did what when to a template, from the audit log.")
@click.argument("name")
@json_option
@clean_errors(*ERRORS)
def history_command(name: str, as_json: bool) -> None:
    with engine().db.session() as session:
        entries = template_history(session, name)
    text = "\n".join(f"{e['at']}  {e['actor']:<16} {e['action']:<13} v{e['version']}"
                     + (f"  {json.dumps(e['details'], ensure_ascii=False)}" if e["details"] else "") for e in entries)
    _emit(entries, as_json, text or "no history")


@templates_group.command("preview", help="Render what a customer would receive: PDF (+PNG), e-mail .eml/.html, SMS text.")
@click.argument("name")
@click.option("--version", "version", type=int, help="Version to preview (default: the newest, drafts included).")
@click.option("--customer", help="External id of a real customer.")
@click.option("--cycle", help="Billing cycle YYYY-MM of that customer's data (default: the latest).")
@click.option("--sample", is_flag=True, help="Use sample data instead of a customer.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: [authoring] preview_dir/NAME-vV).")
@click.option("--all-variants", is_flag=True, help="Also render the document with every block each slot could hold.")
@json_option
@clean_errors(*ERRORS)
def preview_command(name: str, version: int | None, customer: str | None, cycle: str | None, sample: bool, out: Path | None,
                    all_variants: bool, as_json: bool) -> None:
    actor = acting("templates:view").name
    ccm = engine()
    bundle = render_bundle(ccm, name, version=version, customer=customer, cycle=cycle, sample=sample, all_variants=all_variants)
    folder = out or Path(ccm.settings["authoring"]["preview_dir"]) / f"{name.replace('/', '__')}-v{bundle.version}"
    files = write_preview(bundle, folder, ccm.settings)
    with ccm.db.session() as session:
        audit(session, actor, "preview", name, bundle.version, sample=sample or None, variants=all_variants or None)
    data: dict[str, Any] = {"name": name, "version": bundle.version, "out": str(folder), "files": [str(f) for f in files],
                            "pages": bundle.pages}
    if bundle.sms is not None:
        data["sms"] = sms_json(bundle.sms)
    text = [f"{name} v{bundle.version} → {folder}"] + [f"  {f.name}" for f in files]
    if bundle.sms is not None:
        text.append(f"  SMS: {data['sms']['encoding']}, {data['sms']['segments']} segment(s), {data['sms']['characters']} characters")
    _emit(data, as_json, "\n".join(text))


@templates_group.command("test-send", help="Send a proof (marked [PROOF], header X-CCM-Proof: yes) to a seed list from [proofs] seed_lists.")
@click.argument("name")
@click.option("--to", "seed", required=True, help="Name of a seed list in [proofs] seed_lists.")
@click.option("--version", "version", type=int, help="Version (default: the newest).")
@click.option("--customer", help="Render with this customer's data (default: sample data).")
@json_option
@clean_errors(*ERRORS)
def test_send_command(name: str, seed: str, version: int | None, customer: str | None, as_json: bool) -> None:
    actor = acting("templates:edit").name
    ccm = engine()
    from ccm.previews import seed_list

    seed_list(ccm.settings, seed)  # an unknown list fails before anything renders
    bundle = render_bundle(ccm, name, version=version, customer=customer, sample=customer is None)
    result = send_proof(ccm, bundle, seed, actor)
    data = {"name": name, "version": bundle.version, "seed_list": seed, "sent": result.sent, "failed": result.failed}
    _emit(data, as_json, f"proof of {name} v{bundle.version} sent to {result.sent} address(es) of seed list {seed}"
          + "".join(f"\n  failed: {reason}" for reason in result.failed))
    if result.failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(templates_group)

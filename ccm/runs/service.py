"""The run operations the CLI, the API and the scheduler call: plan and execute a cycle,
resume, pause, cancel, report."""
from __future__ import annotations

from dataclasses import dataclass


from channels import ChannelConfigError, channel_from_url
from ccm.wiring import Engine
from ccm.settings import configured_channels
from ccm.models import Run, RunState, utcnow
from ccm.runs import outbox
from ccm.runs.outbox import observed_state, release_dead_claims
from ccm.runs.executor import RunStateError, execute, load_run
from ccm.runs.plan import PlanResult, plan_run
from ccm.runs.books import RunReport, run_report

ALLOWED = {
    "paused": ("planned", "running", "waiting", "interrupted"),
    "cancelled": ("planned", "running", "waiting", "paused", "interrupted", "failed"),
}


@dataclass(frozen=True)
class CycleOutcome:
    plan: PlanResult
    report: RunReport


def check_channels(engine: Engine) -> dict[str, str]:
    """Every configured channel, built once so a bad URL fails before anything is planned;
    returns where each delivers, with secrets masked."""
    return {kind: channel_from_url(url).url(privacy=True) for kind, url in configured_channels(engine.settings).items()}


def check_executor(engine: Engine, executor: str | None) -> None:
    if (executor or engine.settings["ccm"]["executor"]) == "celery":
        from ccm.runs.distributed import check_ready

        check_ready(engine)


def outputs(engine: Engine) -> dict[str, str]:
    """Where each channel delivers, for reports; a bad URL is shown as such, not raised."""
    shown = {}
    for kind, url in configured_channels(engine.settings).items():
        try:
            shown[kind] = channel_from_url(url).url(privacy=True)
        except ChannelConfigError as exc:
            shown[kind] = f"(misconfigured: {exc})"
    return shown


def report(engine: Engine, run_id: int) -> RunReport:
    with engine.db.reader() as session:
        return run_report(session, run_id, outputs(engine), engine.settings["costs"], settings=engine.settings)


def run_cycle(
    engine: Engine, communication: str, cycle: str, *, workers: int | None = None, progress: bool = True,
    executor: str | None = None, audience: str | None = None,
) -> CycleOutcome:
    """Plan (idempotent) and deliver everything claimable. Running a cycle twice sends nothing twice."""
    check_channels(engine)
    check_executor(engine, executor)
    plan = plan_run(engine, communication, cycle, audience=audience)
    with engine.db.session() as session:
        state = session.get(Run, plan.run_id).state
    if state != "paused":
        execute(engine, plan.run_id, workers=workers, progress=progress, executor=executor)
    return CycleOutcome(plan=plan, report=report(engine, plan.run_id))


def resume(
    engine: Engine, run_id: int, *, workers: int | None = None, retry_now: bool = False, progress: bool = True, executor: str | None = None
) -> RunReport:
    check_channels(engine)
    check_executor(engine, executor)
    with engine.db.session() as session:
        run = load_run(session, run_id, resumable=True)
        if observed_state(run, engine.settings) == "running":
            seen = f", heard from at {run.heartbeat_at:%H:%M:%S} UTC" if run.heartbeat_at else ""
            raise RunStateError(f"run {run_id} is running in process {run.owner}{seen}; pause it first (ccm runs pause {run_id})")
        if retry_now:
            outbox.retry_now(session, run_id)
    execute(engine, run_id, workers=workers, progress=progress, executor=executor)
    return report(engine, run_id)


def set_state(engine: Engine, run_id: int, state: str) -> str:
    """Pause or cancel. A cancel suppresses what is not sent yet, including the claims of
    workers that died; live workers give theirs back as suppressed after their current message."""
    if state == "cancelled":
        release_dead_claims(engine, run_id)
    with engine.db.session() as session:
        run = load_run(session, run_id)
        current = observed_state(run, engine.settings)
        if current not in ALLOWED[state]:
            raise RunStateError(f"run {run_id} is {current}; it cannot be {state}")
        if state == RunState.CANCELLED:
            outbox.set_run(session, run_id, state=state, finished_at=utcnow())
            outbox.cancel_open(session, run_id)
        else:
            outbox.set_run(session, run_id, state=state)
        return state

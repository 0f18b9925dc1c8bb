"""``Idempotency-Key`` on POST and PUT: the first request with a key is answered and its
answer kept (per caller, with a hash of the method, path and body); the same request with
the same key gets that answer again, replayed (``Idempotent-Replayed: true``), without
doing anything twice; the key with other content gets 409, and so does a second request
while the first is still being answered. Answers of 500 and up are not kept, so a retry
runs again. Kept for ``[web] idempotency_hours`` (default 24)."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Any, Callable

from flask import Response, g, make_response, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ccm.models import utcnow
from ccm.models.feedback import IdempotencyKey
from ccm.web.api.auth import engine
from ccm.web.api.problems import errors, fail

HEADER = "Idempotency-Key"
MAX_LENGTH = 200
KEEP_HOURS = 24


def _parameter(required: bool) -> dict[str, Any]:
    return {"in": "header", "name": HEADER, "required": required,
            "description": "any unique text (a UUID): a retry with the same key and content gets the first answer again, "
                           "with other content 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH}}


def _hash() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _caller() -> str:
    return g.get("api_token") or "anonymous"


def _claim(key: str, request_hash: str) -> IdempotencyKey | None:
    """None when this request is the first with ``key`` (now claimed), else the row of the first."""
    with engine().db.session() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.caller == _caller(), IdempotencyKey.key == key,
                                                     IdempotencyKey.created_at < utcnow() - dt.timedelta(hours=KEEP_HOURS)))
    try:
        with engine().db.session() as session:
            session.add(IdempotencyKey(caller=_caller(), key=key, request_hash=request_hash, created_at=utcnow()))
        return None
    except IntegrityError:
        with engine().db.reader() as session:
            found = session.scalar(select(IdempotencyKey).where(IdempotencyKey.caller == _caller(), IdempotencyKey.key == key))
            if found is not None:
                session.expunge(found)
            return found


def _keep(key: str, response: Response | None) -> None:
    with engine().db.session() as session:
        where = (IdempotencyKey.caller == _caller(), IdempotencyKey.key == key)
        if response is None or response.status_code >= 500:
            session.execute(delete(IdempotencyKey).where(*where))
        else:
            session.execute(update(IdempotencyKey).where(*where).values(
                status=response.status_code, body=response.get_data(as_text=True), content_type=response.content_type))


def idempotent(blueprint: Any, *, required: bool = False) -> Callable:
    """Honour ``Idempotency-Key`` on this operation (``required``: refuse a request without
    one with 400). Goes right under ``require``, so the caller is known."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get(HEADER, "").strip()
            if not key:
                if required:
                    fail(400, f"this operation needs an {HEADER} header", field=HEADER)
                return view(*args, **kwargs)
            if len(key) > MAX_LENGTH:
                fail(400, f"{HEADER} is longer than {MAX_LENGTH} characters", field=HEADER)
            request_hash = _hash()
            first = _claim(key, request_hash)
            if first is not None:
                if first.request_hash != request_hash:
                    fail(409, f"this {HEADER} was used before with other content", field=HEADER)
                if first.status is None:
                    fail(409, f"a request with this {HEADER} is still being answered; retry later", field=HEADER)
                replay = Response(first.body, status=first.status, content_type=first.content_type)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            response = None
            try:
                response = make_response(view(*args, **kwargs))
            finally:
                _keep(key, response)
            return response

        documented = blueprint.doc(parameters=[_parameter(required)])(inner)
        return errors(blueprint, 400, 409)(documented)

    return decorate

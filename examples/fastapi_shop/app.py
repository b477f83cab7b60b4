"""A small shop backend embedding casework: FastAPI on the host's own SQLAlchemy engine.

Run it (from the repository's root)::

    pip install -e '.[test]' uvicorn
    SHOP_DB=sqlite:///shop.db uvicorn --factory examples.fastapi_shop.app:create_app

Who calls is read from two headers, ``X-Actor`` and ``X-Role`` (a real shop takes them from its login).

Sync endpoints, not ``AsyncEngine``: FastAPI runs a ``def`` endpoint on its thread pool, casework's
``Engine`` is safe to share between threads, and ``engine.using(conn)`` joins the host's transaction for
the calls of the current thread only, which is what writing an order and its case atomically needs
(``AsyncEngine`` calls run on threads of their own and do not join a host transaction).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from casework import Actor, CaseworkError, Engine, InvalidInput, PolicySet, TransitionDenied
from casework.clock import Clock, system_clock
from casework.values import parse_money

metadata = sa.MetaData()  # the host's own tables, on the host's own MetaData (casework keeps to its own)
orders = sa.Table(
    "shop_orders", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("customer", sa.String(80), nullable=False),
    sa.Column("total", sa.Numeric(12, 2), nullable=False),
    sa.Column("case_number", sa.String(40), nullable=False),
)
# What the shop's outbox consumer did with each change (here: records it; a shop would e.g. notify the
# customer), and how far it has read: written in one transaction, so each change is consumed once.
consumed = sa.Table(
    "shop_consumed", metadata,
    sa.Column("change_id", sa.BigInteger, primary_key=True),
    sa.Column("case_number", sa.String(40), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("state", sa.String(40)),
)
cursors = sa.Table(
    "shop_cursors", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("after", sa.BigInteger, nullable=False),
)


def caller(x_actor: Annotated[str, Header()], x_role: Annotated[str, Header()]) -> Actor:
    """Who calls (a real shop takes it from its login)."""
    return Actor(x_actor, x_role)


Caller = Annotated[Actor, Depends(caller)]


def create_app(db: sa.Engine | str | None = None, *, policies: str | PolicySet | None = None,
               clock: Clock = system_clock) -> FastAPI:
    """The shop's app on ``db`` (the host's SQLAlchemy Engine, or a URL; default ``$SHOP_DB``)."""
    host = db if isinstance(db, sa.Engine) else sa.create_engine(
        db or os.environ.get("SHOP_DB", "sqlite:///shop.db"), pool_pre_ping=True)
    metadata.create_all(host)  # a real host runs its Alembic here (README: Schema and migrations)
    engine = Engine(host, policies=policies, clock=clock)  # one Engine per process, on the host's pool
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()

    app = FastAPI(title="shop", lifespan=lifespan)
    app.state.host, app.state.engine = host, engine

    @app.exception_handler(CaseworkError)
    def casework_error(request: Request, exc: CaseworkError) -> JSONResponse:
        body = exc.to_json()
        if isinstance(exc, TransitionDenied):  # what to tell the customer, in the case's language
            body["customer_message"] = engine.messages(exc.decision, number=exc.number)
        return JSONResponse(body, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # a malformed request is a 400, as casework's InvalidInput; 422 stays a refusal by the policy
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _problem(400, "InvalidInput", f"{where}: {first['msg']}")

    @app.post("/cases", status_code=201)
    def open_case(who: Caller, kind: Annotated[str, Body()], facts: Annotated[dict[str, Any], Body()],
                  order: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
        """Open a case; with ``order`` ({"id", "total"}), the host's order row and the case in one transaction."""
        if order is None:
            return engine.open(kind, facts, actor=who).to_json()
        order_id, total = _order(order)
        try:
            with host.begin() as conn, engine.using(conn):  # commit both, or (an exception) neither
                case = engine.open(kind, {**facts, "order_id": order_id}, actor=who)
                conn.execute(orders.insert().values(id=order_id, customer=case.customer or who.id, total=total,
                                                    case_number=case.number))
        except sa.exc.IntegrityError:  # the host's own error: the order exists (its case rolled back too)
            return _problem(409, "OrderExists", f"order {order_id!r} exists already")
        return case.to_json()

    @app.get("/cases")
    def list_cases(kind: str | None = None, state: str | None = None, order_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return [c.to_json() for c in engine.find(kind=kind, state=state, order_id=order_id, limit=limit,
                                                 offset=offset)]

    @app.get("/cases/{number}")
    def get_case(number: str) -> dict[str, Any]:
        return engine.get(number).to_json()

    @app.post("/cases/{number}/events/{event}")
    def fire(number: str, event: str, who: Caller, data: Annotated[dict[str, Any] | None, Body(embed=True)] = None,
             expected_version: Annotated[int | None, Body(embed=True)] = None) -> dict[str, Any]:
        return engine.fire(number, event, actor=who, data=data, expected_version=expected_version).to_json()

    @app.post("/cases/{number}/events/{event}/check")
    def check(number: str, event: str, who: Caller,
              data: Annotated[dict[str, Any] | None, Body(embed=True)] = None) -> dict[str, Any]:
        decision = engine.check(number, event, actor=who, data=data)
        return {**decision.to_json(), "customer_message": engine.messages(decision, number=number)}

    @app.get("/cases/{number}/next")
    def next_events(number: str, who: Caller) -> list[dict[str, Any]]:
        return [d.to_json() for d in engine.next_events(number, actor=who)]

    @app.get("/cases/{number}/history")
    def history(number: str) -> list[dict[str, Any]]:
        return [e.to_json() for e in engine.history(number)]

    @app.post("/outbox/consume")
    def consume(limit: int = 100) -> Any:
        """Consume up to ``limit`` changes past the stored cursor (call it from a loop or a scheduler)."""
        try:
            with host.begin() as conn:
                row = conn.execute(sa.select(cursors.c.after).where(cursors.c.name == "shop")
                                   .with_for_update()).first()
                after = 0 if row is None else row.after
                changes = engine.changes(after=after, limit=limit)  # applied transitions, in commit order
                for change in changes:
                    conn.execute(consumed.insert().values(change_id=change.id, case_number=change.number,
                                                          event=change.event, state=change.entry.to_state))
                if changes:
                    cursor = {"name": "shop", "after": changes[-1].id}
                    conn.execute(cursors.insert().values(cursor) if row is None else
                                 cursors.update().where(cursors.c.name == "shop").values(cursor))
        except sa.exc.IntegrityError:  # another consumer took the same changes first: it has them
            return _problem(409, "ConsumerConflict", "another consumer took these changes; call again")
        return [{"id": c.id, "number": c.number, "event": c.event} for c in changes]

    @app.get("/outbox/consumed")
    def list_consumed() -> list[dict[str, Any]]:
        with host.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(consumed).order_by(consumed.c.change_id)).mappings()]

    @app.get("/orders/{order_id}")
    def get_order(order_id: str) -> Any:
        with host.connect() as conn:
            row = conn.execute(sa.select(orders).where(orders.c.id == order_id)).mappings().first()
        if row is None:
            return _problem(404, "OrderNotFound", f"no order {order_id!r}")
        return {**row, "total": str(row["total"])}

    return app


def _order(order: Mapping[str, Any]) -> tuple[str, Decimal]:
    order_id = order.get("id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidInput(f"order id {order_id!r} is not a non-empty string", field="order.id", value=order_id)
    return order_id, parse_money(order.get("total"), "order.total")




def _problem(status: int, type_: str, message: str) -> JSONResponse:
    """The host's own errors, in the same shape as a CaseworkError's ``to_json()``."""
    return JSONResponse({"type": type_, "message": message, "http_status": status}, status_code=status)

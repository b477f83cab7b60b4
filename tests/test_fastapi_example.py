"""The worked example (examples/fastapi_shop): a FastAPI shop embedding casework on its own SQLAlchemy
engine, driven through a real HTTP client, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from casework import FixedClock, PolicySet
from examples.fastapi_shop.app import create_app, metadata, orders

CUSTOMER = {"X-Actor": "cust-1", "X-Role": "customer"}
AGENT = {"X-Actor": "alice", "X-Role": "agent"}
REFUND = {"order_id": "SO-0", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


@pytest.fixture
def host(db_url: str) -> Iterator[sa.Engine]:
    host = sa.create_engine(db_url, pool_pre_ping=True)
    metadata.drop_all(host)  # the shop's own tables, left by nobody else
    yield host
    metadata.drop_all(host)
    host.dispose()


@pytest.fixture
def client(host: sa.Engine, clock: FixedClock, default_policy: PolicySet) -> Iterator[TestClient]:
    with TestClient(create_app(host, policies=default_policy, clock=clock)) as client:
        yield client


def _open(client: TestClient, order: str | None = None, **facts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "refund", "facts": {**REFUND, **facts}}
    if order is not None:
        body["order"] = {"id": order, "total": "59.00"}
    response = client.post("/cases", json=body, headers=CUSTOMER)
    assert response.status_code == 201, response.json()
    return response.json()


def _orders(host: sa.Engine) -> list[dict[str, Any]]:
    with host.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(orders)).mappings()]


def test_open_get_list_fire_check_next_and_history_over_http(client: TestClient):
    number = _open(client, order_id="SO-7")["number"]
    assert client.get(f"/cases/{number}").json()["state"] == "submitted"
    assert [c["number"] for c in client.get("/cases", params={"order_id": "SO-7"}).json()] == [number]
    assert client.get("/cases", params={"order_id": "SO-8"}).json() == []

    check = client.post(f"/cases/{number}/events/approve/check", json={}, headers=AGENT)
    assert check.status_code == 200 and check.json()["allowed"] is True
    assert client.get(f"/cases/{number}").json()["state"] == "submitted"  # a check writes nothing

    events = [d["event"] for d in client.get(f"/cases/{number}/next", headers=AGENT).json()]
    assert "approve" in events and "pay" not in events

    fired = client.post(f"/cases/{number}/events/approve", json={}, headers=AGENT)
    assert fired.status_code == 200 and fired.json()["state"] == "approved"
    assert client.post(f"/cases/{number}/events/pay", json={}, headers=AGENT).json()["state"] == "refunded"
    history = client.get(f"/cases/{number}/history").json()
    assert [(e["event"], e["outcome"]) for e in history] == [("open", "applied"), ("approve", "applied"),
                                                             ("pay", "applied")]


def test_an_event_not_available_from_the_state_is_409(client: TestClient):
    number = _open(client)["number"]
    response = client.post(f"/cases/{number}/events/pay", json={}, headers=AGENT)
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "EventNotAvailable" and body["http_status"] == 409
    assert [r["code"] for r in body["decision"]["reasons"]] == ["not_available"]
    assert "approve" in body["decision"]["reasons"][0]["details"]["available"]


def test_a_policy_refusal_is_422_with_the_verdicts_and_the_customer_message(client: TestClient):
    number = _open(client, amount="80.00")["number"]  # more than was paid
    response = client.post(f"/cases/{number}/events/approve", json={}, headers=AGENT)
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "TransitionDenied" and body["number"] == number
    failed = [v for v in body["decision"]["verdicts"] if not v["passed"]]
    assert [v["guard"] for v in failed] == ["refund_not_above_paid"] and failed[0]["code"]
    assert all(v["code"] is None for v in body["decision"]["verdicts"] if v["passed"])
    assert body["customer_message"] and all(isinstance(m, str) and m for m in body["customer_message"])
    # the refusal was recorded on the trail, the case is untouched
    assert client.get(f"/cases/{number}/history").json()[-1]["outcome"] == "refused"
    assert client.get(f"/cases/{number}").json()["state"] == "submitted"


def test_no_such_case_is_404(client: TestClient):
    for response in (client.get("/cases/RF-20261122-999999"),
                     client.post("/cases/RF-20261122-999999/events/review", json={}, headers=AGENT)):
        assert response.status_code == 404
        assert response.json()["type"] == "CaseNotFound" and response.json()["number"] == "RF-20261122-999999"


@pytest.mark.parametrize(("body", "names"), [
    ({"kind": "refund", "facts": {**REFUND, "amount": 59.0}}, "59.0"),              # money as a float
    ({"kind": "refnud", "facts": REFUND}, "refnud"),                               # no such kind
    ({"kind": "refund", "facts": REFUND, "order": {"id": "SO-1", "total": 1.5}}, "1.5"),
    ({"facts": REFUND}, "kind"),                                                   # malformed request
], ids=["float-money", "kind", "float-total", "no-kind"])
def test_bad_input_is_400_naming_the_value(client: TestClient, host: sa.Engine, body: dict[str, Any], names: str):
    response = client.post("/cases", json=body, headers=CUSTOMER)
    assert response.status_code == 400
    assert response.json()["type"] == "InvalidInput" and names in response.json()["message"]
    assert client.get("/cases").json() == [] and _orders(host) == []


def test_an_order_and_its_case_commit_together(client: TestClient, host: sa.Engine):
    case = _open(client, order="SO-88002")
    assert case["facts"]["order_id"] == "SO-88002"
    assert _orders(host) == [{"id": "SO-88002", "customer": "cust-1", "total": pytest.approx(59),
                              "case_number": case["number"]}]
    assert client.get("/orders/SO-88002").json()["total"] == "59.00"


def test_a_failing_request_leaves_neither_order_nor_case(client: TestClient, host: sa.Engine):
    _open(client, order="SO-1")
    # the case is written, then the order's insert fails (the order exists): both roll back
    response = client.post("/cases", json={"kind": "refund", "facts": REFUND, "order": {"id": "SO-1", "total": "9.00"}},
                           headers=CUSTOMER)
    assert response.status_code == 409
    assert len(client.get("/cases").json()) == 1 and len(_orders(host)) == 1
    # the case is refused at intake (a float): no order either
    response = client.post("/cases", json={"kind": "refund", "facts": {**REFUND, "paid": 59.0},
                                           "order": {"id": "SO-2", "total": "59.00"}}, headers=CUSTOMER)
    assert response.status_code == 400
    assert len(client.get("/cases").json()) == 1 and [o["id"] for o in _orders(host)] == ["SO-1"]
    assert client.get("/orders/SO-2").status_code == 404


def test_the_outbox_consumer_sees_each_applied_transition_once(client: TestClient):
    first = _open(client, order="SO-1")["number"]
    second = _open(client, order="SO-2")["number"]
    assert client.post(f"/cases/{first}/events/approve", json={}, headers=AGENT).status_code == 200
    assert client.post(f"/cases/{second}/events/pay", json={}, headers=AGENT).status_code == 409  # refused
    assert client.post(f"/cases/{first}/events/pay", json={}, headers=AGENT).status_code == 200

    seen: list[dict[str, Any]] = []
    for _ in range(10):  # pages of two, to the end
        batch = client.post("/outbox/consume", params={"limit": 2}).json()
        if not batch:
            break
        assert len(batch) <= 2
        seen += batch
    applied = [(n, e["event"]) for n in (first, second) for e in client.get(f"/cases/{n}/history").json()
               if e["outcome"] == "applied"]
    assert sorted((c["number"], c["event"]) for c in seen) == sorted(applied)
    assert [(c["number"], c["event"]) for c in seen] == [(first, "open"), (second, "open"), (first, "approve"),
                                                         (first, "pay")]  # commit order; the refusal is not one
    ids = [c["id"] for c in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [r["change_id"] for r in client.get("/outbox/consumed").json()] == ids  # recorded once each

    assert client.post("/outbox/consume").json() == []  # nothing twice
    client.post(f"/cases/{first}/events/close", json={}, headers=AGENT)
    assert [(c["number"], c["event"]) for c in client.post("/outbox/consume").json()] == [(first, "close")]
    last = client.get("/outbox/consumed").json()[-1]
    assert last["change_id"] > ids[-1] and (last["case_number"], last["event"], last["state"]) == (first, "close",
                                                                                                   "closed")

"""The SLA report's numbers equal a direct computation over the audit trail of every case.

A seeded simulation with a FixedClock opens a few hundred cases of every kind through every channel,
handled by several agents: responses (some late), resolutions, refusals, sweeps that breach and fire
timers, and customer ratings. The expectations below are computed independently, case by case, from
``engine.history(number)``; they share no code with ``casework.report``.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import random
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cli_helpers import assert_one_stderr_line, invoke

from casework import KINDS, Actor, AuditEntry, Case, Engine, FixedClock, PolicySet, TransitionDenied
from casework.report import GroupFigures, SlaReport
from casework.report_html import render_html

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=TZ)
AGENTS = (Actor("alice", "agent"), Actor("bob", "agent"), Actor("carol", "agent"), Actor("dave", "supervisor"))
SUPERVISOR = AGENTS[3]
CHANNELS = ("app", "web", "chat", "hotline", "email", "social")
# What policies.yaml declares as a first response, per kind (written out here on purpose).
RESPONSES = {"refund": {"review", "request_evidence", "approve", "reject"},
             "return": {"review", "request_evidence", "approve", "reject"},
             "dispute": {"investigate", "request_evidence", "dismiss"},
             "complaint": {"acknowledge"}}
PERIODS = {"all": (None, None), "week": (T0 + timedelta(days=3), T0 + timedelta(days=10)),
           "since": (T0 + timedelta(days=6), None), "until": (None, T0 + timedelta(days=8, hours=5))}
Step = tuple[float, str, Actor, dict[str, Any]]


# ---- the data set ------------------------------------------------------------------------------------
def plan(rng: random.Random, kind: str, cust: Actor, agent: Actor,
         opened: datetime) -> tuple[dict[str, Any], list[Step]]:
    """Facts to open a case with, and its later steps as (hours after opening, event, actor, data)."""
    steps: list[Step] = []
    t = 0.0

    def step(dt: float, event: str, actor: Actor, **data: Any) -> None:
        nonlocal t
        t += dt
        steps.append((t, event, actor, data))

    resp = rng.uniform(0.2, 20) if rng.random() < 0.85 else rng.uniform(25, 60)  # some first responses late
    slow = rng.uniform(1, 30) if rng.random() < 0.8 else rng.uniform(60, 120)   # some resolutions late
    v = rng.random()
    amount = rng.choice(["59.00", "120.00", "899.00", "2500.00"])
    facts: dict[str, Any] = {"order_id": f"SO-{rng.randrange(10**6)}", "amount": amount, "paid": amount}
    reason, late = rng.choice(["no_reason", "defective"]), rng.random() < 0.15
    if kind == "return":
        delivered = (opened - timedelta(days=16 if late else 2)).date().isoformat()
        facts.update(delivered=delivered, reason=reason, condition="unused",
                     evidence=["order_record", *(["photo=IMG.jpg"] if reason == "defective" else [])])
    elif kind == "dispute":
        facts.update(amount="30.00", paid="300.00")
        if rng.random() < 0.7:
            facts["evidence"] = ["payment_voucher"]
    if v < 0.05:
        return facts, steps  # nobody ever answers
    if v < 0.10:
        step(rng.uniform(0.5, 10), "cancel", cust)  # the customer gives up before any response
    elif kind == "refund":
        if v < 0.30:
            step(resp, "request_evidence", agent)
            if rng.random() < 0.5:
                step(rng.uniform(2, 30), "provide_evidence", cust, evidence=["photo"])
                step(slow, "approve", agent)
                step(1, "pay", agent)
            step(6 * 24, "close", agent)  # (if no evidence came, the 5-day timer cancelled it)
        else:
            step(resp, "review", agent)
            if v < 0.45:
                step(slow, "reject", agent, rejection="condition")
            else:
                step(slow, "approve", agent)
                if amount == "2500.00" and agent.role == "agent":
                    step(rng.uniform(1, 10), "approve", SUPERVISOR)  # over the agent's limit
                step(rng.uniform(1, 24), "pay", agent)
            step(rng.uniform(1, 48), "close", agent)
    elif kind == "return":
        step(resp, "review", agent)
        step(rng.uniform(1, 10), "approve", agent)  # refused (window_expired) when late
        if late:
            step(1, "reject", agent, rejection="deadline_passed")
        elif rng.random() < 0.8:
            step(rng.uniform(5, 100), "ship", cust)
            step(slow, "receive", agent)
            step(rng.uniform(1, 24), rng.choice(["refund", "exchange"]), agent)
        step(8 * 24, "close", agent)  # (unshipped returns were cancelled by the 7-day timer)
    elif kind == "dispute":
        if "evidence" not in facts:
            step(resp / 2, "investigate", agent)  # refused: evidence_missing
            step(resp / 2, "request_evidence", agent)
            step(rng.uniform(1, 30), "provide_evidence", cust, evidence=["payment_voucher=PV-1"])
        if v < 0.2:
            step(resp, "dismiss", agent)
        else:
            step(resp, "investigate", agent)
            step(slow, "adjust", agent, adjustment=rng.choice(["30.00", "20.00"]))
        step(rng.uniform(1, 30), "close", agent)
    else:  # complaint
        if rng.random() < 0.2:
            step(0.3, "escalate", cust)  # refused: response_pending
        step(resp, "acknowledge", agent)
        step(rng.uniform(1, 10), "investigate", agent)
        if rng.random() < 0.15:
            step(1, "resolve", agent)  # refused: field_missing (no resolution note)
        step(slow, "resolve", agent, note="refunded shipping")
        if rng.random() < 0.1:
            step(10, "reopen", cust)
            step(20, "resolve", agent, note="replaced")
        if rng.random() < 0.5:
            step(rng.uniform(1, 48), "close", agent)
        else:
            step(8 * 24, "close", cust)  # usually the 7-day timer closed it first: not_available
    r = rng.random()
    if r < 0.7:
        if r < 0.05:
            step(1, "rate", cust, score=6)  # refused: out of range
        step(rng.uniform(1, 72), "rate", cust, score=rng.choice([1, 2, 3, 4, 4, 5, 5, 5]), comment="thanks")
        if r < 0.1:
            step(24, "rate", cust, score=rng.choice([1, 5]), comment="changed my mind")
    return facts, steps


def simulate(engine: Engine, clock: FixedClock, n: int = 240, seed: int = 20261102) -> None:
    rng = random.Random(seed)
    queue: list[tuple[datetime, int, int, Any]] = []
    for i in range(n):
        heapq.heappush(queue, (T0 + timedelta(minutes=rng.randrange(16 * 24 * 60)), i, i, "open"))
    for k in range(40 * 8):  # a sweep every three hours
        heapq.heappush(queue, (T0 + timedelta(hours=3 * k), -1, -1, "sweep"))
    numbers: dict[int, str] = {}
    while queue:
        at, _, i, what = heapq.heappop(queue)
        clock.set(at)
        if what == "sweep":
            engine.sweep()
            continue
        if what == "open":
            kind = ("refund", "return", "dispute", "complaint")[i % 4]
            cust, agent = Actor(f"cust-{i % 90:03d}", "customer"), rng.choice(AGENTS)
            facts, steps = plan(rng, kind, cust, agent, at)
            numbers[i] = engine.open(kind, facts, actor=cust, channel=CHANNELS[rng.randrange(6)]).number
            for hours, event, actor, data in steps:
                heapq.heappush(queue, (at + timedelta(hours=hours), i, i, (event, actor, data)))
            continue
        event, actor, data = what
        with contextlib.suppress(TransitionDenied):  # a refusal is on record as a refused attempt
            engine.fire(numbers[i], event, actor=actor, data=data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, default_policy: PolicySet) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path_factory.mktemp("report") / "sla.db"
    clock = FixedClock(T0)
    engine = Engine(f"sqlite:///{path}", policies=default_policy, clock=clock, synchronous="OFF")
    simulate(engine, clock)
    clock.set(T0 + timedelta(days=45))
    yield engine, path
    engine.close()


@pytest.fixture(scope="module")
def trails(dataset: tuple[Engine, Path]) -> list[tuple[Case, list[AuditEntry]]]:
    engine, _ = dataset
    return [(c, engine.history(c.number)) for c in engine.find(limit=None)]


# ---- the independent computation --------------------------------------------------------------------
def expected_line(case: Case, trail: list[AuditEntry], until: datetime | None) -> dict[str, Any]:
    """What one case contributes, read straight off its trail (entries before ``until`` only)."""
    opened = trail[0].at
    out: dict[str, Any] = {"kind": case.kind, "channel": trail[0].data.get("channel"), "agent": None,
                           "frt": None, "res": None, "closed": False, "breaches": set(), "refused": 0,
                           "codes": Counter(), "score": None}
    for e in trail[1:]:
        if until is not None and e.at >= until:
            break
        if e.outcome == "refused":
            out["refused"] += 1
            out["codes"].update({r["code"] for r in e.reasons})
        elif e.event == "sla_breach":
            out["breaches"] |= set(e.data.get("breaches", []))
        elif e.event != "adopt_policy":
            settled = e.to_state in KINDS[case.kind].settled
            if out["frt"] is None and (e.event in RESPONSES[case.kind] or settled):
                out["agent"] = "(customer)" if e.role == "customer" else e.actor
                out["frt"] = (e.at - opened).total_seconds()
            if out["res"] is None and settled:
                out["res"] = (e.at - opened).total_seconds()
            out["closed"] = out["closed"] or e.to_state == "closed"
            if e.event == "rate":
                out["score"] = e.data["score"]
    return out


def nearest_rank_p90(values: list[float]) -> float:
    return sorted(values)[math.ceil(len(values) * 9 / 10) - 1]


def expected_figures(lines: list[dict[str, Any]]) -> dict[str, Any]:
    def times(key: str) -> tuple[Any, ...]:
        v = [x[key] for x in lines if x[key] is not None]
        return (len(v), statistics.median(v), nearest_rank_p90(v), max(v)) if v else (0, None, None, None)

    n = len(lines)
    scores = [x["score"] for x in lines if x["score"] is not None]
    codes: Counter[str] = Counter()
    for x in lines:
        codes += x["codes"]
    return {
        "opened": n, "closed": sum(x["closed"] for x in lines), "responded": sum(x["frt"] is not None for x in lines),
        "resolved": sum(x["res"] is not None for x in lines), "frt": times("frt"), "res": times("res"),
        "breached": sum(bool(x["breaches"]) for x in lines),
        "breach_rate": sum(bool(x["breaches"]) for x in lines) / n if n else None,
        "by_type": {t: sum(t in x["breaches"] for x in lines) for t in ("first_response", "resolution")},
        "refusals": sum(x["refused"] for x in lines), "codes": dict(codes),
        "sat": (len(scores), sum(scores) / len(scores) if scores else None,
                {s: scores.count(s) for s in range(1, 6)}),
    }


def actual_figures(g: GroupFigures) -> dict[str, Any]:
    def times(d: Any) -> tuple[Any, ...]:
        return (d.count, d.median, d.p90, d.max)

    return {"opened": g.opened, "closed": g.closed, "responded": g.responded, "resolved": g.resolved,
            "frt": times(g.first_response), "res": times(g.resolution), "breached": g.breached,
            "breach_rate": g.breach_rate, "by_type": dict(g.breaches_by_type), "refusals": g.refusals,
            "codes": dict(g.refusals_by_code),
            "sat": (g.satisfaction.count, g.satisfaction.mean, dict(g.satisfaction.distribution))}


def expected_report(trails: list[tuple[Case, list[AuditEntry]]], since: datetime | None, until: datetime | None,
                    kind: str | None, by: str | None) -> dict[str | None, dict[str, Any]]:
    lines = [expected_line(c, t, until) for c, t in trails
             if (since is None or t[0].at >= since) and (until is None or t[0].at < until)
             and (kind is None or c.kind == kind)]
    out: dict[str | None, dict[str, Any]] = {None: expected_figures(lines)}
    if by is not None:
        keys = {x[by] or {"channel": "(none)", "agent": "(no response)"}.get(by) for x in lines}
        for key in keys:
            out[key] = expected_figures([x for x in lines if (x[by] or {"channel": "(none)",
                                                                          "agent": "(no response)"}.get(by)) == key])
    return out


def actual_report(report: SlaReport) -> dict[str | None, dict[str, Any]]:
    return {None: actual_figures(report.overall), **{g.key: actual_figures(g) for g in report.groups}}


# ---- the report against the trail ---------------------------------------------------------------------
def test_the_data_set_exercises_every_figure(dataset: tuple[Engine, Path], trails: list[Any]) -> None:
    engine, _ = dataset
    o = engine.report().overall
    assert o.opened >= 200 and o.closed > 100 and o.responded > o.closed / 2
    assert all(o.breaches_by_type[t] > 5 for t in ("first_response", "resolution"))
    assert {"window_expired", "approval_limit_exceeded", "evidence_missing", "response_pending", "field_missing",
            "value_out_of_range", "not_available"} <= set(o.refusals_by_code)
    assert o.satisfaction.count > 50 and all(o.satisfaction.distribution.values())
    assert any(sum(e.event == "rate" and e.outcome == "applied" for e in t) > 1 for _, t in trails)
    assert any(e.actor == "system" and e.event == "cancel" for _, t in trails for e in t)  # timers fired
    agents = {g.key for g in engine.report(by="agent").groups}
    assert {"alice", "bob", "carol", "dave", "(no response)"} <= agents
    assert "(customer)" in agents and not any(a.startswith("cust-") for a in agents)  # customers pooled
    assert {g.key for g in engine.report(by="channel").groups} == set(CHANNELS)
    cut = PERIODS["week"][1]
    assert any(t[0].at < cut <= t[-1].at for _, t in trails)  # the cut-off really cuts trails


@pytest.mark.parametrize("period", list(PERIODS))
@pytest.mark.parametrize("by", [None, "channel", "kind", "agent"])
def test_report_equals_a_direct_computation_over_the_trail(dataset: tuple[Engine, Path], trails: list[Any],
                                                           period: str, by: str | None) -> None:
    engine, _ = dataset
    since, until = PERIODS[period]
    report = engine.report(since=since, until=until, by=by)
    assert actual_report(report) == expected_report(trails, since, until, None, by)
    assert [g.key for g in report.groups] == sorted(g.key or "" for g in report.groups)
    assert sum(g.opened for g in report.groups) == (report.overall.opened if by else 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_kind_filter(dataset: tuple[Engine, Path], trails: list[Any], kind: str) -> None:
    engine, _ = dataset
    since, until = PERIODS["week"]
    report = engine.report(since=since.isoformat(), until=until, kind=kind, by="agent")
    assert report.overall.opened > 0
    assert actual_report(report) == expected_report(trails, since, until, kind, "agent")


def test_report_on_every_backend(engine: Engine, clock: FixedClock) -> None:
    simulate(engine, clock, n=24, seed=7)
    trails = [(c, engine.history(c.number)) for c in engine.find(limit=None)]
    for since, until in PERIODS.values():
        report = engine.report(since=since, until=until, by="agent")
        assert actual_report(report) == expected_report(trails, since, until, None, "agent")
    assert engine.report().overall.opened == 24


def test_first_response_mirrors_the_engine(dataset: tuple[Engine, Path], trails: list[Any]) -> None:
    for case, trail in trails:
        line = expected_line(case, trail, None)
        stamped = None if case.responded_at is None else (case.responded_at - case.opened_at).total_seconds()
        assert line["frt"] == stamped, case.number
        assert sorted(line["breaches"]) == sorted(case.breaches), case.number


def test_refused_timer_is_not_a_breach(tmp_path: Path, clock: FixedClock, default_policy: PolicySet) -> None:
    text = default_policy.source.replace("close: {roles: [agent, system, customer]}", "close: {roles: [agent]}")
    assert text != default_policy.source
    policy = tmp_path / "p.yaml"
    policy.write_text(text, encoding="utf-8")
    with Engine(f"sqlite:///{tmp_path}/t.db", policies=policy, clock=clock) as engine:
        case = engine.open("complaint", {"order_id": "A1"}, actor=Actor("c-1", "customer"), channel="web")
        clock.advance(hours=1)
        engine.fire(case.number, "acknowledge", actor=AGENTS[0])
        engine.fire(case.number, "resolve", actor=AGENTS[0], data={"note": "done"})
        engine.sweep(now=clock.advance(days=8))  # the timer's close is refused for the system actor
        assert any(e.event == "sla_breach" for e in engine.history(case.number))
        o = engine.report().overall
    assert (o.breached, o.refusals, o.refusals_by_code) == (0, 1, {"role_not_permitted": 1})
    assert (o.first_response.max, o.resolution.max) == (3600.0, 3600.0)


# ---- the CLI ---------------------------------------------------------------------------------------------
def test_cli_json(dataset: tuple[Engine, Path]) -> None:
    engine, path = dataset
    run = invoke(["--db", str(path), "sla", "report", "--since", "2026-11-05", "--until", "2026-11-12",
                  "--by", "kind", "--json"])
    assert run.code == 0, run
    doc = run.json
    lib = engine.report(since="2026-11-05T00:00:00+08:00", until="2026-11-12T00:00:00+08:00", by="kind").to_json()
    assert {k: v for k, v in doc.items() if k != "generated_at"} == {k: v for k, v in lib.items()
                                                                     if k != "generated_at"}
    assert doc["since"] == "2026-11-05T00:00:00+08:00" and doc["by"] == "kind"
    assert [g["key"] for g in doc["groups"]] == sorted(KINDS)
    fr = doc["overall"]["first_response"]
    assert fr["count"] > 0 and set(fr["median"]) == {"seconds", "iso", "human"}
    assert isinstance(fr["p90"]["seconds"], float) and re.fullmatch(r"P(\d+D)?(T(\d+H)?(\d+M)?([\d.]+S)?)?",
                                                                    fr["p90"]["iso"])
    assert set(doc["overall"]["satisfaction"]["distribution"]) == {"1", "2", "3", "4", "5"}
    assert set(doc["overall"]["breaches"]["by_type"]) >= {"first_response", "resolution"}


def test_cli_human_and_html(dataset: tuple[Engine, Path], tmp_path: Path) -> None:
    engine, path = dataset
    out = tmp_path / "sla.html"
    run = invoke(["--db", str(path), "sla", "report", "--by", "agent", "--html", str(out)])
    assert run.code == 0, run
    assert "SLA report" in run.stdout and "Breach rate" in run.stdout and "█" in run.stdout
    report = engine.report(by="agent")
    assert f"{report.overall.opened}" in run.stdout and "alice" in run.stdout
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") >= 4 and "<script" not in page
    assert not re.search(r"(src|href)=|<link|@import|url\(", page)  # nothing fetched from anywhere
    assert f">{report.overall.opened}<" in page
    assert f"{report.overall.breach_rate * 100:.1f}%" in page  # type: ignore[operator]
    assert all(f">{g.key}<" in page for g in report.groups if g.key != "(no response)")
    assert f"{report.overall.satisfaction.mean:.2f}" in page


def test_html_escapes_what_it_shows(tmp_path: Path, clock: FixedClock, default_policy: PolicySet) -> None:
    with Engine(f"sqlite:///{tmp_path}/t.db", policies=default_policy, clock=clock) as engine:
        case = engine.open("complaint", {"order_id": "A1"}, actor=Actor("c-1", "customer"))
        engine.fire(case.number, "acknowledge", actor=Actor("<b>eve</b>", "agent"))
        page = render_html(engine.report(by="agent"))
    assert "&lt;b&gt;eve&lt;/b&gt;" in page and "<b>eve" not in page


@pytest.mark.parametrize("args", [["--by", "agents"], ["--kind", "refunds"], ["--since", "last week"],
                                  ["--since", "2026-11-10", "--until", "2026-11-01"],
                                  ["--html", "/nonexistent-dir/sla.html"]])
@pytest.mark.parametrize("as_json", [False, True])
def test_cli_bad_input_is_one_line_and_exit_2(dataset: tuple[Engine, Path], args: list[str], as_json: bool) -> None:
    _, path = dataset
    run = invoke(["--db", str(path), "sla", "report", *args, *(["--json"] if as_json else [])])
    assert run.code == 2, run
    line = assert_one_stderr_line(run)
    assert "Traceback" not in run.stderr and line.startswith("casework: error: ")
    if as_json:
        assert json.loads(run.stdout)["error"]["exit_code"] == 2
    if args[0] == "--by":
        assert "channel, kind, agent" in line and "did you mean 'agent'" in line

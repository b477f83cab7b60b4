"""Policy authoring: check, schema, test, explain, simulate, adopt, publish, versions, show, diff, diagram."""

import sys
from pathlib import Path
from typing import Annotated

import typer

import casework
from casework import Engine, InvalidInput, parse_instant, terminal
from casework.commands.common import (
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    ActorOpt,
    EvidenceOpt,
    FactOpt,
    JsonOpt,
    LangOpt,
    OpenKindOpt,
    OpenStateOpt,
    RoleOpt,
    Settings,
    actor_of,
    data_of,
    engine_of,
    notice,
    policy_file,
)
from casework.terminal import authoring, versions

app = typer.Typer()


@app.command("check")
def policy_check(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="Policy file (default: the one in force).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate a policy file: schema, references, contradictions; FILE:LINE:COL for each problem.

    Exit 0 if usable (with --strict: and no warnings), 2 otherwise. Example: casework policy check new.yaml --strict
    """
    from casework.policies.authoring import check_policy

    path = policy_file(ctx, file)
    report = check_policy(path, str(file) if file else path.name)
    terminal.render(as_json, lambda: report.to_json(strict), lambda: authoring.policy_check(report, strict))
    if not report.ok(strict):
        sys.stderr.write(f"casework: error: {report.summary(strict)}\n")
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("schema")
def policy_schema(as_json: JsonOpt = False) -> None:
    """Print the JSON Schema of the policy format (for editor completion and inline errors).

    Example: casework policy schema > policies.schema.json
    """
    from casework.policies.authoring import schema_text

    print(schema_text(), end="")


@app.command("test")
def policy_test(
    ctx: typer.Context,
    files: Annotated[list[str] | None, typer.Argument(help="Test suites (default: ./policies.test.yaml).")] = None,
    with_coverage: Annotated[bool, typer.Option(
        "--coverage", help="Also list the rules (and the pass/fail side of each) that no scenario exercises.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run policy test scenarios against the policy in force (--policies); exit 1 if any fails.

    Example: casework --policies new.yaml policy test policies.test.yaml --coverage
    """
    from casework.policies import load_policy
    from casework.policies.authoring import run_policy_test_files
    from casework.policies.coverage import coverage

    policy = load_policy(policy_file(ctx, None))
    run = run_policy_test_files(policy, files or ["policies.test.yaml"])
    covered = coverage(policy, run.results) if with_coverage else None
    terminal.render(as_json, lambda: {**run.to_json(), **({"coverage": covered.to_json()} if covered else {})},
                    lambda: iter([*authoring.policy_tests(policy, run.results),
                                  *(authoring.rule_coverage(covered) if covered else ())]))
    if run.failed:
        sys.stderr.write(f"casework: policy test: {len(run.failed)} of {len(run.results)} scenario(s) failed\n")
        raise typer.Exit(EXIT_REFUSED)


@app.command("explain")
def policy_explain(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="refund, return, dispute or complaint")],
    event: Annotated[str, typer.Option("--event", help="The event to judge, e.g. approve")],
    state: Annotated[str | None, typer.Option(
        "--state", help="The case's state (default: the kind's first).")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    fact: FactOpt = None,
    facts_json: Annotated[str | None, typer.Option(
        "--facts-json", help="A JSON object of facts, from FILE or - (standard input); --fact adds to it.")] = None,
    evidence: EvidenceOpt = None,
    now: Annotated[str | None, typer.Option(
        "--now", help="Decide as of this instant (ISO), e.g. 2026-11-22T10:00:00+08:00; default: now.")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every rule's verdict on EVENT for a case holding the given facts, each with its FILE:LINE; no case is
    stored or read (like opa eval --explain).

    Exit 0 if the event would be allowed, 1 if refused. Example: casework policy explain --kind return
    --event approve --state under_review --fact delivered=2026-11-10 --fact reason=no_reason
    --now 2026-11-22T10:00:00+08:00
    """
    from casework.messages import lang_for, language, messages_for
    from casework.policies import explain, load_policy
    from casework.policies.explanation import facts_from_json

    given = facts_from_json(facts_json) if facts_json is not None else {}
    given.update(data_of(evidence, fact))
    at = parse_instant(now, "--now") if now else casework.system_clock()
    engine = published_engine(ctx)
    policy = engine.policy if engine is not None else load_policy(policy_file(ctx, None))
    decision = explain(policy, kind, event, given, actor_of(actor, role), at, state=state)
    cited = engine.cite(decision) if engine is not None else []  # the published version's own text
    said = messages_for(policy, decision, "customer", language(policy, lang_for(given, lang)))
    version = {**policy.ref.to_json(), "published": engine is not None}
    terminal.render(as_json, lambda: {**terminal.decision_json(None, decision, said, cited), "now": at.isoformat(),
                                      "version": version},
                    lambda: authoring.explanation(decision, said, cited, "the published version" if engine else
                                                  policy.name))
    if not decision.allowed:
        raise typer.Exit(EXIT_REFUSED)


def published_engine(ctx: typer.Context) -> Engine | None:
    """Without --policies, the engine when its database has a published version (policy explain judges by it);
    None otherwise (no database here, or nothing published), and nothing is created."""
    from casework.database import DEFAULT_DB

    settings: Settings = ctx.obj
    if settings.override or (settings.db is None and not Path(DEFAULT_DB.removeprefix("sqlite:///")).is_file()):
        return None
    engine = engine_of(ctx)
    if engine.policies.published() is None:
        return None
    engine.policy  # noqa: B018 (loads the version in force, which says whether the local file differs)
    notice(engine)
    return engine


@app.command("simulate")
def policy_simulate(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The new policy file.")],
    kind: OpenKindOpt = None,
    state: OpenStateOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed (--json lists all).")] = 50,
    now: Annotated[str | None, typer.Option(
        "--now", help="Decide as of this instant (ISO), e.g. the first day of a promotion; default: now.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What-if: which open cases would FILE decide differently than their pinned policy? Writes nothing.

    Every event possible next is decided under both, as the least-privileged role allowed to fire it;
    flips are grouped by the rule that changed. Example: casework policy simulate new.yaml --kind return
    --now 2026-11-11T00:00:00+08:00
    """
    from casework.policies import load_policy

    at = parse_instant(now, "--now") if now else None
    with terminal.progress("simulating", shown=not as_json) as advance:
        report = engine_of(ctx).simulate(load_policy(file), kind=kind, state=state, now=at, progress=advance)
    terminal.render(as_json, report.to_json, lambda: authoring.simulation(report, limit))


@app.command("adopt")
def policy_adopt(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The policy file, or a stored VERSION (hash prefix or label), to "
                                               "move cases to.")],
    numbers: Annotated[list[str] | None, typer.Argument(help="Only these cases (no simulation, no prompt).")] = None,
    kind: OpenKindOpt = None,
    state: OpenStateOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Flipped decisions listed before asking.")] = 20,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move open cases to the policy in TARGET (a file, else a stored version): one audited adopt_policy entry
    per case (who, when, from which version to which). Given NUMBERs, those cases are moved (exit 1 if the
    version cannot take one: it is closed, or the version has no rules for its kind or state); else every open
    case of --kind/--state, after showing what simulate reports and asking for confirmation.

    Example: casework policy adopt new.yaml --kind return --state submitted --actor lin --role supervisor
    """
    engine, who = engine_of(ctx), actor_of(actor, role)
    new = policy_or_version(engine, target)
    if numbers:
        if kind or state:
            raise InvalidInput("give NUMBERs or --kind/--state, not both: the numbers name the cases to move",
                               field="kind" if kind else "state")
        done = engine.adopt_cases(new, numbers, actor=who)
        terminal.render(as_json, done.to_json, lambda: authoring.adoption(done, new))
        if done.skipped:
            raise typer.Exit(EXIT_REFUSED)
        return
    if as_json and not yes:
        raise InvalidInput("--json needs --yes: the confirmation prompt cannot share stdout with the JSON "
                           "(see the report first with 'casework policy simulate FILE --json')", field="yes")
    with terminal.progress("simulating", shown=not as_json) as advance:
        plan = engine.plan_adoption(new, actor=who, kind=kind, state=state, progress=advance)
    report, chosen = plan.simulation, plan.numbers
    if not as_json:
        terminal.show(*authoring.simulation(report, limit))
    if not chosen:
        terminal.render(as_json, lambda: {"simulation": report.to_json(), "adopted": 0, "numbers": [],
                                          "already_on_policy": report.cases_checked, "skipped": []},
                        lambda: f"nothing to adopt: every chosen open case is already on {new.label} ({new.ref.short})")
        return
    if not yes:
        typer.confirm(f"Move {len(chosen)} open case(s) to policy {new.label} ({new.ref.short}) as {who.id} "
                      f"({who.role})?", abort=True, err=True)
    with terminal.progress("adopting", shown=not as_json, total=lambda: len(chosen)) as advance:
        done = engine.adopt_open_cases(new, actor=who, numbers=chosen, progress=advance)
    terminal.render(as_json, lambda: {"simulation": report.to_json(), **done.to_json()},
                    lambda: authoring.adoption(done, new))


def policy_or_version(engine: Engine, target: str) -> casework.PolicySet:
    """The policy in the file ``target``, else the stored version it names (hash prefix or label)."""
    from casework.policies import load_policy

    return load_policy(target) if Path(target).is_file() else engine.stored_policy(target)


@app.command("publish")
def policy_publish(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The policy file to publish (or a stored VERSION, to publish it again).")],
    tests: Annotated[list[str] | None, typer.Option(
        "--tests", help="Scenario tests to run first (repeatable); any failure refuses the publication.")] = None,
    actor: ActorOpt = None,
    role: RoleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a policy version in force for new cases in every process on this database, whatever their directory.

    Checked as 'policy check' does (exit 2 with its errors), its tests run (exit 1 if any fails); who and when
    go on the publication chain that verify checks. Example: casework policy publish new.yaml --tests
    policies.test.yaml --actor lin --role supervisor
    """
    engine = engine_of(ctx)
    policy = file if Path(file).is_file() else engine.stored_policy(file)
    done = engine.publish(policy, actor=actor_of(actor, role), tests=tests or ())
    terminal.render(as_json, done.to_json, lambda: versions.published(done))


@app.command("versions")
def policy_versions(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every policy version stored in the database: hash, label, file, loaded and published when (by whom), the
    one in force for new cases (*), and how many cases (open ones) are pinned to each."""
    found = engine_of(ctx).policy_versions()
    terminal.render(as_json, lambda: [v.to_json() for v in found], lambda: versions.versions_table(found))


@app.command("show")
def policy_show(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A hash prefix or a label (see 'casework policy versions').")],
    as_json: JsonOpt = False,
) -> None:
    """Print a stored version's text exactly as it was loaded. Example: casework policy show 3f2a9c > old.yaml"""
    row, text = engine_of(ctx).version_text(version)
    if as_json:
        terminal.dump({"seq": row.seq, "hash": row.hash, "label": row.label, "name": row.name,
                       "loaded_at": row.loaded_at.isoformat(), "source": text})
    else:
        write_text(text)


def write_text(text: str) -> None:
    """A stored text as it is when piped (``> old.yaml`` gives the file back); on a terminal, with what would
    act on it (controls, bidirectional marks) shown as escapes."""
    sys.stdout.write(terminal.visible(text) if sys.stdout.isatty() else text)


@app.command("diff")
def policy_diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="The older version (hash prefix or label).")],
    b: Annotated[str, typer.Argument(help="The newer version (hash prefix or label).")],
    as_json: JsonOpt = False,
) -> None:
    """Unified diff of two stored versions' texts. Example: casework policy diff 3f2a9c 8b1d04"""
    old, new, text = engine_of(ctx).version_diff(a, b)
    if as_json:
        terminal.dump({"from": {"seq": old.seq, "hash": old.hash, "label": old.label},
                       "to": {"seq": new.seq, "hash": new.hash, "label": new.label}, "diff": text})
    else:
        write_text(text)


@app.command("diagram")  # DESIGN's contract: `casework policy ... diagram`; also top-level
def diagram(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Argument(help="refund, return, dispute or complaint")] = None,
    fmt: Annotated[str, typer.Option("--format", help="mermaid, dot, svg or png (svg/png need Graphviz).")] = "mermaid",
    all_kinds: Annotated[bool, typer.Option("--all", help="Write one file per kind into --output.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="File (or folder with --all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a case kind's state machine, edges labelled with events, guards and roles of the policy.

    Example: casework diagram return --format mermaid
    """
    from casework.machines.diagram import render, write, write_all
    from casework.policies import load_policy

    policy = load_policy(policy_file(ctx, None))
    if all_kinds:
        written = [str(path) for path in write_all(output or ".", fmt, policy)]
    elif kind is None:
        raise InvalidInput("diagram needs a KIND (refund, return, dispute, complaint) or --all", field="kind")
    elif output:
        write(kind, output, fmt, policy)
        written = [output]
    else:
        drawing = render(kind, fmt, policy)
        if isinstance(drawing, bytes):
            raise InvalidInput(f"--format {fmt} is binary; write it to a file with --output", field="format")
        if as_json:
            terminal.dump({"kind": kind, "format": fmt, "diagram": drawing})
        else:
            print(drawing, end="" if drawing.endswith("\n") else "\n")
        return
    if as_json:  # files written: --json lists them, and so does a terminal for --all
        terminal.dump({"written": written})
    elif all_kinds:
        print(*written, sep="\n")

"""Draw a case kind's state machine, from its real definition, as Mermaid or Graphviz.

Edges carry the event name and, when a policy is given, the guards the policy attaches to that
event and the roles that may fire it. Mermaid needs nothing installed (GitHub renders it);
SVG and PNG are made by Graphviz's ``dot`` when it is on the PATH.

>>> print(mermaid("refund").splitlines()[0])
stateDiagram-v2
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from casework.errors import InvalidInput
from casework.machines import KINDS, spec
from casework.values import one_of

if TYPE_CHECKING:  # the domain core draws machines without loading any policy machinery
    from casework.policies import PolicySet

FORMATS = ("mermaid", "dot", "svg", "png")
EXTENSIONS = {"mermaid": "mmd", "dot": "dot", "svg": "svg", "png": "png"}
NO_GRAPHVIZ = "Graphviz 'dot' is not installed; use --format mermaid or dot, or install graphviz"


def edges(kind: str) -> Iterator[tuple[str, str, str]]:
    """``(source, event, destination)`` for every move of ``kind``, in definition order (loops included)."""
    seen: set[tuple[str, str, str]] = set()
    for move in spec(kind).moves:
        for source in move.sources:
            edge = (source, move.event, move.dest or source)
            if edge not in seen:
                seen.add(edge)
                yield edge


def label_parts(kind: str, event: str, policy: PolicySet | None = None) -> tuple[list[str], list[str] | None]:
    """The guard ids (or types) the policy attaches to ``event``, and the roles that may fire it.

    Without a policy: ``([], None)``. An event the policy has no entry for: ``([], [])`` (nobody).
    """
    if policy is None:
        return [], None
    ep = policy.event(kind, event)
    if ep is None:
        return [], []
    return [g.id or g.guard_name() for g in ep.guards], list(ep.roles)


def label(kind: str, event: str, policy: PolicySet | None = None, sep: str = " ") -> str:
    """``approve [no_reason_return_window, ...] by agent``; just the event name without a policy."""
    guards, roles = label_parts(kind, event, policy)
    parts = [event]
    if guards:
        parts.append("[" + f",{sep}".join(guards) + "]")
    if roles is not None:
        parts.append(f"by {', '.join(roles)}" if roles else "(nobody may fire it)")
    return sep.join(parts)


def mermaid(kind: str, policy: PolicySet | None = None) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``kind`` (paste into Markdown inside a ```mermaid block)."""
    ks = spec(kind)
    lines = ["stateDiagram-v2", f"    %% {ks.title} ({ks.kind}, numbers {ks.prefix}-...)",
             f"    [*] --> {ks.initial}"]
    for source, event, dest in edges(kind):
        text = label(kind, event, policy).replace(":", " ").replace(";", ",")
        lines.append(f"    {source} --> {dest} : {text}")
    lines += [f"    {state} --> [*]" for state in ks.states if state in ks.final]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(kind: str, policy: PolicySet | None = None) -> str:
    """A Graphviz DOT ``digraph`` of ``kind``."""
    ks = spec(kind)
    title = ks.title + (f" (policy {policy.label})" if policy is not None else "")
    lines = [f"digraph {_quote(kind)} {{",
             f"  graph [rankdir=LR, label={_quote(title)}, labelloc=t, fontname=Helvetica];",
             "  node [shape=box, style=rounded, fontname=Helvetica];",
             "  edge [fontname=Helvetica, fontsize=10];",
             '  "__start" [shape=point, label=""];']
    for state in ks.states:
        extra = ", peripheries=2" if state in ks.final else (", style=\"rounded,dashed\"" if state in ks.settled
                                                             else "")
        lines.append(f"  {_quote(state)} [label={_quote(state)}{extra}];")
    lines.append(f'  "__start" -> {_quote(ks.initial)};')
    for source, event, dest in edges(kind):
        text = label(kind, event, policy, sep="\n")
        lines.append(f"  {_quote(source)} -> {_quote(dest)} [label={_quote(text)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(kind: str, fmt: str = "mermaid", policy: PolicySet | None = None) -> str | bytes:
    """``mermaid`` and ``dot`` give text; ``svg`` and ``png`` bytes made by Graphviz ``dot``."""
    one_of(fmt, FORMATS, "diagram format", field="format")
    if fmt == "mermaid":
        return mermaid(kind, policy)
    source = dot(kind, policy)
    if fmt == "dot":
        return source
    binary = shutil.which("dot")
    if binary is None:
        raise InvalidInput(NO_GRAPHVIZ, field="format", value=fmt)
    try:
        done = subprocess.run([binary, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"Graphviz 'dot' failed to draw {kind}: {exc}", field="format", value=fmt) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit code {done.returncode}"]
        raise InvalidInput(f"Graphviz 'dot' failed to draw {kind}: {why[0]}", field="format", value=fmt)
    return done.stdout


def write(kind: str, path: str | Path, fmt: str = "mermaid", policy: PolicySet | None = None) -> Path:
    """Draw ``kind`` in ``fmt`` into the file at ``path`` (created or replaced; text as UTF-8); returns it."""
    content = render(kind, fmt, policy)
    out = Path(path)
    out.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return out


def write_all(directory: str | Path, fmt: str = "mermaid", policy: PolicySet | None = None) -> list[Path]:
    """One file per kind (``refund.mmd``, ``return.svg``, ...) in ``directory``; returns the paths."""
    one_of(fmt, FORMATS, "diagram format", field="format")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return [write(kind, out / f"{kind}.{EXTENSIONS[fmt]}", fmt, policy) for kind in KINDS]

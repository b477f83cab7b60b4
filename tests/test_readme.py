"""The README's Mermaid diagrams are exactly what `casework diagram KIND` draws today."""

from __future__ import annotations

import re

from cli_helpers import REPO, invoke

from casework.machines import KINDS
from casework.machines.diagram import mermaid
from casework.policies import load_policy

BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.M | re.S)


def test_readme_embeds_the_current_diagram_of_every_kind() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = BLOCK.findall(readme)
    policy = load_policy(REPO / "policies.yaml")
    expected = [mermaid(kind, policy) for kind in KINDS]
    assert blocks == expected, ("README.md's ```mermaid blocks differ from `casework diagram KIND`; paste the output "
                                "of `casework diagram refund|return|dispute|complaint` into its Diagrams section")


def test_the_readme_blocks_are_the_cli_output() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = BLOCK.findall(readme)
    for kind, block in zip(KINDS, blocks, strict=True):
        run = invoke(["--policies", str(REPO / "policies.yaml"), "diagram", kind])
        assert run.code == 0, run
        assert run.stdout == block, kind

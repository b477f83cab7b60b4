"""Policy files: where the packaged default is, reading one, and a text's content hash. Light (no YAML,
no schema), so that finding a policy's file and version costs nothing until it is parsed."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from casework.errors import PolicyError, PolicyProblem


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_policy_path() -> Path:
    """The default ``policies.yaml`` shipped inside the package (or at the checkout's root)."""
    packaged = resources.files("casework").joinpath("policies.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent.parent / "policies.yaml"


def read_policy_text(path: str | Path) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([PolicyProblem(str(path), 1, 1, "policy file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyProblem(str(path), 1, 1, f"cannot read policy file: {exc}")]) from None

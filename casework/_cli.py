"""Entry point of the ``casework`` command.

The CLI's code is ``cli.py`` at the checkout's root. An installed wheel carries it as
``casework/_cli_main.py`` (so no bare top-level ``cli`` module is installed); in a checkout or an
editable install the root ``cli.py`` is imported directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load() -> ModuleType:
    try:
        return importlib.import_module("casework._cli_main")
    except ModuleNotFoundError as exc:
        if exc.name != "casework._cli_main":
            raise
        return importlib.import_module("cli")


def main() -> None:
    load().main()

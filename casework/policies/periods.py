"""Effective periods: a rule, or a window override, in force only ``from`` one date ``until`` another.

"15 days for electronics during the promotion":

.. code-block:: yaml

    - guard: window
      id: no_reason_return_window
      when: {reason: [no_reason]}
      within: 7d
      by_category:
        electronics: {within: 15d, from: 2026-11-11, until: 2026-11-30}

Both dates are days in the policy's time zone, both included; either may be left out. A rule is judged
by the instant of the event by default, or by the instant the case was opened (``dated_by: opened``: a
promotion for the requests made during it, whenever they are decided).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from casework.policies.context import GuardContext
from casework.values import parse_duration


def _duration(value: Any) -> dt.timedelta:
    return value if isinstance(value, dt.timedelta) else parse_duration(value)


Span = Annotated[dt.timedelta, BeforeValidator(_duration)]


class Period(BaseModel):
    """``from``/``until`` (dates in the policy's zone, both included) and which instant they judge."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: dt.date | None = Field(None, alias="from", description="the first day the rule is in force")
    until: dt.date | None = Field(None, description="the last day the rule is in force")
    dated_by: Literal["event", "opened"] = Field(
        "event", description="the instant from/until judge: the event's (default), or the case's opening")

    def in_force(self, ctx: GuardContext) -> bool:
        """Whether the rule is in force for the decision ``ctx``."""
        if self.from_ is None and self.until is None:
            return True
        at = ctx.opened if self.dated_by == "opened" and ctx.opened is not None else ctx.now
        day = at.astimezone(ctx.tz).date()
        return (self.from_ is None or day >= self.from_) and (self.until is None or day <= self.until)

    def period_text(self) -> str:
        """``from 2026-11-11 until 2026-11-30`` (empty when always in force)."""
        parts = ([f"from {self.from_}"] if self.from_ else []) + ([f"until {self.until}"] if self.until else [])
        return " ".join(parts)


class DatedWindow(Period):
    """A window override in force for a period: ``{within: 15d, from: 2026-11-11, until: 2026-11-30}``."""

    within: Span = Field(description="the window while in force, e.g. 15d")

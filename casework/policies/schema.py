"""The shape of a policy document (``policies.yaml``), as pydantic models.

Validation is strict about shape (unknown keys are errors) and about money (decimal strings, never
floats). Cross-references (kinds, events, roles, vocabulary) are checked by the loader, which knows
where in the file each value came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

from casework.facts import CUSTOMER_OPENS, CUSTOMER_WRITABLE
from casework.policies.calendar import Deadline
from casework.policies.declarations import BUILTIN, CATCH_ALL, FactDecl
from casework.policies.guard_kinds import Guard, known_codes
from casework.values import parse_money


def _limit(value: Any) -> Decimal | None:
    if value == "unlimited":
        return None
    return parse_money(value, "amount")


def _clock_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540.
        return dt.time(value // 60, value % 60)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time of day; write it like \"09:00\"")
    try:
        hh, mm = value.split(":")
        if value == "24:00":
            return dt.time(23, 59, 59, 999999)
        return dt.time(int(hh), int(mm))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day; write it like \"09:00\"") from None


def _deadline(value: Any) -> Deadline:
    return value if isinstance(value, Deadline) else Deadline.parse(value)


DeadlineText = Annotated[
    Deadline,
    BeforeValidator(_deadline),
    WithJsonSchema({"type": "string", "pattern": r"^\s*[0-9]+\s*(m|min|h|d|w|service hours?|service minutes?)\s*$",
                    "description": "24h (wall clock) or '8 service hours' (only while the desk is open)"}),
]
ApprovalLimit = Annotated[Decimal | None, BeforeValidator(_limit)]
ClockTime = Annotated[dt.time, BeforeValidator(_clock_time)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Vocabulary(Strict):
    """The values the policy treats specially; facts are checked against them."""

    conditions: list[str] = Field(description="item conditions, e.g. unopened, unused, used, damaged")
    evidence: list[str] = Field(description="evidence types, e.g. order_record, photo, payment_voucher")
    channels: list[str] = Field(description="channels a request can arrive through")
    categories: list[str] = Field(default_factory=list,
                                  description="special categories; any other category is ordinary")
    flags: list[str] = Field(default_factory=list, description="customer flags, e.g. fraud_confirmed")
    labels: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="per language (zh-CN, ...), how customers read the values above in "
        "their messages, e.g. zh-CN: {photo: 照片, unused: 未使用, perishable_food: 生鲜食品}")

    def terms(self) -> list[str]:
        """Every value the vocabulary names (each may have a label per language)."""
        return [*self.conditions, *self.evidence, *self.channels, *self.categories, *self.flags]


class RoleDef(Strict):
    """A role: what it inherits, how much it may approve ("unlimited", or a decimal string), and which facts
    it may give with an event (``writes``: a list of fact names, or "any")."""

    inherits: list[str] = Field(default_factory=list)
    approval_limit: ApprovalLimit = Field(Decimal("0"), description='"2000.00" or "unlimited"')
    writes: list[str] | Literal["any"] | None = Field(
        None, description='facts this role may give with an event: a list, or "any" (values the system keeps '
        "never). A role also writes what the roles it inherits write. Omitted: a customer writes evidence, "
        "note, comment, score, locale, tracking and channel; any other role writes any fact")
    opens: list[str] | Literal["any"] | None = Field(
        None, description='facts this role may give when opening a case besides those it writes and those the '
        'kind requires: a list, or "any". A role also opens with what the roles it inherits open with. Omitted: a '
        "customer opens with order_id, amount, paid, reason, category, condition, delivered and the personal facts; "
        "any other role with what it writes")
    description: str | None = None


class Hours(Strict):
    open: ClockTime
    close: ClockTime


class SpecialDay(Strict):
    date: dt.date
    hours: Hours | None = Field(None, description="other opening hours that day; omit for closed")
    name: str | None = None


class Escalation(Strict):
    """What a breached deadline does to a case: raise its priority, move it to a queue."""

    priority: int = Field(2, ge=0, le=9, description="the case's priority after the breach (higher: more urgent)")
    queue: str | None = Field(None, description="the queue the case moves to, e.g. supervisor")
    assign_to: str | None = Field(None, max_length=200, description="who the case is assigned to, unless it is "
                                  "assigned already (an operator id, e.g. duty-supervisor)")


class OnBreach(Strict):
    first_response: Escalation | None = None
    resolution: Escalation | None = None


class Timer(Strict):
    """A case that stays in ``state`` for ``after`` gets ``event`` fired by the system."""

    state: str
    after: DeadlineText
    event: str
    note: str | None = Field(None, description="recorded with the event, e.g. 'abandoned: no evidence in 5 days'")


class DeskDeadline(Strict):
    """The desk must move a case out of ``state`` within ``within`` of entering it ("refund within 7 days of
    received"). Missed: the sweep marks the breach ``name`` (reported like the first response's), applies
    ``on_breach`` and, if given, fires ``event`` as the system."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$",
                      description="the breach's name in reports, e.g. refund_after_receipt")
    state: str = Field(description="the state the case must leave in time, e.g. received")
    within: DeadlineText = Field(description="e.g. 7d, or '16 service hours'")
    event: str | None = Field(None, description="fired by the system when the deadline is missed (e.g. escalate); "
                              "omitted: the breach is marked and reported only")
    on_breach: Escalation | None = Field(None, description="escalation when this deadline is missed")


class Service(Strict):
    """When the desk works, how long the first response may take, and what a breach does."""

    first_response: DeadlineText = Field(description="e.g. 24h, or '8 service hours'")
    hours: Hours | None = Field(None, description="daily service hours, e.g. 09:00-21:00; omit for 24/7")
    weekdays: dict[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
                   Hours | None] = Field(default_factory=dict, description="other hours on a weekday; null: closed")
    holidays: list[dt.date] = Field(default_factory=list)
    special_days: list[SpecialDay] = Field(default_factory=list)
    on_breach: OnBreach = Field(default_factory=OnBreach, description="escalation when a deadline is missed")


class EventPolicy(Strict):
    roles: list[str] = Field(description="roles that may fire this event (a role also covers those that inherit it)")
    guards: list[Guard] = Field(default_factory=list)
    route: Escalation | None = Field(None, description="where the applied event sends the case: a priority, a queue, "
                                     "an assignee (e.g. an escalated complaint to the supervisor queue)")
    description: str | None = None


class KindPolicy(Strict):
    reasons: list[str] | None = Field(None, description="the reasons a case of this kind may give")
    required: list[str] = Field(default_factory=list, description="facts that must be given at opening")
    open_roles: list[str] = Field(default_factory=lambda: ["customer", "agent", "supervisor"])
    responses: list[str] = Field(default_factory=list,
                                 description="events that count as the first response")
    first_response: DeadlineText | None = None
    first_response_by_channel: dict[str, DeadlineText] = Field(
        default_factory=dict, description="a different first-response target per channel, e.g. hotline: 2h")
    resolution: DeadlineText | None = Field(None, description="time to reach a settled state, e.g. 3d")
    resolution_by_priority: dict[int, DeadlineText] = Field(
        default_factory=dict, description="a resolution target per priority (0-9), e.g. {3: 1d}; a priority not "
        "listed has the kind's resolution")
    timers: list[Timer] = Field(default_factory=list, description="events the system fires after a while")
    deadlines: list[DeskDeadline] = Field(default_factory=list,
                                          description="how long the desk may keep a case in a state")
    reopen_within: DeadlineText | None = Field(
        None, description="how long after closing a case may be reopened (e.g. 14d); omitted: whenever the "
        "reopen event's roles may")
    reopen_resolution: DeadlineText | None = Field(
        None, description="the resolution target of a reopened case, from the reopening (e.g. 2d): a case reopened "
        "past or near its promised resolution is due then, its resolution breach cleared; omitted: a reopened case "
        "keeps the deadline promised at opening")
    waiting_states: list[str] = Field(
        default_factory=list, description="states where the desk waits on the customer (e.g. awaiting_evidence): "
        "the resolution clock pauses there and resumes when the case leaves them, its deadline pushed by the time "
        "paused")
    events: dict[str, EventPolicy]


Lang = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class ReasonMessages(Strict):
    """What to tell people about one reason code, per language (en, zh-CN, ...).

    Templates take ``{placeholders}`` from the verdict's details (``{window}``, ``{elapsed_days}``,
    ``{missing}``, ...), plus ``{code}`` and ``{message}``; an unknown placeholder stays as written.
    """

    operator: dict[Lang, str] = Field(default_factory=dict, description="for the service desk")
    customer: dict[Lang, str] = Field(default_factory=dict, description="for the customer, polite and plain")


class ReasonCode(ReasonMessages):
    """A reason code of the policy's own (``final_sale``): what it means, and its messages."""

    meaning: str = Field(description="what a refusal with this code means, e.g. 'the item was sold as final sale'")


class DeskView(Strict):
    """A saved view of the queue: the filters of ``casework list`` it stands for (every one given must hold)."""

    kind: str | None = None
    state: str | None = None
    queue: str | None = None
    channel: str | None = None
    mine: bool = Field(False, description="the cases assigned to the acting operator")
    unassigned: bool = Field(False, description="the open cases nobody is assigned to")
    waiting: bool = Field(False, description="cases in a state where the desk waits on the customer")
    overdue: bool = Field(False, description="open cases past a deadline")
    due_within: DeadlineText | None = Field(None, description="open cases with a deadline this soon, e.g. 2h")


class DeskPolicy(Strict):
    """Who may do what at the desk beyond firing events, and the desk's saved views."""

    priority_roles: list[str] = Field(default_factory=lambda: ["supervisor"],
                                      description="roles that may set a case's priority (and those inheriting them)")
    soon: DeadlineText = Field(default_factory=lambda: Deadline.parse("2h"),
                               description="how soon a deadline counts as breaching soon (the breaching_soon view)")
    views: dict[str, DeskView] = Field(
        default_factory=dict, description="saved views of the queue by name, beside the built-in breaching_soon, "
        "mine, unassigned and waiting_on_customer (a view of the same name replaces the built-in one)")


class PolicyDocument(Strict):
    schema_: str | None = Field(None, alias="$schema")
    label: str = Field(description="a human name for this version of the rules")
    timezone: str = Field("UTC", description="IANA time zone of the service desk, e.g. Asia/Shanghai")
    vocabulary: Vocabulary
    roles: dict[str, RoleDef]
    service: Service
    kinds: dict[str, KindPolicy]
    operators: dict[str, list[str]] | None = Field(
        None, description="actor id -> roles granted; when present, other roles are refused (any actor may "
        "act as customer). Without it the deployment runs in open mode")
    personal: list[str] = Field(default_factory=list,
                                description="facts holding personal data (masked in show/history and exports)")
    facts: dict[str, FactDecl] | None = Field(
        None, description="the facts expressions may read, each with its type (and whether it is personal); "
        "omitted: the facts casework knows by name")
    messages: dict[str, ReasonMessages] = Field(
        default_factory=dict, description="per reason code: operator and customer messages by language")
    codes: dict[str, ReasonCode] = Field(
        default_factory=dict, description="reason codes of the policy's own (e.g. final_sale), each with what it "
        "means and its operator and customer messages; an expr guard may refuse with one")
    rejections: dict[str, ReasonCode] = Field(
        default_factory=dict, description="the reasons a reject may give (e.g. deadline_passed, condition, "
        "missing_proof, fraud), each with what it means and the messages composed for the customer and the "
        "desk; when present, every reject names one (recorded as the case's rejection fact)")
    replies: dict[str, ReasonCode] = Field(
        default_factory=dict, description="canned replies to the customer (e.g. need_photo), each with what it "
        "means and its customer text per language; `casework note NUMBER --reply CODE` sends one in the "
        "customer's language ({number} and the case's facts filled in)")
    desk: DeskPolicy = Field(default_factory=DeskPolicy, description="who may set priorities at the desk")
    version: Literal[1] = 1

    def declared(self) -> dict[str, FactDecl]:
        """The declared facts: the ``facts:`` section, or without one the facts casework knows by name."""
        return dict(BUILTIN) if self.facts is None else {k: d for k, d in self.facts.items() if k != CATCH_ALL}

    def texts(self, code: str) -> ReasonMessages | None:
        """The messages of a reason code: from ``messages:``, else from the code's own declaration."""
        return self.messages.get(code) or self.codes.get(code)

    def reason_codes(self) -> list[str]:
        """Every reason code a decision under this policy can carry: the engine's, and the policy's own."""
        return sorted({*known_codes(), *self.codes})

    @model_validator(mode="after")
    def _declared_personal(self) -> PolicyDocument:
        """``personal`` lists every fact holding personal data: the ``personal:`` list and each fact declared
        ``personal: true`` (one list for masking, redaction and the stored version alike)."""
        declared = sorted(n for n, d in (self.facts or {}).items() if d.personal and n not in self.personal)
        if declared:
            object.__setattr__(self, "personal", [*self.personal, *declared])  # (frozen: set once, while validating)
        return self

    def writes(self, role: str, lineage: Iterable[str]) -> frozenset[str] | None:
        """The facts ``role`` may give with an event (None: any): its own ``writes`` and those of the roles in
        its ``lineage`` (itself and every role it inherits). A role that states none and inherits none keeps
        the default: a customer writes CUSTOMER_WRITABLE, any other role any fact."""
        stated = [rd.writes for r in lineage if (rd := self.roles.get(r)) is not None and rd.writes is not None]
        if not stated:
            return CUSTOMER_WRITABLE if role == "customer" else None
        if "any" in stated:
            return None
        return frozenset(f for writes in stated for f in writes)

    def opens(self, role: str, lineage: Iterable[str]) -> frozenset[str] | None:
        """The facts ``role`` may give when opening a case besides those it writes (None: any): its own
        ``opens`` and those of the roles in its ``lineage``. A role that states none and inherits none keeps the
        default: a customer opens with CUSTOMER_OPENS and the personal facts, any other role with what it writes
        (nothing more)."""
        stated = [rd.opens for r in lineage if (rd := self.roles.get(r)) is not None and rd.opens is not None]
        if not stated:
            return CUSTOMER_OPENS | set(self.personal) if role == "customer" else frozenset()
        if "any" in stated:
            return None
        return frozenset(f for opens in stated for f in opens)

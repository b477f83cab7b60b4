"""What people are told about a refusal: each reason code's operator and customer text, per language.

The texts live in the policy (``messages:`` in ``policies.yaml``), so authors change them without a
deploy. A template's ``{placeholders}`` come from the verdict's details, plus ``{code}``, ``{guard}``,
``{message}`` (the engine's own explanation) and whatever ``context`` is given (``{event}``,
``{number}``...). Filling never raises: an unknown placeholder stays as written, a list becomes
``a, b`` (``a、b`` in Chinese), a missing value ``-``. Language: the one asked for (``zh-CN``), then another of
the same base (``zh``, ``zh-TW`` → ``zh-CN``), then ``en``, then the verdict's own message.

>>> from casework import Verdict, load_policy
>>> v = Verdict("no_reason_return_window", False, "window_expired", "delivered 9 days ago; the window is 7 days",
...             {"since": "delivered", "elapsed_days": 9, "window_days": 7, "window": "7 days"})
>>> render(load_policy(), v, "customer", "zh-CN")
'很抱歉，您的申请已超过7天的申请期限（签收后已过9天）。'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from casework.domain import Decision, Verdict
from casework.errors import InvalidInput

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policies.schema import ReasonCode, ReasonMessages

DEFAULT_LANG = "en"
AUDIENCES = ("customer", "operator")
# Names of the date facts a window counts from, as a customer reads them.
_SINCE = {
    "en": {"delivered": "delivery", "purchased": "purchase", "shipped": "shipment"},
    "zh": {"delivered": "签收", "purchased": "购买", "shipped": "发货"},
}


class _Keep(dict[str, Any]):
    """A placeholder with no value is written back as it was."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def lang_for(facts: Mapping[str, Any] | None, lang: str | None = None) -> str:
    """The language to use: the one asked for, else the case's ``locale`` fact, else English."""
    return lang or str((facts or {}).get("locale") or DEFAULT_LANG)


def languages(policy: PolicySet) -> list[str]:
    """The languages the policy's messages are written in (``en``, ``zh-CN``...)."""
    return sorted({lang for texts in (*policy.document.messages.values(), *policy.document.codes.values(),
                                              *policy.document.rejections.values())
                   for by_lang in (texts.customer, texts.operator) for lang in by_lang})


def language(policy: PolicySet, lang: str) -> str:
    """``lang`` if the policy's messages are written in it or in another form of its base language (``zh``
    for ``zh-CN``); InvalidInput listing the languages there are otherwise (never a silent fallback)."""
    known = languages(policy)
    wanted = lang.replace("_", "-").lower()
    if any(k.lower() == wanted or k.lower().split("-")[0] == wanted.split("-")[0] for k in known):
        return lang
    raise InvalidInput(f"unknown language {lang!r}; the policy's messages are in: {', '.join(known)}",
                       field="lang", value=lang)


def template(policy: PolicySet, code: str, audience: str = "customer", lang: str = DEFAULT_LANG) -> str | None:
    """The template for ``code`` in the best available language (None when the policy has none)."""
    if audience not in AUDIENCES:
        raise ValueError(f"audience {audience!r}: expected customer or operator")
    return pick(policy.document.texts(code), audience, lang)


def pick(texts: ReasonMessages | None, audience: str = "customer", lang: str = DEFAULT_LANG) -> str | None:
    """Of ``texts``, the one for ``audience`` in the best available language (None when there is none)."""
    if texts is None:
        return None
    by_lang: dict[str, str] = {k.lower(): v for k, v in getattr(texts, audience).items()}
    wanted = lang.replace("_", "-").lower()
    base = wanted.split("-")[0]
    for candidate in (wanted, base, *(k for k in by_lang if k.split("-")[0] == base), DEFAULT_LANG):
        if candidate in by_lang:
            return by_lang[candidate]
    return None


def render(policy: PolicySet, verdict: Verdict, audience: str = "customer", lang: str = DEFAULT_LANG, *,
           context: Mapping[str, Any] | None = None) -> str:
    """The message for ``verdict`` for ``audience`` in ``lang`` (falls back to en, then the verdict's message)."""
    combined = verdict.details.get("combinator")
    if combined in ("all_of", "any_of"):  # each failing branch in its own code's words (policies/combinators)
        said = [render(policy, Verdict(b["guard"], b["passed"], b["code"], b["message"], b["details"]), audience,
                       lang, context=context) for b in verdict.details.get("branches", ())]
        joiner = {"any_of": ("；或者：" if lang.lower().startswith("zh") else " Or: ")}.get(combined, " ")
        return joiner.join(said) or verdict.message
    text = template(policy, verdict.reason_code, audience, lang)
    if text is None:
        return verdict.message
    labels = vocabulary_labels(policy, lang) if audience == "customer" else {}
    try:
        return text.format_map(_Keep(placeholders(verdict, lang, context, labels)))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return text  # a template the loader let through but that cannot be filled: shown as written


def vocabulary_labels(policy: PolicySet, lang: str) -> Mapping[str, str]:
    """How a reader of ``lang`` calls the policy's vocabulary values (``vocabulary.labels``, in the best
    available form of the language; none: the values as written)."""
    by_lang = {k.lower(): v for k, v in policy.document.vocabulary.labels.items()}
    wanted = lang.replace("_", "-").lower()
    base = wanted.split("-")[0]
    for candidate in (wanted, base, *(k for k in by_lang if k.split("-")[0] == base)):
        if candidate in by_lang:
            return by_lang[candidate]
    return {}


def placeholders(verdict: Verdict, lang: str = DEFAULT_LANG, context: Mapping[str, Any] | None = None,
                 labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values a template can use for ``verdict``: its details (made readable, a vocabulary value by its
    ``labels`` entry) and a few derived ones."""
    zh = lang.lower().startswith("zh")
    sep = "、" if zh else ", "
    details = dict(verdict.details)
    # Window verdicts carry days for date facts and seconds for instants: offer both either way.
    if "window_seconds" in details and "window_days" not in details:
        details["window_days"] = int(details["window_seconds"]) // 86400
    if "elapsed_seconds" in details and "elapsed_days" not in details:
        details["elapsed_days"] = int(details["elapsed_seconds"]) // 86400
    if "window_days" in details and "window_seconds" not in details:
        details["window_seconds"] = int(details["window_days"]) * 86400
    if "since" in details:
        details["since_label"] = _SINCE["zh" if zh else "en"].get(str(details["since"]), str(details["since"]))
    if zh and "window_seconds" in details:
        details["window"] = _zh_duration(int(details["window_seconds"]))
    if "missing" not in details and "field" in details and verdict.code == "field_missing":
        details["missing"] = details["field"]
    values = {k: _text(v, sep, labels or {}) for k, v in details.items()}
    values.update({k: _text(v, sep) for k, v in (context or {}).items()})
    values.update(code=verdict.reason_code, guard=verdict.guard, message=verdict.message)
    return values


def messages_for(policy: PolicySet, decision: Decision, audience: str = "customer", lang: str = DEFAULT_LANG, *,
                 context: Mapping[str, Any] | None = None) -> list[str]:
    """One rendered message per reason the decision was refused (empty when it was allowed)."""
    ctx = {"event": decision.event, "kind": decision.kind, "from_state": decision.from_state, **(context or {})}
    return [render(policy, v, audience, lang, context=ctx) for v in decision.reasons]


def rejection(policy: PolicySet, code: str, audience: str = "customer", lang: str = DEFAULT_LANG, *,
              context: Mapping[str, Any] | None = None) -> str:
    """What ``audience`` is told about a case rejected for the policy's rejection reason ``code``
    (``{number}`` and the other ``context`` values filled in; the reason's meaning when it has no text)."""
    return _declared(policy.document.rejections.get(code), code, audience, lang, context)


def reply(policy: PolicySet, code: str, lang: str = DEFAULT_LANG, *, context: Mapping[str, Any] | None = None) -> str:
    """The policy's canned reply ``code`` to the customer in ``lang`` (falling back as every message does),
    ``{number}`` and the other ``context`` values filled in."""
    return _declared(policy.document.replies.get(code), code, "customer", lang, context)


def _declared(declared: ReasonCode | None, code: str, audience: str, lang: str,
              context: Mapping[str, Any] | None) -> str:
    """A declared code's text for ``audience`` in ``lang``, filled in; its meaning when it has no text."""
    if declared is None:
        return code
    text = pick(declared, audience, lang)
    if text is None:
        return declared.meaning
    values = {k: _text(v, "、" if lang.lower().startswith("zh") else ", ") for k, v in (context or {}).items()}
    try:
        return text.format_map(_Keep(code=code, meaning=declared.meaning, **values))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return text


def _text(value: Any, sep: str, labels: Mapping[str, str] | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return sep.join(_text(v, sep, labels) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return labels.get(value, value) if labels and isinstance(value, str) else str(value)


def _zh_duration(seconds: int) -> str:
    for unit, name in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds and seconds % unit == 0:
            return f"{seconds // unit}{name}"
    return f"{seconds}秒"


__all__ = ["AUDIENCES", "DEFAULT_LANG", "lang_for", "messages_for", "pick", "placeholders", "rejection", "render",
           "template", "vocabulary_labels"]

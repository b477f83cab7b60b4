"""Read a policy file into a :class:`PolicySet`, reporting every problem as FILE:LINE:COL.

YAML is read safely with a YAML 1.2 view of booleans (``on``/``off``/``yes``/``no`` stay text),
duplicate keys are errors, and every value keeps the line and column it came from, so that schema
errors, cross-reference errors and guard explanations can all point into the file.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Iterable, Iterator
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from casework.errors import PolicyError, PolicyProblem
from casework.policies.schema import PolicyDocument
from casework.values import did_you_mean

Path_ = tuple[str | int, ...]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans. Parsed by libyaml (C) where PyYAML
    has it, several times faster than the pure-Python parser; positions and errors are the same."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Positions:
    """Where each value (and each mapping key) sits in the file."""

    def __init__(self) -> None:
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.count = 0


MAX_NODES = 200_000  # far beyond any real policy; stops alias bombs ("billion laughs")


def _to_python(node: yaml.Node, path: Path_, pos: _Positions, loader: _Loader,
               problems: list[tuple[Path_, str, bool]], active: frozenset[int] = frozenset()) -> Any:
    here = (node.start_mark.line + 1, node.start_mark.column + 1)
    pos.values[path] = here
    pos.count += 1
    if pos.count > MAX_NODES:
        raise _BadScalar(*here, f"the document is too large (more than {MAX_NODES} values once aliases are expanded)")
    if id(node) in active:
        raise _BadScalar(*here, "a recursive alias (an anchor used inside itself) is not allowed")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadScalar(*key_at, "a mapping key must be plain text")
            key = _scalar(key_node, loader, key_at)
            if not isinstance(key, str | int):
                key = str(key)
            sub = (*path, key)
            pos.keys[sub] = key_at
            if key in out:
                problems.append((sub, f"duplicate key {key!r}", True))
            out[key] = _to_python(value_node, sub, pos, loader, problems, active)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), pos, loader, problems, active) for i, item in enumerate(node.value)]
    return _scalar(node, loader, here)


def _scalar(node: yaml.Node, loader: _Loader, at: tuple[int, int]) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. 2026-02-30 read as a date
        raise _BadScalar(*at, f"{node.value!r} is not a valid value: {exc}") from None
    except yaml.YAMLError as exc:  # e.g. an unknown tag such as !!python/object
        problem = getattr(exc, "problem", None) or str(exc)
        raise _BadScalar(*at, f"{problem}; policies are plain YAML (no tags)") from None


class _BadScalar(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class SourceMap:
    """Maps a path inside the document to ``(line, column)`` in the file."""

    def __init__(self, name: str, pos: _Positions, data: Any, text: str = "") -> None:
        self.name = name
        self._pos = pos
        self._data = data
        self._lines = text.splitlines()

    def locate(self, loc: Iterable[str | int], key: bool = False) -> tuple[int, int]:
        """Best position for a pydantic-style ``loc`` (tag names in unions are skipped)."""
        node = self._data
        path: list[str | int] = []
        for part in loc:
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and type(part) is int and 0 <= part < len(node)
            if not (in_dict or in_list):
                continue  # a union tag or an absent field: stay on the parent
            node = node[part]
            path.append(part)
            # else: a union tag or a field that is absent: stay on the parent
        p = tuple(path)
        if key and p in self._pos.keys:
            return self._pos.keys[p]
        return self._pos.values.get(p) or self._pos.keys.get(p) or (1, 1)

    def inside(self, loc: Iterable[str | int], line: int, column: int) -> tuple[int, int]:
        """Where ``(line, column)`` of the text held by the scalar at ``loc`` (an expression) is in the file: past
        an opening quote; a block scalar (``|``, ``>``) starts on the next line, at its indentation."""
        at_line, at_col = self.locate(loc)
        text = self._lines[at_line - 1] if 0 < at_line <= len(self._lines) else ""
        first = text[at_col - 1:at_col]
        if first in ("|", ">"):
            body = self._lines[at_line] if at_line < len(self._lines) else ""
            return at_line + line, len(body) - len(body.lstrip()) + column
        if line > 1:  # a later line of a flow scalar: its own column
            return at_line + line - 1, column
        return at_line, at_col + (1 if first in ("'", '"') else 0) + column - 1

    def at(self, loc: Iterable[str | int]) -> str:
        line, _ = self.locate(loc)
        return f"{self.name}:{line}"


MAX_DEPTH = 32  # levels of nesting; the default policy uses 9. Deeper input is refused before anything recurses.


def _walk(node: yaml.Node) -> Iterator[yaml.Event | yaml.Node]:
    """The composed tree as a stream like the parser's: a node on entering a collection, None on leaving it."""
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, yaml.MappingNode | yaml.SequenceNode):
            yield item
            stack.append(None)
            children = [n for pair in item.value for n in pair] if isinstance(item, yaml.MappingNode) else item.value
            stack.extend(reversed(children))
        elif item is None:
            yield yaml.CollectionEndEvent()


def _too_deep(stream: Iterable[Any], name: str) -> PolicyProblem | None:
    """Where ``stream`` (parser events, or a composed tree by ``_walk``) first nests deeper than MAX_DEPTH."""
    depth = 0
    for item in stream:
        if isinstance(item, yaml.CollectionStartEvent | yaml.MappingNode | yaml.SequenceNode):
            depth += 1
            if depth > MAX_DEPTH:
                mark = item.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
                return PolicyProblem(name, line, col,
                                     f"nested more than {MAX_DEPTH} levels deep; a policy needs far fewer")
        elif isinstance(item, yaml.CollectionEndEvent):
            depth -= 1
    return None


def read_document(text: str, name: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python data and a source map; raise PolicyError if malformed."""
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise PolicyError([PolicyProblem(name, line, col, f"malformed YAML: character {exc.character!r} "
                                         "is not allowed")]) from None
    except (yaml.MarkedYAMLError, RecursionError) as exc:
        if isinstance(exc, RecursionError) or "nesting depth" in str(exc.problem):
            # Too deep for the parser (libyaml's limit, or the stack of the pure-Python one): find the spot
            # by streaming the pure-Python parser's events (lazily: libyaml's scanner reads ahead), which
            # stops at our own, lower limit.
            deep = _too_deep(yaml.parse(text, Loader=yaml.SafeLoader), name)
            raise PolicyError([deep or PolicyProblem(name, 1, 1, "malformed YAML: nested too deeply")]) from None
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PolicyError([PolicyProblem(name, line, col, f"malformed YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyProblem(name, 1, 1, f"malformed YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise PolicyError([PolicyProblem(name, 1, 1, "the policy file is empty")])
    if (deep := _too_deep(_walk(node), name)) is not None:
        raise PolicyError([deep])
    pos = _Positions()
    dupes: list[tuple[Path_, str, bool]] = []
    try:
        data = _to_python(node, (), pos, _Loader(""), dupes)
    except _BadScalar as bad:
        raise PolicyError([PolicyProblem(name, bad.line, bad.column, bad.message)]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyProblem(name, 1, 1, f"malformed YAML: {exc}")]) from None
    smap = SourceMap(name, pos, data, text)
    if dupes:
        raise PolicyError([PolicyProblem(name, *smap.locate(p, key=True), msg) for p, msg, _ in dupes])
    if not isinstance(data, dict):
        raise PolicyError([PolicyProblem(name, 1, 1, "a policy must be a mapping with label, vocabulary, "
                                         "roles, service and kinds")])
    return data, smap


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model whose field list applies at ``loc`` (for "did you mean")."""
    current: Any = PolicyDocument
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    current = _unwrap(current, None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any, part: str | int | None) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], part)
    if origin in (typing.Union, __import__("types").UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel):
                tag = m.model_fields.get("guard")
                if tag is not None and part in typing.get_args(tag.annotation):
                    return m
        if len(members) != 1:  # e.g. when: a Condition or an Expression — the one model among them
            members = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        return _unwrap(members[0], part) if len(members) == 1 else None
    if part is None:
        return tp
    if origin in (list, tuple):
        return typing.get_args(tp)[0] if isinstance(part, int) else None
    if origin is dict:
        return typing.get_args(tp)[1]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        if field is None:
            field = next((f for f in tp.model_fields.values() if f.alias == part), None)
        return field.annotation if field is not None else None
    return None


def did_you_mean_or(word: str, choices: Iterable[str], listing: str, none: str = "") -> str:
    """`` (did you mean 'x'?)`` when ``word`` is close to one of ``choices``, else ``; LISTING: a, b, c``.

    ``none`` stands in for the list when ``choices`` is empty.
    """
    options = list(choices)
    return did_you_mean(word, options) or f"; {listing}: {', '.join(options) or none}"


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items() if name != "code"]


def _pydantic_problems(exc: ValidationError, smap: SourceMap) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top)"
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            options = _field_names(model) if model else []
            hint = did_you_mean_or(key, options, "expected one of") if options else ""
            line, col = smap.locate(loc, key=True)
            problems.append(PolicyProblem(smap.name, line, col, f"unknown key {key!r} in {where}{hint}"))
            continue
        if kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            tag = str(ctx.get("tag", ""))
            options = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
            line, col = smap.locate((*loc, "guard"))
            problems.append(PolicyProblem(
                smap.name, line, col, f"unknown guard {tag!r} in {where}"
                f"{did_you_mean(tag, options)}; guards: {', '.join(options)}"))
            continue
        if kind == "union_tag_not_found":
            line, col = smap.locate(loc)
            problems.append(PolicyProblem(smap.name, line, col, f"{where}: a guard needs a 'guard:' key "
                                          "naming its type"))
            continue
        line, col = smap.locate(loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        got = err.get("input")
        shown = "" if kind == "missing" or isinstance(got, dict | list) else f" (got {got!r})"
        if kind == "missing":
            msg = f"missing required key {str(loc[-1])!r}"
            where = ".".join(str(p) for p in loc[:-1]) or "(top)"
        if isinstance(got, float) and not isinstance(got, bool):
            msg += "; write money and amounts as quoted decimal strings, like \"2000.00\""
        problems.append(PolicyProblem(smap.name, line, col, f"{where}: {msg}{shown}"))
    return problems


def parse_document(text: str, name: str = "policies.yaml") -> tuple[PolicyDocument, SourceMap]:
    """Validate the shape of a policy document (no cross-reference checks)."""
    doc, smap, problems = parse_document_partially(text, name)
    if problems or doc is None:
        raise PolicyError(problems)
    return doc, smap


def parse_document_partially(text: str, name: str = "policies.yaml"
                             ) -> tuple[PolicyDocument | None, SourceMap, list[PolicyProblem]]:
    """The shape problems of a policy document, and the document itself: whole when it has none, else without
    the parts that have them (so the rest can be cross-checked in the same run), or None when what is left
    is no document (a required section is malformed). Raises PolicyError if the YAML cannot be read."""
    data, smap = read_document(text, name)
    try:
        return PolicyDocument.model_validate(data), smap, []
    except ValidationError as exc:
        return _without_problems(data, exc), smap, _pydantic_problems(exc, smap)


def _without_problems(data: dict[str, Any], exc: ValidationError, rounds: int = 6) -> PolicyDocument | None:
    """``data`` validated with each malformed part cut out: the key holding a bad value, the object missing a
    required key; a malformed list item takes its whole list (cutting dict keys only, never list items,
    keeps every remaining value at the line and column the source map knows)."""
    pruned = copy.deepcopy(data)
    for _ in range(rounds):
        for err in exc.errors():
            path = _existing(pruned, err["loc"])
            while path and isinstance(path[-1], int):
                path = path[:-1]
            if not path:
                return None  # a top-level problem: nothing sensible is left to cross-check
            parent: Any = pruned
            for part in path[:-1]:
                parent = parent[part]
            parent.pop(path[-1], None)
        try:
            return PolicyDocument.model_validate(pruned)
        except ValidationError as again:
            exc = again
    return None


def _existing(data: Any, loc: Iterable[str | int]) -> tuple[str | int, ...]:
    """The part of a pydantic ``loc`` that is in ``data`` (union tags and absent keys left out)."""
    path: list[str | int] = []
    for part in loc:
        in_dict = isinstance(data, dict) and part in data
        if in_dict or (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            data = data[part]
            path.append(part)
    return tuple(path)

"""The audit hash's format is fixed: databases written by earlier versions must keep verifying.

``entry_hash`` embeds the entry's pre-serialised verdicts and data in its payload; these tests pin it
to its definition, SHA-256 of the canonical JSON of the whole mapping, and to a hash recorded once.
The canonical text is ``json.dumps``'s (sorted keys, no spaces, UTF-8 as is), written by orjson.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casework.audit import entry_hash
from casework.jsontext import canonical, parse, strict

KW: dict[str, Any] = dict(
    number="RF-2026-000001", seq=3, at="2026-11-23T10:00:00+00:00", event="approve", from_state="under_review",
    to_state="approved", outcome="applied", actor="alice", role="agent", channel=None,
    verdicts=[{"guard": "roles", "passed": True, "code": "role_not_permitted",
               "message": '退款 "ok" \\ \u2028', "details": {"b": 1, "a": "59.00"}}],
    data={"note": "é\n\t"}, policy_hash="ab" * 32, prev_hash="0" * 64,
)


def by_definition(kw: dict[str, Any]) -> str:
    whole = {"number": kw["number"], "seq": kw["seq"], "at": kw["at"], "event": kw["event"],
             "from": kw["from_state"], "to": kw["to_state"], "outcome": kw["outcome"], "actor": kw["actor"],
             "role": kw["role"], "channel": kw["channel"], "verdicts": kw["verdicts"], "data": kw["data"],
             "policy": kw["policy_hash"], "prev": kw["prev_hash"]}
    return hashlib.sha256(canonical(whole).encode("utf-8")).hexdigest()


def test_recorded_hash_is_stable() -> None:
    # Computed by casework 0.1.0 before the hot path assembled the payload from parts.
    assert entry_hash(**KW) == "886270dad7c1a0f8377947408a6253952f63a53c81d8741bb3c5ccc1703e04ce"
    assert by_definition(KW) == entry_hash(**KW)


def test_pre_serialised_parts_give_the_same_hash() -> None:
    assert entry_hash(**KW, verdicts_text=canonical(KW["verdicts"]), data_text=canonical(KW["data"])) \
        == entry_hash(**KW)


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
optional = st.none() | text


@given(number=text, seq=st.integers(min_value=0, max_value=2**63), at=text, event=text, from_state=optional,
       to_state=optional, outcome=text, actor=text, role=text, channel=optional, policy_hash=text, prev_hash=text,
       data=st.dictionaries(text, text | st.integers(), max_size=3))
def test_any_values_hash_as_the_canonical_mapping(**kw: Any) -> None:
    kw["verdicts"] = [{"guard": kw["event"], "passed": False}]
    assert entry_hash(**kw) == by_definition(kw)


# What casework stores and hashes: text, whole numbers (any size), booleans, nulls, lists, objects.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**80) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20)


@given(json_values)
def test_canonical_text_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert canonical(value) == expected
    assert strict(value) == expected


def test_non_json_values_are_written_as_json_dumps_writes_them() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 22, 10, tzinfo=UTC)
    for value in ({"at": at}, {1: "a"}, [10**30, {"b": Decimal("2.50")}]):
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        assert canonical(value) == expected


def test_strict_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        strict({"amount": Decimal("1.00")})
    assert canonical({"amount": Decimal("1.00")}) == '{"amount":"1.00"}'


@given(json_values | st.recursive(st.floats() | st.integers(min_value=-2**90, max_value=2**90) | text,
                                  lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                                  max_leaves=20))
def test_stored_text_is_read_back_as_json_loads_reads_it(value: Any) -> None:
    # parse reads with orjson where it gives json.loads's value; whole numbers beyond 64 bits (which orjson reads
    # as floats), NaN and infinities are read by the standard library. Floats too: whatever it reads, it is exact.
    written = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = json.loads(written)
    got = parse(written)
    assert repr(got) == repr(expected)


def test_text_orjson_refuses_is_read_as_before_or_is_a_value_error() -> None:
    assert parse('"\\ud800"') == "\ud800"  # a lone surrogate: json.loads reads it, orjson does not
    with pytest.raises(ValueError):
        parse('{"amount": ')


# ---- every other link and MAC is as fixed as the entry hash ------------------------------------------------------
# Each is pinned by its definition and by the value casework 0.1.0 recorded: a database written today must verify
# tomorrow, so renaming a field, reordering the parts or changing a separator is a breaking change, not a refactor.
PREV, POLICY, ENTRY = "0" * 64, "ab" * 32, "cd" * 32


def test_the_policy_chain_link_is_sha256_of_the_previous_link_and_the_policy_hash() -> None:
    from casework.audit import policy_chain_hash

    assert policy_chain_hash(PREV, POLICY) == hashlib.sha256(f"{PREV}:{POLICY}".encode()).hexdigest() \
        == "4111c22cdb78868bac835f5719f6b5b7362eb3270a7cd57274cace92da6b39d4"


def test_the_publication_link_is_sha256_of_the_canonical_record() -> None:
    from casework.audit import publication_hash

    record = {"actor": "wang", "at": "2026-11-23T10:00:00+00:00", "file": "policies.yaml", "policy": POLICY,
              "prev": PREV, "role": "admin", "seq": 2}
    link = publication_hash(PREV, seq=2, policy_hash=POLICY, file="policies.yaml", actor="wang", role="admin",
                            at="2026-11-23T10:00:00+00:00")
    assert link == hashlib.sha256(canonical(record).encode()).hexdigest()
    assert link == "513fbdea4a68d13dad0e9ec404dba9d663d9c45bc7f086d7ed91045bd22dd423"


def test_the_global_chain_link_is_sha256_of_the_previous_link_the_place_and_the_entry_hash() -> None:
    from casework.audit import chain_link

    assert chain_link(PREV, 7, ENTRY) == hashlib.sha256(f"{PREV}:7:{ENTRY}".encode()).hexdigest() \
        == "a53ffe0ba16b5193c8906461a542e6fd42dc94c9c6acc5fedc6ed3b4cb26e0b0"


def test_an_audit_keys_id_macs_and_links_are_hmac_sha256_of_fixed_texts() -> None:
    import hmac

    from casework.audit import AuditKey, chain_link

    secret = b"k" * 32

    def mac(text: str) -> str:
        return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()

    key = AuditKey(" " + "k" * 32 + "\n")  # surrounding white space is not part of the key
    assert key.id == mac("casework audit key id")[:16] == "f585e57b150222dc"
    assert repr(key) == "AuditKey(id='f585e57b150222dc')"
    assert key.entry_mac(ENTRY) == mac(f"entry:{ENTRY}") \
        == "86775da4b82a68f6f70fed907684e7d795fa20933f5cca5d2c8688e6d4ed86b3"
    assert key.publication_mac(ENTRY) == mac(f"publication:{ENTRY}") != key.entry_mac(ENTRY)
    assert key.link(PREV, 7, ENTRY) == chain_link(PREV, 7, ENTRY, key) == mac(f"{PREV}:7:{ENTRY}") \
        == "1546c3d9b5be6df819c047bfbbbc54996037f74eebfc9eb10aab8ece34c094cb"
    assert AuditKey(secret).id == key.id and AuditKey("K" * 32).id != key.id
    # The same key gives the same MAC every time (its pads are computed once and copied, never used up).
    assert key.entry_mac(ENTRY) == key.entry_mac(ENTRY)


@pytest.mark.parametrize("secret", ["short", " " * 40, "x" * 15, b"\x00" * 3])
def test_an_audit_key_shorter_than_16_bytes_is_refused(secret: str | bytes) -> None:
    from casework.audit import AuditKey

    stripped = len((secret.encode() if isinstance(secret, str) else secret).strip())
    with pytest.raises(ValueError, match=f"^an audit key must be at least 16 bytes long; got {stripped}$"):
        AuditKey(secret)
    assert AuditKey("x" * 16).id

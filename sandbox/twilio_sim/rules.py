"""Who may join a conversation: Twilio's participant and Group MMS rules.

These are the checks the app's ``@group`` command and bot-joining code run into on the real
service, so they are enforced here with Twilio's documented codes
(https://www.twilio.com/docs/conversations/group-texting and .../api/errors/504xx):

- SMS addresses must be E.164 (50407; proxy/projected 50408); an empty address is 50411.
- A participant needs an Identity, an Address or a ProjectedAddress (50204); Identity and
  Address together are refused (50211), Address with ProjectedAddress too (50420).
- Duplicates inside a conversation answer HTTP 409: same identity 50433, same address-only or
  projected address 50437, same address+proxy pair 50416. The pair is also unique across
  non-closed conversations (50416).
- Group MMS (any address-only or projected-address participant): +1 numbers only (50435), at
  most 10 participants (50436), no chat-only identity (50434), and no second non-closed group
  with exactly the same addresses (409, 50438).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.twilio_sim.errors import TwilioError

if TYPE_CHECKING:
    from sandbox.twilio_sim.store import Conversation, Store

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
GROUP_MAX_PARTICIPANTS = 10


def channel(address: str) -> tuple[str, str]:
    """``whatsapp:+1…`` → (``whatsapp``, ``+1…``); a bare number is SMS."""
    if address.startswith("whatsapp:"):
        return "whatsapp", address[len("whatsapp:") :]
    return "sms", address


def is_e164(address: str) -> bool:
    return bool(E164.match(channel(address)[1]))


def binding_of(p: dict[str, Any]) -> dict[str, Any]:
    return p["messaging_binding"] or {}


def is_group_member(p: dict[str, Any]) -> bool:
    """Address-only SMS participants and projected addresses make a conversation a group."""
    b = binding_of(p)
    return bool(b.get("projected_address") or (b.get("address") and not b.get("proxy_address")))


def group_addresses(participants: list[dict[str, Any]]) -> frozenset[str]:
    out = set()
    for p in participants:
        b = binding_of(p)
        out.update(a for a in (b.get("address"), b.get("projected_address")) if a)
    return frozenset(out)


def check_participant(
    store: Store,
    conv: Conversation,
    identity: str | None,
    address: str | None,
    proxy: str | None,
    projected: str | None,
) -> dict[str, Any] | None:
    """Validate a new participant; return its ``messaging_binding`` (None for chat users)."""
    binding = _binding(identity, address, proxy, projected)
    existing = list(conv.participants.values())
    _check_duplicates(store, conv, existing, identity, address, proxy, projected)
    candidate = {"identity": identity, "messaging_binding": binding}
    after = [*existing, candidate]
    if any(is_group_member(p) for p in after):
        _check_group(store, conv, after)
    return binding


def _binding(
    identity: str | None, address: str | None, proxy: str | None, projected: str | None
) -> dict[str, Any] | None:
    if address == "" or (address is None and proxy):
        raise TwilioError(400, 50411)
    if not (identity or address or projected):
        raise TwilioError(400, 50204)
    if identity and address:
        raise TwilioError(400, 50211)
    if address and projected:
        raise TwilioError(
            400, 50420, "MessagingBinding.ProjectedAddress cannot be combined with an Address"
        )
    if address and not is_e164(address):
        raise TwilioError(400, 50407, f"Invalid messaging binding address: {address}")
    for name, value in (("proxy", proxy), ("projected", projected)):
        if value and not is_e164(value):
            raise TwilioError(400, 50408, f"Invalid participant {name} address: {value}")
    if address:
        kind, _ = channel(address)
        if proxy and channel(proxy)[0] != kind:
            raise TwilioError(400, 50408, "Address and ProxyAddress must use the same channel")
        return {"type": kind, "address": address, **({"proxy_address": proxy} if proxy else {})}
    if projected:
        return {"type": "sms", "projected_address": projected}
    return None


def _check_duplicates(
    store: Store,
    conv: Conversation,
    existing: list[dict[str, Any]],
    identity: str | None,
    address: str | None,
    proxy: str | None,
    projected: str | None,
) -> None:
    for p in existing:
        b = binding_of(p)
        if identity and p["identity"] == identity:
            raise TwilioError(409, 50433, f"Participant already exists: {identity}")
        if address and proxy and (b.get("address"), b.get("proxy_address")) == (address, proxy):
            raise TwilioError(
                409,
                50416,
                f"A binding for this participant and proxy address already exists "
                f"in Conversation {conv.sid}",
            )
        if address and not proxy and b.get("address") == address:
            raise TwilioError(409, 50437, f"Group Participant already exists: {address}")
        if projected and b.get("projected_address") == projected:
            raise TwilioError(409, 50437, f"Group Participant already exists: {projected}")
    if address and proxy:
        for other in store.conversations.values():
            if other is conv or other.record["state"] == "closed":
                continue
            for p in other.participants.values():
                b = binding_of(p)
                if (b.get("address"), b.get("proxy_address")) == (address, proxy):
                    raise TwilioError(
                        409,
                        50416,
                        f"A binding for this participant and proxy address already exists "
                        f"in Conversation {other.sid}",
                    )


def _check_group(store: Store, conv: Conversation, after: list[dict[str, Any]]) -> None:
    for p in after:
        b = binding_of(p)
        for number in (b.get("address"), b.get("projected_address"), b.get("proxy_address")):
            if number and not number.startswith("+1"):
                raise TwilioError(
                    400,
                    50435,
                    f"Group MMS activation failed: {number} is not a +1 (US or Canada) number; "
                    "Group MMS only works with +1 numbers",
                )
        if p["identity"] and not b.get("projected_address"):
            raise TwilioError(
                400,
                50434,
                f"This is a Group MMS conversation, but participant {p['identity']} has "
                "neither an Address nor a ProjectedAddress",
            )
    if len(after) > GROUP_MAX_PARTICIPANTS:
        raise TwilioError(
            400,
            50436,
            f"Participant limit exceeded for group conversation "
            f"(at most {GROUP_MAX_PARTICIPANTS} participants)",
        )
    if not any(binding_of(p).get("projected_address") for p in after):
        return
    wanted = group_addresses(after)
    for other in store.conversations.values():
        if other is conv or other.record["state"] == "closed":
            continue
        members = list(other.participants.values())
        if any(binding_of(p).get("projected_address") for p in members) and (
            group_addresses(members) == wanted
        ):
            raise TwilioError(
                409,
                50438,
                f"Group conversation with given participant list already exists: {other.sid}",
            )

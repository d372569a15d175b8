"""TwiML documents as the simulated phone network reads them: a ``<Response>`` of verbs.

Only what the gateway uses is modelled (``Say``, ``Pause``, ``Hangup``, ``Redirect``,
``Record``, ``Dial`` with ``Number``, ``Connect`` with ``Stream``, plus ``Play`` and ``Gather``
passed over). A document Twilio could not parse is error 12100, an unknown verb 12200, as in
Twilio's debugger; the call then ends the way Twilio ends it ("an application error").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

KNOWN_VERBS = {
    "Say",
    "Pause",
    "Hangup",
    "Redirect",
    "Record",
    "Dial",
    "Connect",
    "Play",
    "Gather",
    "Reject",
}
#: ``<Stream>``: "The combined length of each <Parameter> name and value ... under 500".
MAX_PARAMETER_CHARS = 500


class TwimlError(ValueError):
    """A document Twilio refuses, with the debugger code it logs."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Verb:
    name: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Verb] = field(default_factory=list)

    def attr(self, name: str, default: str = "") -> str:
        return self.attrs.get(name, default)

    def seconds(self, name: str, default: float) -> float:
        raw = self.attrs.get(name)
        try:
            return float(raw) if raw is not None else default
        except ValueError:
            return default


def _verb(el: ET.Element) -> Verb:
    return Verb(
        el.tag,
        dict(el.attrib),
        (el.text or "").strip(),
        [_verb(child) for child in el],
    )


def parse(document: str) -> list[Verb]:
    """The verbs of a TwiML document, in order."""
    try:
        root = ET.fromstring(document.strip())
    except ET.ParseError as exc:
        raise TwimlError(12100, f"Document parse failure: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(12100, f"Document parse failure: root element is <{root.tag}>")
    verbs = [_verb(el) for el in root]
    for verb in verbs:
        if verb.name not in KNOWN_VERBS:
            raise TwimlError(12200, f"Schema validation warning: unknown verb <{verb.name}>")
    return verbs


def stream_of(connect: Verb) -> tuple[str, dict[str, str]]:
    """``<Connect><Stream url>``'s URL and ``<Parameter>``s (Twilio's rules for both)."""
    stream = next((c for c in connect.children if c.name == "Stream"), None)
    if stream is None or not stream.attr("url"):
        raise TwimlError(12200, "Schema validation warning: <Connect> without <Stream url>")
    url = stream.attr("url")
    if "?" in url:
        raise TwimlError(31920, "Stream - WebSocket - Handshake Error: query string in url")
    if not url.startswith(("wss://", "ws://")):
        # Twilio accepts only wss; plain ws is let through for loopback relays in the sandbox
        raise TwimlError(31922, "Stream - WebSocket - Connect Error: url must be wss://")
    params: dict[str, str] = {}
    for p in stream.children:
        if p.name != "Parameter":
            continue
        name, value = p.attr("name"), p.attr("value")
        if len(name) + len(value) >= MAX_PARAMETER_CHARS:
            raise TwimlError(12200, f"<Parameter> {name!r}: name + value must be under 500")
        params[name] = value
    return url, params

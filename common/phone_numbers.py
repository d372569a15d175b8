"""Phone-number policy shared by the worker (``@call``/``@group``) and the relay (call tools).

Two rules: :func:`normalize_us_number` reads a US number however people write it, and
:func:`refusal` is the toll-fraud guard for any number the bot would dial, text or add to a
group. An outbound call or a group text costs money per number, and some numbers cost a great
deal (premium 900 lines, 976 exchanges, +1 numbers that are really Caribbean countries billed at
international rates). Only ordinary US and Canadian numbers pass. The region and number type
come from ``phonenumbers`` (Google's libphonenumber metadata), which knows every NANP area code;
the few rules it does not encode (976 and N11 exchanges) are checked here.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

ALLOWED_REGIONS = frozenset({"US", "CA"})
#: Ordinary lines. Toll-free is allowed (free to call); premium, shared-cost, personal (500),
#: pager and unknown types are not.
ALLOWED_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.VOIP,
    }
)
PREMIUM = "premium-rate numbers are not allowed"


def refusal(number: str, bot_number: str) -> str | None:
    """Why ``number`` (E.164) may not be dialled or added, in plain words; None if it may."""
    if number == bot_number:
        return "that is my own number"
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "not a valid phone number"
    national = str(parsed.national_number)
    if parsed.country_code == 1 and len(national) == 10:
        area, exchange = national[:3], national[3:6]
        if area[1:] == "11" or exchange[1:] == "11":
            return "service codes like 411 or 911 are not allowed"
        if area == "900" or exchange == "976":
            return PREMIUM
    if not phonenumbers.is_valid_number(parsed):
        return "not a valid phone number"
    if phonenumbers.region_code_for_number(parsed) not in ALLOWED_REGIONS:
        return "only US and Canadian numbers are allowed"
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.PREMIUM_RATE:
        return PREMIUM
    if kind not in ALLOWED_TYPES:
        return "that kind of number is not allowed"
    return None


def normalize_us_number(raw: str) -> str | None:
    """``+1NXXNXXXXXX`` for a valid US/NANP number written any common way, else None."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    # NANP: area code and exchange start with 2-9.
    if digits[0] in "01" or digits[3] in "01":
        return None
    return "+1" + digits

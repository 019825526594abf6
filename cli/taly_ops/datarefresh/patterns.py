"""What personal data looks like: e-mail addresses, phone numbers and card numbers.

One set of regular expressions serves the scrubber (Python `re`, inside free text and JSON) and the
scanner (PostgreSQL's `~` and `regexp_matches`, over every text and JSON column): every pattern is
written in the syntax both engines read the same way (bracket classes, `(?:...)`, bounded
repetition, `(?<!...)` and `(?!...)` look-around; no capturing groups, no `\\d`). A candidate the
pattern finds is then judged in Python: a phone number needs 8 to 15 digits, a card number 13 to 19
digits and a valid Luhn check digit (so order numbers and timestamps are not cards).

The reserved ranges the anonymiser writes are allowed, and nothing else:
- e-mail addresses in the rules file's fake domain (default example.invalid, RFC 2606 reserved);
- phone numbers in Ofcom's range for drama, +44 7700 900000 to 900999 (07700 900xxx nationally).
"""

from __future__ import annotations

import re

# Not followed by a letter, digit or underscore: "N00012345", "pi_4111..." and hex
# digests are not phone or card numbers.
_E = "(?![0-9A-Za-z_])"

EMAIL = "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:[.][A-Za-z0-9-]+)*[.][A-Za-z]{2,}"

_INTERNATIONAL = "[+][1-9][0-9]{0,3}(?:[ .-]?[(]?[0-9]{1,5}[)]?){1,6}"
_NATIONAL = ("(?:0[1-9][0-9]{1,3}[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}"   # UK/DE style: 020 7946 0018, 07700900123
             "|0[1-9](?:[ .-][0-9]{2}){4}"                          # FR style: 06 12 34 56 78
             "|[(][0-9]{3}[)] ?[0-9]{3}[ .-][0-9]{4}"               # US: (555) 123-4567
             "|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4})")                  # US: 555-123-4567, 555.123.4567
PHONE = "(?<![0-9A-Za-z_+])(?:" + _INTERNATIONAL + "|" + _NATIONAL + ")" + _E

CARD = "(?<![0-9A-Za-z_+])[0-9](?:[ -]?[0-9]){12,18}" + _E  # "+49 151 12345678" is a phone

PATTERNS = {"email": EMAIL, "phone": PHONE, "card_number": CARD}

# JSON's escapes (\n, \", \u00e9) in json::text, which the scanner turns into spaces: "call\n07700..." is a
# phone number after a line break, not after the letter n.
JSON_ESCAPE = r'\\(?:[bfnrt"/\\]|u[0-9A-Fa-f]{4})'

# The anonymiser's fake phone numbers: Ofcom's drama range.
FAKE_PHONE_PREFIX = "+44 7700 900"
ALLOWED_PHONE_DIGITS = "^(?:447700900|07700900)[0-9]{3}$"  # also a PostgreSQL regex
DEFAULT_FAKE_DOMAIN = "example.invalid"
RESERVED_TLDS = ("invalid", "test", "example", "localhost")  # RFC 2606 / RFC 6761

_email = re.compile(EMAIL)
_phone = re.compile(PHONE)
_card = re.compile(CARD)
_allowed_phone = re.compile(ALLOWED_PHONE_DIGITS)
_not_digit = re.compile("[^0-9]")


def digits(text: str) -> str:
    return _not_digit.sub("", text)


def luhn(number: str) -> bool:
    """The Luhn check digit of a string of digits is right."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_card(candidate: str) -> bool:
    """A card-number candidate that is one: 13 to 19 digits with a valid Luhn check digit."""
    d = digits(candidate)
    return 13 <= len(d) <= 19 and luhn(d)


def is_phone(candidate: str) -> bool:
    return 8 <= len(digits(candidate)) <= 15


def allowed_email(candidate: str, domain: str) -> bool:
    return candidate.lower().endswith("@" + domain.lower())


def allowed_phone(candidate: str) -> bool:
    return bool(_allowed_phone.match(digits(candidate)))


def is_reserved_domain(domain: str) -> bool:
    labels = domain.lower().split(".")
    return len(labels) >= 2 and all(labels) and labels[-1] in RESERVED_TLDS


def findings(text: str, domain: str = DEFAULT_FAKE_DOMAIN) -> dict[str, int]:
    """How many e-mails, phones and card numbers outside the reserved ranges text holds (as the scanner judges)."""
    out = {"email": 0, "phone": 0, "card_number": 0}
    for m in _email.finditer(text):
        if not allowed_email(m.group(), domain):
            out["email"] += 1
    for m in _phone.finditer(text):
        if is_phone(m.group()) and not allowed_phone(m.group()):
            out["phone"] += 1
    for m in _card.finditer(text):
        if is_card(m.group()):
            out["card_number"] += 1
    return out

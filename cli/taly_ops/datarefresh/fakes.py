"""Deterministic fake values: a keyed hash (HMAC-SHA256) of the original value picks the replacement.

The same key and the same original give the same fake on every run, in every table and inside free
text (an address in users.email and the same address quoted in a booking note get the same fake), so
joins on a personal value still join. Without the key the originals cannot be recovered by hashing
guesses. Hash-derived tokens use the letters a-p only (one per hex digit): a fake never contains a
digit run that the scanner could take for a phone or card number.

The SQL functions in anonymize.py compute exactly these values inside PostgreSQL (HMAC from the
built-in sha256() with the key's inner and outer pads passed as parameters); a test checks that both
sides agree.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import patterns

KEY_ENV = "TALY_ANONYMIZE_KEY"
KEY_FILE = Path("refresh") / "anonymize.key"
HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
EMAIL_TOKEN = 20  # 80 bits: unique for any realistic number of addresses
CARD_REMOVED = "[card removed]"

FIRST_NAMES = ("Alex", "Sam", "Robin", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Riley", "Avery", "Quinn",
               "Rowan", "Sasha", "Kai", "Remy", "Noel", "Eden", "Ari", "Jules", "Dana", "Lane", "Blair", "Emery",
               "Hayden", "Kendall", "Marlowe", "Oakley", "Parker", "Reese", "Sage", "Tatum", "Wren")
LAST_NAMES = ("Ashdown", "Birchley", "Calloway", "Dunmore", "Elsworth", "Fairbanks", "Greenholt", "Hartwell",
              "Ingleby", "Juniper", "Kestrel", "Larkspur", "Merriweather", "Northcott", "Oakhurst", "Pennyworth",
              "Quarrington", "Redfern", "Stillwater", "Thistlewood", "Underhill", "Vale", "Whitlock", "Yarrow")


@dataclass(frozen=True)
class Key:
    """The anonymisation key. `source` says where it came from; the secret itself is never shown."""

    secret: bytes = field(repr=False)
    source: str

    def _block(self) -> bytes:
        k = hashlib.sha256(self.secret).digest() if len(self.secret) > 64 else self.secret
        return k.ljust(64, b"\0")

    def pads(self) -> tuple[bytes, bytes]:
        """(inner, outer) HMAC-SHA256 pads: sha256(outer || sha256(inner || m)) is HMAC(key, m)."""
        block = self._block()
        return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)

    def hexdigest(self, message: str) -> str:
        return hmac.new(self.secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def load_key(state_dir: Path | None, *, create: bool = True) -> Key:
    """$TALY_ANONYMIZE_KEY, else the key kept in <state_dir>/refresh/anonymize.key (made on first use).

    Set TALY_ANONYMIZE_KEY (from the team's secret store) to get the same fakes from any machine; the
    state-dir key makes refreshes from one machine deterministic. create=False (a dry run) never writes it.
    """
    if value := os.environ.get(KEY_ENV):
        if len(value) < 16:
            from ..errors import BadInput

            raise BadInput(f"{KEY_ENV} is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)")
        return Key(value.encode(), f"environment variable {KEY_ENV}")
    if state_dir is None:
        return Key(secrets.token_bytes(32), "a one-off random key (no state directory)")
    path = state_dir / KEY_FILE
    if path.is_file():
        return Key(_read_key_file(path), f"key file {path}")
    if not create:
        return Key(secrets.token_bytes(32), f"key file {path} (not created yet: a dry run writes nothing)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another refresh created it meanwhile
        return Key(_read_key_file(path), f"key file {path}")
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return Key(_read_key_file(path), f"key file {path} (created)")


def _read_key_file(path: Path) -> bytes:
    """The key in a key file: hex, at least 16 bytes. An empty or garbled file is BadInput, never a weak key."""
    from ..errors import BadInput

    try:
        secret = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        secret, why = b"", getattr(exc, "strerror", None) or "not hexadecimal"
    else:
        why = f"{len(secret)} bytes"
    if len(secret) < 16:
        raise BadInput(f"the anonymisation key file {path} is unusable ({why}; it needs at least 16 bytes in hex)",
                       hint=f"restore it from where it is kept, or delete it to make a new key (fakes will change), "
                            f"or set {KEY_ENV}")
    return secret


# --- one value ------------------------------------------------------------------------------------------

def token(key: Key, message: str, length: int) -> str:
    return key.hexdigest(message)[:length].translate(HEX_TO_LETTERS)


def fake_email(key: Key, value: str, domain: str = patterns.DEFAULT_FAKE_DOMAIN) -> str:
    if not value:
        return value
    return f"user.{token(key, 'email:' + value.strip(' ').translate(ASCII_LOWER), EMAIL_TOKEN)}@{domain}"


def fake_name(key: Key, value: str) -> str:
    if not value:
        return value
    h = key.hexdigest("name:" + value.strip(" ").translate(ASCII_LOWER))
    return f"{FIRST_NAMES[int(h[0:7], 16) % len(FIRST_NAMES)]} {LAST_NAMES[int(h[7:14], 16) % len(LAST_NAMES)]}"


def fake_phone(key: Key, value: str) -> str:
    if not value:
        return value
    h = key.hexdigest("phone:" + patterns.digits(value))
    return f"{patterns.FAKE_PHONE_PREFIX}{int(h[0:7], 16) % 1000:03d}"


def hash_token(key: Key, value: str, prefix: str = "", length: int = 24) -> str:
    if value is None:
        return value
    return prefix + token(key, "hash:" + value, length)


# --- free text and JSON ---------------------------------------------------------------------------------

_SCRUB = re.compile(f"(?P<email>{patterns.EMAIL})|(?P<card>{patterns.CARD})|(?P<phone>{patterns.PHONE})")


def scrub_text(key: Key, text: str, domain: str = patterns.DEFAULT_FAKE_DOMAIN) -> str:
    """text with every e-mail, phone and card number replaced; the rest kept as it was.

    E-mails and phones become their deterministic fakes (an address that is already in the fake domain,
    a number already in the fictional range, stays); anything shaped like a card number (13 to 19
    digits, Luhn-valid or not) becomes "[card removed]".
    """
    if not text:
        return text

    def replace(m: re.Match) -> str:
        found = m.group()
        if m.lastgroup == "email":
            return found if patterns.allowed_email(found, domain) else fake_email(key, found, domain)
        if m.lastgroup == "card":
            return CARD_REMOVED
        if not patterns.is_phone(found) or patterns.allowed_phone(found):
            return found
        return fake_phone(key, found)

    return _SCRUB.sub(replace, text)


@dataclass(frozen=True)
class JsonSpec:
    keys: dict[str, str]  # lower-case key name -> fake_email|fake_name|fake_phone|scrub_text|null|remove
    scrub_strings: bool = True


def _leaf(key: Key, strategy: str, value: Any, domain: str) -> Any:
    if value is None or strategy == "null":
        return None
    if isinstance(value, dict):
        return {k: _leaf(key, strategy, v, domain) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaf(key, strategy, v, domain) for v in value]
    if isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else str(value)
    if strategy == "fake_email":
        return fake_email(key, text, domain)
    if strategy == "fake_name":
        return fake_name(key, text)
    if strategy == "fake_phone":
        return fake_phone(key, text)
    scrubbed = scrub_text(key, text, domain)  # scrub_text
    return value if scrubbed == text else scrubbed


def scrub_json(key: Key, value: Any, spec: JsonSpec, domain: str = patterns.DEFAULT_FAKE_DOMAIN) -> Any:
    """A copy of a decoded JSON value: listed keys (at any depth) by their strategy, other strings scrubbed."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            strategy = spec.keys.get(k.lower())
            name = scrub_text(key, k, domain) if spec.scrub_strings else k
            if strategy == "remove":
                continue
            out[name] = _leaf(key, strategy, v, domain) if strategy else scrub_json(key, v, spec, domain)
        return out
    if isinstance(value, list):
        return [scrub_json(key, v, spec, domain) for v in value]
    if not spec.scrub_strings or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return scrub_text(key, value, domain)
    text = str(value)  # a number: 4111111111111111 is a card number too
    scrubbed = scrub_text(key, text, domain)
    return value if scrubbed == text else scrubbed

"""Pseudonyms that hold: HMAC-SHA256 of an identifier, keyed by a secret the hospital keeps.

A salted hash with a public salt is reversible by anyone holding a patient list (hash every
candidate ID and compare); a keyed HMAC is not, as long as the key stays secret. The key is read
inside the package from the environment variable ``SPECTBONE_ID_KEY``, or from a key file whose
*path* the config names (``data.id_key_file``; the file's whole content, stripped, is the key), so
the key itself never appears on a command line, in the Snakemake log or in the config (and so
never in provenance.json). It is never logged or written; `PseudonymKey` does not show it in its
repr.

Only the embedded synthetic phantom may use `DEMO_KEY`, a fixed and *public* key: its identities
are fake, and a fixed key keeps the phantom cohort's IDs the same on every machine. Every output
that used it says so (`PseudonymKey.label`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from spectbone.util.runtime import error_reason

ENV_VAR = "SPECTBONE_ID_KEY"
MIN_KEY_CHARS = 16
DEMO_KEY = "spectbone-PUBLIC-demo-key-for-the-synthetic-phantom-only"
DEMO_LABEL = "public demo key (embedded synthetic phantom only; not a secret)"
SECRET_LABEL = f"secret key from ${ENV_VAR}"
ID_HEX_DIGITS = 12


class MissingKey(RuntimeError):
    """Real data and no usable secret key: refuse rather than write reversible pseudonyms."""


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes = field(repr=False)
    label: str

    def pseudonym(self, value: str | bytes, digits: int = ID_HEX_DIGITS) -> str:
        """First `digits` hex digits of HMAC-SHA256(key, value).

        Text is hashed as UTF-8; bytes as they are, so a file name that is not UTF-8 (Latin-1 from
        a Windows share, held by Python as surrogate escapes) is hashed from its real bytes
        (`os.fsencode`) instead of failing to encode."""
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()[:digits]

    @property
    def is_demo(self) -> bool:
        return self.label == DEMO_LABEL


def demo_key() -> PseudonymKey:
    """The fixed, public key of the embedded phantom (fake identities only)."""
    return PseudonymKey(DEMO_KEY.encode("utf-8"), DEMO_LABEL)


def secret_key(environ=None, key_file: str | os.PathLike | None = None) -> PseudonymKey:
    """The hospital's key: from `key_file` when given, else ``$SPECTBONE_ID_KEY``.

    `MissingKey` when there is none, it is too short, or it is the public demo key."""
    how_to = (f"set {ENV_VAR} to a long random secret that your site keeps (e.g. "
              f"`export {ENV_VAR}=$(python -c 'import secrets; print(secrets.token_hex(32))')`), or name a file "
              "holding it in the config (data.id_key_file); keep the same key for every run whose IDs must match")
    if key_file not in (None, ""):
        source, label = "the key file (data.id_key_file)", "secret key from the key file (data.id_key_file)"
        try:
            value = Path(key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = error_reason(exc)
            raise MissingKey(f"the key file named by data.id_key_file cannot be read ({reason})") from None
    else:
        source, label = ENV_VAR, SECRET_LABEL
        value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    if not value:
        raise MissingKey(f"real patient data needs a secret key for the pseudonymous IDs, and {source} "
                         f"{'is empty' if key_file else 'is not set'}: " + how_to)
    if len(value) < MIN_KEY_CHARS:
        raise MissingKey(f"{source} is too short ({len(value)} characters; at least {MIN_KEY_CHARS}): " + how_to)
    if value == DEMO_KEY:
        raise MissingKey(f"{source} holds the public demo key, which protects nothing: " + how_to)
    return PseudonymKey(value.encode("utf-8"), label)

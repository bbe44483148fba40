"""Keep passwords and private keys out of every message a user or a log can see.

Sources hold secrets (an SFTP password, a PEM key). Any text built from an exception passes
through :func:`redact` before it is shown in Discord, logged or stored in a task status.
"""

from __future__ import annotations

from typing import Iterable

MASK = "[redacted]"
_MIN_FRAGMENT = 8  # shorter key lines (PEM headers aside) are not secret on their own


def _variants(secret: str) -> set[str]:
    """The forms a secret can take inside text: as is, repr-escaped, and per PEM line."""
    forms = {secret, repr(secret)[1:-1], secret.encode("unicode_escape").decode("ascii")}
    if "\n" in secret:
        for line in secret.splitlines():
            line = line.strip()
            if len(line) >= _MIN_FRAGMENT and not line.startswith("-----"):
                forms.add(line)
    return {form for form in forms if form}


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Return ``text`` with every secret (and its escaped or per-line forms) masked.

    Longer forms are replaced first so a secret that contains another is masked whole.
    ``None`` and empty secrets are ignored, so callers can pass optional credentials as they are.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _variants(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text

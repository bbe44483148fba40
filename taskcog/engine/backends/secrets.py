"""Secrets that cross the broker are Fernet tokens, never clear text.

The owner gives the same key to the bot and to every worker (``TASKCOG_SECRET_KEY`` or a key
file). A worker without it refuses to start; a worker with another key cannot read a job's
secret and says so in one line, without the token or the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from cryptography.fernet import Fernet, InvalidToken

ENV_KEY = "TASKCOG_SECRET_KEY"


class SecretKeyError(RuntimeError):
    """No usable key, or a token this key cannot open; one line, never the key itself."""


class SecretBox:
    """Encrypts and decrypts small JSON secrets (an SFTP password or key) with Fernet."""

    def __init__(self, key: str | bytes) -> None:
        raw = key.strip().encode() if isinstance(key, str) else key.strip()
        try:
            self._fernet = Fernet(raw)
        except (ValueError, TypeError):
            raise SecretKeyError(
                "The secret key is not a Fernet key (32 url-safe base64 bytes); make one with "
                "`python -m taskcog.worker --new-key`."
            ) from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def load(cls, key_file: str | os.PathLike[str] | None = None) -> SecretBox:
        """The key from ``key_file`` if given, else from the environment; or a clear error."""
        if key_file is not None:
            try:
                return cls(Path(key_file).read_text())
            except OSError as exc:
                raise SecretKeyError(
                    f"Cannot read the secret key file {key_file}: {exc.strerror}."
                ) from None
        key = os.environ.get(ENV_KEY, "")
        if not key.strip():
            raise SecretKeyError(
                f"No secret key: set {ENV_KEY} or pass --key-file with the key the bot uses, "
                "so job secrets can be decrypted."
            )
        return cls(key)

    def encrypt(self, secret: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(dict(secret)).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise SecretKeyError(
                "A job's secret could not be decrypted: this worker's secret key differs "
                "from the bot's."
            ) from None
        if not isinstance(data, dict):
            raise SecretKeyError("A job's secret is not a JSON object.")
        return data

"""The Deadside.log line kinds the server-log feed understands, as regular expressions.

Every line after the header starts with Unreal's prefix ``[2025.05.17-02.01.30:123][ 45]``
(UTC time with milliseconds, then the frame counter). Player ids are EOS product user ids, written
``|<hex>`` (the ``|`` is optional here, and so is the verbosity word after ``LogOnline:``, which
newer server builds drop).
"""

from __future__ import annotations

import re

HEADER_RE = re.compile(
    r"^(?:\ufeff)?Log file open, (\d{2})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\s*$"
)
PREFIX_RE = re.compile(
    r"^\[(\d{4})\.(\d{2})\.(\d{2})-(\d{2})\.(\d{2})\.(\d{2}):(\d{3})\]\[\s*(\d+)\]"
)
_ID = r"\|?([0-9A-Za-z]{8,64})"

# (kind, pattern) in the order they are tried; the first match wins. Groups per kind:
REGISTER_RE = re.compile(
    rf"^LogOnline: (?:\w+: )?Player {_ID} successfully (registered|unregistered)\b"
)
CLOSE_RE = re.compile(rf"UChannel::Close\b.*\bUniqueId: EOS:{_ID}")
TIMEOUT_RE = re.compile(rf"Connection TIMED OUT\b.*\bUniqueId: EOS:{_ID}")
LOGIN_RE = re.compile(rf"\[ASFPSGameSession::OnLogin\] Login = (.*?), ID = {_ID}")
QUEUE_RE = re.compile(rf"^LogNet: Join request: .*?[?&]Name=([^?&]*)&eosid={_ID}")
KICK_RE = re.compile(r"\[ASFPSGameSession::KickPlayer\] Login = (.*?), Msg = (.*)$")
MISSION_RE = re.compile(r"^LogSFPS: Mission (\S+) switched to (\w+)")
AIRDROP_RE = re.compile(r"^LogSFPS: AirDrop switched to (\w+)")
GAMEPLAY_RE = re.compile(r"^LogSFPS: GameplayEvent (\S+) switched to (\w+)")
MAX_PLAYERS_RE = re.compile(r"\bMaxPlayers=(\d{1,4})\b", re.IGNORECASE)

# GameplayEvent names -> the kind an admin selects (anything else is a plain "event").
GAMEPLAY_KINDS = (
    ("HelicrashEvent", "helicrash"),
    ("RoamingTraderEvent", "trader"),
    ("ConvoyEvent", "convoy"),
)

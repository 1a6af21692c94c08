"""One secret detector for portability: what must never be copied into a config file or an export.

`looks_like_secret(name)` judges a name alone (an exported file's name); `looks_like_secret(name,
value)` a literal value under a name (an MCP env variable or header).

aios/observability/redaction.py keeps its own, narrower list of names (`SECRET_SUFFIXES`) on purpose:
it answers a different question, whose values to erase from every log line and span, where a name
caught by mistake erases ordinary text (`AIOS_CODEX_API_KEY_ENV=OPENAI_API_KEY` would blank the word
OPENAI_API_KEY everywhere). Here a name caught by mistake costs only a `${VAR}` reference, so the
words are broad.
"""

from __future__ import annotations

import fnmatch
import re

# Words that make a name secret wherever they appear ("GITHUB_TOKEN", "client_secret.json").
_STRONG_WORDS = ("token", "secret", "password", "passwd", "credential", "authorization")
# Words that make a name secret only as a whole word ("API_KEY", "apiKey", "X-Auth"; not "monkey", "author").
_WHOLE_WORDS = frozenset({"key", "keys", "auth", "apikey", "privatekey"})
# File names that hold secrets by convention.
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc",
)
_VALUE_PATTERNS = [
    re.compile(p)
    for p in (
        r"^sk-[A-Za-z0-9_\-]{16,}$",  # OpenAI / Anthropic (sk-ant-...)
        r"^(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}$",
        r"^github_pat_[A-Za-z0-9_]{20,}$",
        r"^glpat-[A-Za-z0-9_\-]{20,}$",
        r"^xox[abposr]-[A-Za-z0-9\-]{10,}$",  # Slack
        r"^AKIA[0-9A-Z]{16}$",  # AWS access key id
        r"^AIza[0-9A-Za-z_\-]{35}$",  # Google API key
        r"^(sk|rk|pk)_(live|test)_[A-Za-z0-9]{10,}$",  # Stripe
        r"^npm_[A-Za-z0-9]{36}$",
        r"^eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
        r"^(?i:bearer|basic|token)\s+\S{8,}$",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    )
]
_LONG_OPAQUE = re.compile(r"^[A-Za-z0-9_\-+/=]{32,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    if any(word in lowered for word in _STRONG_WORDS):
        return True
    if any(w.lower() in _WHOLE_WORDS for w in _WORD.findall(name)):
        return True
    return any(fnmatch.fnmatch(lowered, pattern) for pattern in SECRET_FILE_PATTERNS)


def _secret_value(value: str) -> bool:
    if any(p.search(value) for p in _VALUE_PATTERNS):
        return True
    if _LONG_OPAQUE.match(value) and not _UUID.match(value) and "/" not in value:
        return any(c.isalpha() for c in value) and any(c.isdigit() for c in value)
    return False


def looks_like_secret(name: str, value: str | None = None) -> bool:
    """True for a name, or a literal value under a name, that belongs in an environment variable.

    Without `value` only the name is judged (an exported file: `.env`, `*.pem`, `api_token.txt`).
    With `value`: empty values and `${VAR}` references are not literals, so never secrets; otherwise
    a secret-sounding name, or a value shaped like a known API key, a bearer credential, a JWT, a
    private key, or a long opaque string of letters and digits.
    """
    if value is None:
        return _secret_name(name)
    if not value or "${" in value:
        return False
    return _secret_name(name) or _secret_value(value)

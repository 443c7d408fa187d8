"""dotenv files, read and written in one place so that what innerloop writes it can read back.

The reader takes a launch's `envFile` (KEY=VALUE lines, `export ` prefix, # comments, '…' and
"…" quoting); the writer produces the env files of `innerloop intercept --env-file` and the
language server, quoted so that python-dotenv, VS Code's envFile and `set -a; . FILE` agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from innerloop.core.errors import UserError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DOUBLE_QUOTED_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse_env_file(text: str, name: str = "envFile") -> dict[str, str]:
    """A dotenv file: KEY=VALUE lines, `export ` prefix, # comments, '…' and "…" quoting."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_NAME.fullmatch(key):
            raise UserError(f"{name} line {number}: expected NAME=value")
        env[key] = _env_value(value.strip(), f"{name} line {number}")
    return env


def _env_value(value: str, where: str) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1) if quote == "'" else _closing_double_quote(value)
        if end < 0:
            raise UserError(f"{where}: unterminated {quote}quoted{quote} value")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise UserError(f"{where}: unexpected text after the quoted value")
        inner = value[1:end]
        if quote == "'":
            return inner
        return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTED_ESCAPES.get(m[1], m[0]), inner)
    comment = value.find(" #")
    return value if comment < 0 else value[:comment].rstrip()


def _closing_double_quote(value: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i
        i += 1
    return -1


_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+,-]*")


def dotenv_value(value: str) -> str:
    """Quote so that readers of dotenv files get the value back unchanged.

    Plain values stay bare; otherwise single quotes, which python-dotenv, VS Code's envFile and
    `set -a; . FILE` all take literally. Only a value holding a single quote or a control
    character gets double quotes with backslash escapes (python-dotenv and VS Code unescape
    them; a shell does not).
    """
    if value and _PLAIN.fullmatch(value):
        return value
    if "'" not in value and not any(ch < " " for ch in value):
        return f"'{value}'"
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def render_dotenv(env: Mapping[str, str], header: str = "") -> str:
    """A dotenv file, sorted by name; `header` becomes a comment line."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k}={dotenv_value(v)}" for k, v in sorted(env.items())]
    return "\n".join(lines) + "\n"

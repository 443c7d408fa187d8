"""dotenv files: what launch's envFile reads and what innerloop writes (innerloop.core.dotenv)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core import dotenv as r
from innerloop.core.dotenv import dotenv_value, render_dotenv
from innerloop.core.errors import UserError


def test_env_file_syntax() -> None:
    text = r"""# comment

PLAIN=value
export EXPORTED = spaced
EMPTY=
COMMENTED=abc # trailing
HASH=a#b
SINGLE='it # raw \n'
SINGLE2='raw \n' # ok
DOUBLE="line\nnext \"q\" \x"
DOTTED.NAME-1=x
"""
    assert r.parse_env_file(text) == {
        "PLAIN": "value",
        "EXPORTED": "spaced",
        "EMPTY": "",
        "COMMENTED": "abc",
        "HASH": "a#b",
        "SINGLE": "it # raw \\n",
        "SINGLE2": "raw \\n",
        "DOUBLE": 'line\nnext "q" \\x',
        "DOTTED.NAME-1": "x",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("NOEQUALS", "expected NAME=value"),
        ("1BAD=x", "expected NAME=value"),
        ("=x", "expected NAME=value"),
        ("A='open", "unterminated"),
        ('A="open \\"', "unterminated"),
        ('A="x" y', "unexpected text"),
    ],
)
def test_env_file_errors_name_the_line(line: str, problem: str) -> None:
    with pytest.raises(UserError, match=f"my.env line 2: {problem}"):
        r.parse_env_file(f"OK=1\n{line}", "my.env")


@pytest.mark.parametrize(
    "value, rendered",
    [
        ("plain", "plain"),
        ("a/b:c@d.e-f_g+h,i%", "a/b:c@d.e-f_g+h,i%"),
        ("", "''"),
        ("two words", "'two words'"),
        ("s3cr=t$(X)", "'s3cr=t$(X)'"),
        ("${HOME}", "'${HOME}'"),
        ('say "hi"', "'say \"hi\"'"),
        ("back\\slash", "'back\\slash'"),
        ("it's", '"it\'s"'),
        ("plain\n", '"plain\\n"'),  # a trailing newline is no plain value
        ("line1\nline2", '"line1\\nline2"'),
        ("tab\there\r", '"tab\\there\\r"'),
        ('it\'s "q" \\', '"it\'s \\"q\\" \\\\"'),
    ],
)
def test_dotenv_value(value: str, rendered: str) -> None:
    assert dotenv_value(value) == rendered


def test_render_dotenv() -> None:
    text = render_dotenv({"B": "two words", "A": "1"}, header="innerloop: deployment/orders\napp")
    assert text == "# innerloop: deployment/orders\n# app\nA=1\nB='two words'\n"
    assert render_dotenv({}) == "\n"


def _read_dotenv_line(line: str) -> tuple[str, str]:
    """A reader following python-dotenv's quoting rules, to check the round trip."""
    key, _, raw = line.partition("=")
    if raw.startswith("'"):
        return key, raw[1:-1]
    if raw.startswith('"'):
        out, i, body = [], 0, raw[1:-1]
        escapes = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
        while i < len(body):
            if body[i] == "\\":
                out.append(escapes[body[i + 1]])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return key, "".join(out)
    return key, raw


@given(
    st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=20))
)
def test_dotenv_round_trip(env: dict[str, str]) -> None:
    lines = render_dotenv(env).split("\n")  # file readers split on newlines only
    assert dict(_read_dotenv_line(line) for line in lines if line) == env

"""core.env_reads: the reads of environment variables the LSP hovers, warns about and completes."""

from __future__ import annotations

import pytest
from innerloop.core.env_reads import EnvRead, completing_name, env_reads

SOURCE = """\
import os
from os import environ, getenv

a = os.environ["A"]
b = os.environ.get("B", "x")
c = os.getenv("C")
d = environ["D"]
e = getenv("E")
typing = os.getenv("")
dynamic = os.getenv(name)
"""


def test_reads_named_by_a_literal_and_none_being_typed() -> None:
    assert env_reads(SOURCE) == [
        EnvRead("A", 3, 15, 18),
        EnvRead("B", 4, 19, 22),
        EnvRead("C", 5, 14, 17),
        EnvRead("D", 6, 12, 15),
        EnvRead("E", 7, 11, 14),
    ]


def test_source_that_does_not_parse_has_no_reads() -> None:
    assert env_reads("os.getenv(") == []


@pytest.mark.parametrize(("prefix", "typed"), [
    ('x = os.getenv("', ""),
    ('x = os.environ["DB_', "DB_"),
    ("x = os.environ.get('P", "P"),
    ('x = print("', None),
    ("x = os.getenv(", None),
])
def test_completing_name(prefix: str, typed: str | None) -> None:
    assert completing_name(prefix) == typed

"""A mirror claim's counters in CLAIM_LIST (docs/routing.md): carried when counted, absent
otherwise (an older agent's answer parses), never part of a claim's equality."""

from __future__ import annotations

import json

import pytest
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode
from innerloop.core.frames import ClaimEntry, encode_entries, parse_entries


def test_counters_round_trip_and_stay_out_of_equality() -> None:
    mirror = ClaimEntry(15401, "bob@desk:2", Mode.MIRROR, EVERYTHING, AppProtocol.HTTP1, None,
                        copied=7, dropped=3)
    route = ClaimEntry(15401, "alice@laptop:1", Mode.ROUTE, EVERYTHING, AppProtocol.AUTO, None)
    text = encode_entries((route, mirror))
    items = json.loads(text)
    assert "copied" not in items[0] and (items[1]["copied"], items[1]["dropped"]) == (7, 3)
    back = parse_entries(text)
    assert back == (route, mirror)
    assert (back[0].copied, back[1].copied, back[1].dropped) == (None, 7, 3)
    assert mirror == ClaimEntry(15401, "bob@desk:2", Mode.MIRROR, EVERYTHING, AppProtocol.HTTP1,
                                None)


@pytest.mark.parametrize("bad", [-1, "3", True, 1.5])
def test_a_bad_counter_is_a_bad_claim_list(bad: object) -> None:
    item = {"port": 1, "client": "c", "mode": "mirror", "filter": {}, "protocol": "auto",
            "paused": None, "copied": bad}
    with pytest.raises(ValueError, match="bad claim list"):
        parse_entries(json.dumps([item]))

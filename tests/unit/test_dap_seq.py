"""Sequence renumbering across the proxy (innerloop.core.dap_seq)."""

from __future__ import annotations

import pytest
from dap_messages import req, resp
from innerloop.core import dap_seq as r
from innerloop.core.dap_wire import output_event, response
from innerloop.core.errors import RemoteProtocolError


def test_seq_map_keeps_each_side_gap_free_and_maps_responses_back() -> None:
    seqs = r.SeqMap()
    C, A = r.Side.CLIENT, r.Side.ADAPTER
    # proxy answers initialize itself, then injects an output event
    assert seqs.message(C, response(req(1, "initialize")))["seq"] == 1
    assert seqs.message(C, output_event("x"))["seq"] == 2
    # the proxy asks the adapter itself: the answer comes back unchanged, marked as ours
    mine = seqs.request(A, req(0, "initialize"), origin_seq=None)
    assert mine["seq"] == 1
    answer, pending = seqs.response_from(A, resp(1, "initialize"))
    assert pending == r.Pending(None, "initialize") and answer == resp(1, "initialize")
    # a client request forwarded: renumbered; its response carries the client's seq again
    fwd = seqs.request(A, req(2, "launch"), origin_seq=2)
    assert fwd["seq"] == 2
    back, pending = seqs.response_from(A, resp(2, "launch"))
    assert (back["request_seq"], pending.origin_seq) == (2, 2)
    # stamped when it leaves: after an output event the proxy sent meanwhile
    assert seqs.message(C, output_event("y"))["seq"] == 3
    assert seqs.message(C, back)["seq"] == 4
    # a reverse request, and the client's answer mapped to the adapter's numbering
    rev = seqs.request(C, req(50, "runInTerminal"), origin_seq=50)
    assert rev["seq"] == 5
    answer, _ = seqs.response_from(C, resp(5, "runInTerminal"))
    assert answer["request_seq"] == 50
    assert seqs.message(A, answer)["seq"] == 3


def test_seq_map_rejects_answers_to_unknown_requests() -> None:
    with pytest.raises(RemoteProtocolError, match="never sent"):
        r.SeqMap().response_from(r.Side.ADAPTER, resp(9, "next"))

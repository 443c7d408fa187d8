from innerloop.core.client_id import make_client_id, pid_on_host


def test_a_name_made_here_gives_back_its_pid() -> None:
    assert pid_on_host(make_client_id("ann", "vm", 4242), "vm") == 4242


def test_an_at_sign_in_the_user_name_still_parses() -> None:
    assert pid_on_host(make_client_id("a@b", "vm", 7), "vm") == 7


def test_another_hosts_name_or_another_shape_gives_none() -> None:
    assert pid_on_host(make_client_id("ann", "laptop", 1), "vm") is None
    assert pid_on_host("editor (list)", "vm") is None
    assert pid_on_host("ann@vm", "vm") is None
    assert pid_on_host("ann@vm:12x", "vm") is None
    assert pid_on_host("vm:12", "vm") is None

"""The link model on its own: made-up times in, arrival times and states out (no loop)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.link.model import (
    NEVER,
    TRANSITIONS,
    DatagramPath,
    Direction,
    Flow,
    FlowEvent,
    FlowState,
    LinkSettings,
    NatTable,
    Pipe,
)
from chat.link.units import (
    format_duration,
    parse_duration,
    parse_indices,
    parse_rate,
    parse_share,
)

UP, DOWN = Direction.UP, Direction.DOWN


def test_units_parse_what_people_write() -> None:
    """Durations, rates, shares and drop lists in their usual spellings."""
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("1.5s") == 1.5 and parse_duration("30") == 30.0
    assert parse_duration("250us") == pytest.approx(250e-6) and parse_duration("2m") == 120
    assert parse_rate("10mbit") == 1_250_000 and parse_rate("2MB") == 2_000_000
    assert parse_share("1%") == 0.01 and parse_share("0.25") == 0.25
    assert parse_indices("3,7,10-12") == (3, 7, 10, 11, 12)
    assert format_duration(0.05) == "50ms" and format_duration(30) == "30s"
    for bad, parse in (("fast", parse_duration), ("5 parsecs", parse_rate),
                       ("200%", parse_share), ("0", parse_indices), ("4-2", parse_indices)):
        with pytest.raises(ValueError):
            parse(bad)


def test_first_bytes_wait_for_the_handshake_once() -> None:
    """A new flow's first bytes arrive after 1.5 RTT, the next ones after 0.5 RTT."""
    flow = Flow(LinkSettings(rtt=0.1), now=0.0)
    assert flow.receive(UP, 10, 0.0) == pytest.approx(0.15)
    assert flow.handshake_waited
    assert flow.receive(UP, 10, 0.2) == pytest.approx(0.25)
    assert flow.receive(DOWN, 10, 0.3) == pytest.approx(0.35)


def test_a_stream_keeps_its_order_under_jitter() -> None:
    """With jitter each chunk's delay varies, but no chunk overtakes an earlier one."""
    flow = Flow(LinkSettings(rtt=0.1, jitter=0.05, seed=7), now=0.0)
    dues = [flow.receive(UP, 100, 0.1 + i * 0.001) for i in range(200)]
    assert all(d is not None for d in dues)
    assert dues == sorted(dues)


def test_datagrams_may_be_reordered_by_jitter() -> None:
    """Datagrams travel on their own: jitter lets later ones overtake, and says so."""
    path = DatagramPath(LinkSettings(rtt=0.1, jitter=0.05, seed=7))
    dues = [path.send(DOWN, 100, i * 0.001) for i in range(200)]
    assert dues != sorted(dues)
    assert path.reordered[DOWN] > 0


def test_bandwidth_queues_bytes() -> None:
    """At 1000 B/s, 500 B then 500 B: the second half leaves a second after the first."""
    pipe = Pipe(LinkSettings(bandwidth=1000), random.Random(1), ordered=True)
    assert pipe.due(0.0, 500) == (pytest.approx(0.5), False)
    assert pipe.due(0.0, 500)[0] == pytest.approx(1.0)


def test_a_lost_segment_arrives_late_and_holds_up_the_rest() -> None:
    """TCP loss: the lost chunk comes a retransmission timeout late, the next behind it."""
    settings = LinkSettings(rtt=0.1, loss=1.0, seed=1)
    flow = Flow(settings, now=0.0)
    first = flow.receive(UP, 10, 1.0)
    assert first == pytest.approx(1.0 + 0.05 + settings.retransmit_after)
    assert flow.lost_segments == 1
    no_loss = Flow(LinkSettings(rtt=0.1), now=0.0)
    assert no_loss.receive(UP, 10, 1.0) == pytest.approx(1.05)


def test_nat_timeout_black_holes_an_idle_flow_both_ways() -> None:
    """After the NAT timeout nothing passes, FINs included, and nothing is reset."""
    flow = Flow(LinkSettings(nat_timeout=5.0), now=0.0)
    assert flow.receive(UP, 10, 1.0) is not None
    assert flow.receive(DOWN, 10, 5.9) is not None   # traffic either way keeps it alive
    assert flow.receive(UP, 10, 11.0) is None        # idle 5.1 s: forgotten
    assert flow.state is FlowState.BLACKHOLED and flow.blackholed_at == pytest.approx(10.9)
    assert flow.receive(DOWN, 10, 11.1) is None and flow.blackholed_bytes == 20
    assert flow.fin(UP, 12.0) is None and flow.first_fin is None
    assert flow.reset(DOWN, 13.0) is False  # the other side is not told
    assert flow.finished  # both sides gave up: the relay may forget it


def test_proxy_timeout_cuts_an_idle_flow() -> None:
    """The proxy's deadline moves with traffic; once it passes, the flow is cut."""
    flow = Flow(LinkSettings(proxy_timeout=3.0), now=0.0)
    assert flow.deadline() == 3.0
    flow.receive(UP, 1, 2.0)
    assert flow.expire(3.0) is False and flow.deadline() == 5.0
    assert flow.expire(5.0) is True and flow.state is FlowState.CUT
    assert flow.deadline() == NEVER and flow.receive(UP, 1, 5.1) is None


def test_fins_pass_in_order_and_the_first_closer_is_known() -> None:
    """A FIN arrives after the bytes before it; the first side to close is recorded."""
    flow = Flow(LinkSettings(rtt=0.1), now=0.0)
    data = flow.receive(DOWN, 100, 0.2)
    fin = flow.fin(DOWN, 0.2)
    assert data is not None and fin is not None and fin >= data
    assert flow.state is FlowState.SERVER_CLOSED and flow.first_fin is DOWN
    flow.fin(UP, 0.4)
    assert flow.state is FlowState.CLOSED and flow.finished


def test_transition_table_has_no_way_back_from_the_end() -> None:
    """Nothing leaves CLOSED, CUT, RESET or BLACKHOLED."""
    for (state, _event), _next in TRANSITIONS.items():
        assert state not in (FlowState.CLOSED, FlowState.CUT, FlowState.RESET,
                             FlowState.BLACKHOLED)
    assert TRANSITIONS[(FlowState.OPEN, FlowEvent.NAT_IDLE)] is FlowState.BLACKHOLED


def test_drop_list_loses_exactly_those_datagrams() -> None:
    """``drop`` numbers the datagrams towards the client from 1; the others pass."""
    path = DatagramPath(LinkSettings(drop=(2, 4, 5)))
    passed = [n for n in range(1, 9) if path.send(DOWN, 10, float(n)) is not None]
    assert passed == [1, 3, 6, 7, 8] and path.lost[DOWN] == 3
    assert path.send(UP, 10, 9.0) is not None  # the list is for one direction only


def test_nat_table_gives_an_expired_client_a_new_mapping() -> None:
    """A mapping idle past the timeout is gone: the server's datagrams to it vanish, and
    the client's next datagram gets a new one."""
    nat = NatTable(timeout=2.0)
    first, old = nat.outbound(("10.0.0.1", 5000), 0.0)
    assert old is None and nat.inbound(first.id, 1.5) is first
    second, old = nat.outbound(("10.0.0.1", 5000), 3.6)
    assert old is first and second.id != first.id
    assert nat.inbound(first.id, 3.7) is None and nat.created == 2


@given(st.lists(st.tuples(st.sampled_from([UP, DOWN]), st.integers(1, 2000),
                          st.floats(0, 0.05)), max_size=60),
       st.floats(0, 0.3), st.floats(0, 0.05))
def test_each_direction_of_a_flow_is_first_in_first_out(
        chunks: list[tuple[Direction, int, float]], rtt: float, jitter: float) -> None:
    """Whatever the chunks, delays and jitter, each direction delivers in sending order,
    never before it was sent plus half the RTT minus the jitter."""
    flow = Flow(LinkSettings(rtt=rtt, jitter=jitter, seed=3), now=0.0)
    now = 0.0
    last = {UP: -1.0, DOWN: -1.0}
    for direction, size, step in chunks:
        now += step
        due = flow.receive(direction, size, now)
        assert due is not None
        assert due >= last[direction]
        assert due >= now + max(0.0, rtt / 2 - jitter) - 1e-9
        last[direction] = due

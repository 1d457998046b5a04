"""The ports ragembed picks for a Weaviate server it starts (embedded mode, the test servers):
a server exits at start-up if any of its ports is taken, so the picks must never collide."""

from __future__ import annotations

import socket

from ragembed.stores.weaviate.connection import free_port_pairs


def test_port_pairs_are_distinct_and_free_with_their_successors():
    ports = free_port_pairs(20)
    taken = set(ports) | {p + 1 for p in ports}
    assert len(taken) == 40  # no port repeats, and no pair overlaps another
    with socket.socket() as a, socket.socket() as b:  # released: each pair binds now
        a.bind(("127.0.0.1", ports[0]))
        b.bind(("127.0.0.1", ports[0] + 1))


def test_a_taken_port_is_never_picked():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        for _ in range(20):
            ports = free_port_pairs(5)
            assert busy not in ports and busy not in {p + 1 for p in ports}

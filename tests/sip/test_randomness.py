"""The block-read random source behind branches, tags, Call-IDs and nonces."""
import os

import pytest

from labkit.sip import randomness
from labkit.sip.randomness import random_below, random_bytes, random_hex


def test_values_are_never_repeated_across_blocks():
    # 20k draws of 10 bytes span ~50 blocks: no byte is handed out twice, so no value repeats
    seen = {random_hex(10) for _ in range(20_000)}
    assert len(seen) == 20_000
    assert all(len(v) == 20 and int(v, 16) >= 0 for v in list(seen)[:100])


def test_a_draw_larger_than_a_block_is_served_whole():
    assert len(random_bytes(3 * 4096 + 1)) == 3 * 4096 + 1
    assert len(random_bytes(7)) == 7


def test_random_below_stays_in_range_and_covers_it():
    counts = [0] * 10
    for _ in range(50_000):
        counts[random_below(10)] += 1
    assert all(4_500 < c < 5_500 for c in counts), counts      # ~5000 each; ±10 % is > 14 sigma
    assert random_below(1) == 0
    assert all(0 <= random_below(2 ** 62) < 2 ** 62 for _ in range(1000))
    with pytest.raises(ValueError):
        random_below(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_block():
    random_hex(1)                                  # the parent has a block, part of it unused
    assert randomness._pool.block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # child: its next value, to the parent
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != random_hex(16)

"""Large tables: the range and payload strategies reach all of a 2048-vector
index (whole-table ranges, the upper half, the edges) and stay cheap to draw."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis.errors import InvalidArgument

from vfio_hil.strategies import bool_arrays, fd_arrays, invalid_ranges, requests, valid_ranges

N = 2048
FIND = settings(
    max_examples=3000, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
QUICK = settings(max_examples=100, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("the whole table", lambda r: r == (0, N)),
        ("a large block in the upper half", lambda r: r[0] >= N // 2 and r[1] >= N // 4),
        ("the upper half and more to the end", lambda r: r[0] <= N // 2 and sum(r) == N),
        ("the last vector alone", lambda r: r == (N - 1, 1)),
        ("a count past max_count not to the end", lambda r: r[1] > 8 and sum(r) < N),
    ],
)
def test_valid_ranges_of_a_2048_table_reach(what: str, condition: object) -> None:
    assert find(valid_ranges(N), condition, settings=FIND)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "wanted",
    [(N, 1), (0, N + 1)],  # start = N; count 2049, past the largest table
)
def test_invalid_ranges_of_a_2048_table_reach_the_edges(wanted: tuple[int, int]) -> None:
    assert find(invalid_ranges(N), lambda r: r == wanted, settings=FIND) == wanted


def test_a_smaller_table_is_also_asked_for_2048() -> None:
    assert find(invalid_ranges(64), lambda r: r == (0, N), settings=FIND) == (0, N)


@QUICK
@given(valid_ranges(N))
def test_every_valid_range_of_a_2048_table_fits_it(r: tuple[int, int]) -> None:
    start, count = r
    assert 0 <= start < N
    assert start + count <= N


@QUICK
@given(valid_ranges(N, large=False))
def test_large_false_keeps_counts_within_max_count(r: tuple[int, int]) -> None:
    assert r[1] <= 8


@QUICK
@given(valid_ranges(8))
def test_a_table_within_max_count_draws_what_it_always_did(r: tuple[int, int]) -> None:
    assert r[0] + r[1] <= 8


def test_a_full_table_enable_carries_an_entry_per_vector() -> None:
    step = find(
        requests({2: N}, validity="valid", kinds=["trigger_eventfd"]),
        lambda s: s.count == N,
        settings=FIND,
    )
    assert step.fds is not None
    assert len(step.fds) == N


def test_a_bad_entry_lands_far_up_a_long_array() -> None:
    found = find(
        fd_arrays(N),
        lambda a: (
            any(not isinstance(e, str) or not e.startswith("e") for e in a[N // 2 :])
            and all(e != "closed" and e != "notfd" for e in a[: N // 2])
        ),
        settings=FIND,
    )
    assert len(found) == N


@QUICK
@given(bool_arrays(N))
def test_long_bool_arrays_have_their_length(data: bytes) -> None:
    assert len(data) == N


def test_large_must_be_a_bool() -> None:
    with pytest.raises(InvalidArgument, match="large="):
        valid_ranges(N, large="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="large="):
        requests({2: N}, large=1)  # type: ignore[arg-type]

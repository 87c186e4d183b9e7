"""IrqSet packs exactly the bytes <linux/vfio.h> defines for struct vfio_irq_set."""

from __future__ import annotations

import struct

import pytest

from vfio_hil import EventFd, IrqIndex, IrqSet

NONE, BOOL, EVENTFD, MASK, UNMASK, TRIGGER = 1, 2, 4, 8, 16, 32


def header(packed: bytes) -> tuple[int, ...]:
    return struct.unpack_from("<5I", packed)


def test_trigger_is_data_none_with_argsz_of_the_header_alone() -> None:
    assert header(IrqSet.trigger(IrqIndex.MSIX, 3, 2).pack()) == (20, TRIGGER | NONE, 2, 3, 2)


def test_eventfds_pack_s32_fds_after_the_header() -> None:
    with EventFd() as efd:
        packed = IrqSet.eventfds(IrqIndex.MSIX, 1, [efd, -1, 7]).pack()
        assert header(packed) == (32, TRIGGER | EVENTFD, 2, 1, 3)
        assert struct.unpack_from("<3i", packed, 20) == (efd.fd, -1, 7)


def test_bools_pack_one_byte_per_subindex() -> None:
    packed = IrqSet.trigger_bool(IrqIndex.MSIX, 4, [1, 0, True]).pack()
    assert header(packed) == (23, TRIGGER | BOOL, 2, 4, 3)
    assert packed[20:] == b"\x01\x00\x01"


@pytest.mark.parametrize(
    ("request_", "flags", "count"),
    [
        (IrqSet.mask(IrqIndex.INTX), MASK | NONE, 1),
        (IrqSet.unmask(IrqIndex.INTX), UNMASK | NONE, 1),
        (IrqSet.mask_bool(IrqIndex.INTX, 0, [1]), MASK | BOOL, 1),
        (IrqSet.unmask_bool(IrqIndex.INTX, 0, [0]), UNMASK | BOOL, 1),
        (IrqSet.unmask_eventfd(IrqIndex.INTX, -1), UNMASK | EVENTFD, 1),
        (IrqSet.disable(IrqIndex.MSI), TRIGGER | NONE, 0),
    ],
)
def test_builders_choose_the_documented_flags(request_: IrqSet, flags: int, count: int) -> None:
    assert (request_.flags, request_.count) == (flags, count)


def test_raw_keeps_malformed_fields_and_an_explicit_argsz() -> None:
    packed = IrqSet.raw(0xFFFF, 9, 0xFFFFFFFF, 2, b"\x01", argsz=7).pack()
    assert header(packed) == (7, 0xFFFF, 9, 0xFFFFFFFF, 2)
    assert packed[20:] == b"\x01"


def test_short_data_is_zero_padded_up_to_what_argsz_lets_the_kernel_read() -> None:
    # argsz claims two s32 fds but only one is given: the kernel reads 8 bytes.
    packed = IrqSet.raw(TRIGGER | EVENTFD, 2, 0, 2, struct.pack("<i", 5), argsz=28).pack()
    assert len(packed) == 28
    assert struct.unpack_from("<2i", packed, 20) == (5, 0)


def test_no_padding_when_argsz_is_too_short_for_the_kernel_to_read() -> None:
    packed = IrqSet.raw(TRIGGER | EVENTFD, 2, 0, 2, b"", argsz=20).pack()
    assert len(packed) == 20


def test_pack_is_built_once() -> None:
    request = IrqSet.trigger(IrqIndex.MSIX, 0, 1)
    assert request.pack() is request.pack()


def test_repr_reads_like_the_request() -> None:
    text = repr(IrqSet.trigger_bool(IrqIndex.MSIX, 3, [1, 0]))
    assert text == "SET_IRQS(index=MSIX, DATA_BOOL|ACTION_TRIGGER, start=3, count=2, data=[1, 0])"


def test_requests_are_immutable_and_comparable() -> None:
    request = IrqSet.trigger(IrqIndex.INTX)
    assert request == IrqSet.trigger(IrqIndex.INTX)
    with pytest.raises(AttributeError):
        request.count = 2  # type: ignore[misc]


def test_the_widest_values_each_field_holds_are_sent_exactly() -> None:
    top = 2**32 - 1
    assert header(IrqSet.trigger(IrqIndex.MSIX, top, top).pack())[3:] == (top, top)
    packed = IrqSet.eventfds(IrqIndex.MSIX, 0, [-(2**31), 2**31 - 1]).pack()
    assert struct.unpack_from("<2i", packed, 20) == (-(2**31), 2**31 - 1)
    assert IrqSet.trigger_bool(IrqIndex.MSIX, 0, [255, True, False]).pack()[20:] == b"\xff\x01\x00"
    assert header(IrqSet.raw(top, top, top, top, b"", argsz=top).pack()) == (top,) * 5


def test_an_index_name_is_the_index() -> None:
    assert IrqSet.disable("req") == IrqSet.disable(IrqIndex.REQ)
    assert header(IrqSet.unmask("INTX").pack())[2] == 0
    assert IrqSet.raw(0x21, "MSI", 0, 1).index == 1

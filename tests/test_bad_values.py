"""Every input either works or fails clearly: requests, markers, profiles.

A value a request field cannot hold is refused where it is given, naming the
field, the value and the range, instead of reaching the kernel wrapped; a bad
marker argument is one line naming the test; every documented hypothesis
profile name loads from the command line.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from vfio_hil import EventFd, IrqIndex, IrqSet, SimDevice

pytest_plugins = ["pytester"]

U32 = (0, 2**32 - 1)
S32 = (-(2**31), 2**31 - 1)
BYTE = (0, 255)
NAMES = {"IrqSet": IrqSet, "MSIX": IrqIndex.MSIX, "INTX": IrqIndex.INTX, "TRIGGER_NONE": 0x21}


def call(source: str) -> object:
    """Run a request as a user would write it."""
    return eval(source, dict(NAMES))


# (what the user wrote, the field the error must name, the bad value, its range)
TOO_BIG_OR_SMALL = [
    ("IrqSet.trigger(MSIX, 0, 2**40)", "count", 2**40, U32),  # was sent as count 0
    ("IrqSet.trigger(MSIX, -1)", "start", -1, U32),
    ("IrqSet.eventfds(2**40, 0, [3])", "index", 2**40, U32),  # was INTx
    ("IrqSet.eventfds(MSIX, 0, [3, 2**31])", "fds[1]", 2**31, S32),
    ("IrqSet.eventfds(MSIX, 0, [-(2**31) - 1])", "fds[0]", -(2**31) - 1, S32),
    ("IrqSet.trigger_bool(MSIX, 0, [1, 256])", "bools[1]", 256, BYTE),  # was 0
    ("IrqSet.mask_bool(INTX, 0, [-1])", "bools[0]", -1, BYTE),
    ("IrqSet.unmask_bool(INTX, 0, [1000])", "bools[0]", 1000, BYTE),
    ("IrqSet.unmask_eventfd(INTX, 2**31)", "fd", 2**31, S32),
    ("IrqSet.mask(INTX, 0, 2**32)", "count", 2**32, U32),
    ("IrqSet.unmask(INTX, 2**32)", "start", 2**32, U32),
    ("IrqSet.disable(-1)", "index", -1, U32),
    ("IrqSet.raw(2**32, MSIX, 0, 1)", "flags", 2**32, U32),
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0, 2**32)", "count", 2**32, U32),
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0, 0, argsz=-1)", "argsz", -1, U32),
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0, 2, [1, 256])", "data[1]", 256, BYTE),
]


@pytest.mark.parametrize(("source", "field", "value", "bounds"), TOO_BIG_OR_SMALL)
def test_a_value_that_does_not_fit_its_field_is_refused_naming_it(
    source: str, field: str, value: int, bounds: tuple[int, int]
) -> None:
    with pytest.raises(ValueError, match=re.escape(field)) as caught:
        call(source)
    message = str(caught.value)
    assert message.startswith(field + " "), message
    for part in (str(value), str(bounds[0]), str(bounds[1])):
        assert part in message, message


# (what the user wrote, the field the error must name, the type it must name)
WRONG_TYPES = [
    ("IrqSet.trigger(MSIX, '0')", "start", "str"),
    ("IrqSet.trigger(MSIX, 0, 1.0)", "count", "float"),
    ("IrqSet.trigger(MSIX, None)", "start", "None"),
    ("IrqSet.trigger(True)", "index", "bool"),
    ("IrqSet.eventfds(MSIX, 0, ['e3'])", "fds[0]", "str"),
    ("IrqSet.eventfds(MSIX, 0, [3, True])", "fds[1]", "bool"),  # True is stdout's fd
    ("IrqSet.unmask_eventfd(INTX, None)", "fd", "None"),
    ("IrqSet.trigger_bool(MSIX, 0, [0.5])", "bools[0]", "float"),
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0, 1, 'ab')", "data", "str"),
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0, 1, 5)", "data", "int"),  # not five zero bytes
    ("IrqSet.raw(TRIGGER_NONE, MSIX, 0.0, 1)", "start", "float"),
]


@pytest.mark.parametrize(("source", "field", "kind"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_refused_naming_field_and_type(
    source: str, field: str, kind: str
) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        call(source)
    message = str(caught.value)
    assert message.startswith(field + " "), message
    assert kind in message, message


def test_a_refused_request_never_reaches_the_device(
    make_eventfds: Callable[[int], list[EventFd]],
) -> None:
    # 2**40 would wrap to count 0, which tears MSI-X down; refused, it stays up.
    fds = make_eventfds(2)
    with SimDevice.virtio_msix(vectors=8) as dev:
        dev.set_irqs(IrqSet.eventfds(IrqIndex.MSIX, 0, fds))
        with pytest.raises(ValueError, match="count"):
            dev.set_irqs(IrqSet.trigger(IrqIndex.MSIX, 0, 2**40))
        dev.set_irqs(IrqSet.trigger(IrqIndex.MSIX, 0, 2))
        assert [f.read() for f in fds] == [1, 1]


@pytest.mark.parametrize("name", ["MSIX", "msix", "MsiX"])
def test_an_index_may_be_named_in_any_case(name: str) -> None:
    assert IrqSet.trigger(name, 1, 2) == IrqSet.trigger(IrqIndex.MSIX, 1, 2)
    assert IrqSet.eventfds(name, 0, [-1]).pack()[8:12] == (2).to_bytes(4, "little")


def test_an_unknown_index_name_says_which_names_there_are() -> None:
    with pytest.raises(ValueError, match="MSIZ") as caught:
        IrqSet.trigger("MSIZ")
    assert all(index.name in str(caught.value) for index in IrqIndex)


def test_an_unknown_index_number_is_sent_for_the_kernel_to_refuse() -> None:
    # Numbers past REQ are how the kernel's index check is tested: kept.
    assert IrqSet.trigger(7, 0, 0).pack()[8:12] == (7).to_bytes(4, "little")


# --- markers ------------------------------------------------------------------


def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_marked=textwrap.dedent(source))
    return pytester.runpytest("-p", "no:cacheprovider", "-rs")


def _assert_one_clear_line(result: pytest.RunResult, *parts: str) -> None:
    """Failed, with a line naming every part, and no traceback from vfio-hil."""
    output = result.stdout.str() + result.stderr.str()
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.INTERNAL_ERROR), output
    assert "INTERNALERROR" not in output, output
    assert "Traceback" not in output, output
    assert "vfio_hil/" not in output, output  # no frame from inside the plugin
    assert any(all(p in line for p in parts) for line in output.splitlines()), output


@pytest.mark.parametrize("name", ["MSIX", "msix"])
def test_vfio_irq_takes_an_index_name(pytester: pytest.Pytester, name: str) -> None:
    result = _run(
        pytester,
        f"""
        import pytest

        @pytest.mark.vfio_irq({name!r}, min_count=4)
        def test_needs_msix(vfio_device):
            pass
        """,
    )
    # The default targets: virtio_msix has 64 vectors, edu none.
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sim:edu*: needs MSIX count >= 4; it has 0*"])


@pytest.mark.parametrize(
    ("marker", "parts"),
    [
        ("vfio_irq('MSIZ')", ["test_marked.py::test_x", "vfio_irq", "'MSIZ'", "MSIX"]),
        ("vfio_irq(2, count=3)", ["test_marked.py::test_x", "vfio_irq", "'count'", "min_count"]),
        ("vfio_irq(2, min_count='4')", ["test_marked.py::test_x", "min_count", "str"]),
        ("vfio_irq()", ["test_marked.py::test_x", "vfio_irq", "index"]),
        ("vfio_kernel('banana')", ["test_marked.py::test_x", "vfio_kernel", "banana", ">="]),
        ("vfio_kernel(6.5)", ["test_marked.py::test_x", "vfio_kernel", "6.5", "string"]),
        ("vfio_kernel('>=6.5', '<7')", ["test_marked.py::test_x", "vfio_kernel", "range"]),
        # vfio_stimulus(False) was read as "needs a stimulus": the opposite.
        ("vfio_stimulus(False)", ["test_marked.py::test_x", "vfio_stimulus", "no arguments"]),
    ],
)
def test_a_bad_marker_argument_is_one_line_naming_the_test(
    pytester: pytest.Pytester, marker: str, parts: list[str]
) -> None:
    result = _run(
        pytester,
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_x(vfio_device):
            pass
        """,
    )
    _assert_one_clear_line(result, *parts)
    result.assert_outcomes(passed=0, errors=1)


# --- hypothesis profiles ---------------------------------------------------------

SHOW_PROFILE = """
import json
from hypothesis import settings
from vfio_hil._fuzz.profiles import register_profiles

def test_show():
    before = settings.default
    register_profiles()  # as importing vfio_hil.stateful does: must change nothing
    assert settings.default is before
    s = settings.default
    print("PROFILE", json.dumps([settings.get_current_profile_name(), s.max_examples,
        s.stateful_step_count, s.derandomize, s.deadline is None]))
"""


def _profile(pytester: pytest.Pytester, *args: str) -> list[Any]:
    pytester.makepyfile(test_show=SHOW_PROFILE)
    # A subprocess: a loaded profile is global to hypothesis in its process.
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK, output
    assert "INTERNALERROR" not in output, output
    shown = re.search(r"PROFILE (\[.*\])", result.stdout.str())
    assert shown, output
    values: list[Any] = json.loads(shown[1])
    return values


@pytest.mark.parametrize(
    ("name", "max_examples", "steps", "derandomize"),
    # docs/fuzzing.md, "Profiles"
    [
        ("vfio-hil-ci", 500, 40, True),
        ("vfio-hil-dev", 1000, 40, False),
        ("vfio-hil-fuzz", 100_000, 80, False),
        ("dev", 1000, 40, False),
        ("fuzz", 100_000, 80, False),
    ],
)
def test_every_documented_profile_loads_from_the_command_line(
    pytester: pytest.Pytester, name: str, max_examples: int, steps: int, derandomize: bool
) -> None:
    shown = _profile(pytester, f"--hypothesis-profile={name}")
    assert shown == [name, max_examples, steps, derandomize, True]


def test_plain_ci_stays_hypothesis_own(pytester: pytest.Pytester) -> None:
    with_plugin = _profile(pytester, "--hypothesis-profile=ci")
    without = _profile(pytester, "--hypothesis-profile=ci", "-p", "no:vfio_hil")
    assert with_plugin == without


def test_registering_the_profiles_loads_none(pytester: pytest.Pytester) -> None:
    name = _profile(pytester)[0]
    assert not name.startswith("vfio-hil"), name
    assert name not in ("dev", "fuzz"), name


@pytest.mark.parametrize("n", ["-1", "2.5", "'3'", "10**6"])
def test_the_eventfds_fixture_refuses_a_count_that_is_no_count(
    pytester: pytest.Pytester, n: str
) -> None:
    # eventfds(-1) was an empty list, a test that asserted nothing.
    pytester.makepyfile(test_e=f"def test_e(eventfds):\n    eventfds({n})\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*eventfds(n): n must be a whole number in 0..1024*"])


def test_vfio_require_with_no_able_target_is_one_line_for_a_scenario(
    pytester: pytest.Pytester,
) -> None:
    # Was the line buried in ~1000 lines of pytest's own traceback.
    pytester.makefile(
        ".yaml",
        needs_msix="vfio-hil: scenario/1\nrequires: {msix: 2}\nsteps:\n  - reset\n",
    )
    result = pytester.runpytest_subprocess(
        "--vfio-sim", "edu", "--vfio-require", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no target can run this scenario (--vfio-require): *needs MSIX count >= 2; it has 0*"]
    )
    assert "_pytest" not in result.stdout.str()

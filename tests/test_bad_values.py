"""Every input either works or fails clearly: requests, markers, profiles, the API.

A value a request field cannot hold is refused where it is given, naming the
field, the value and the range, instead of reaching the kernel wrapped; a bad
marker argument is one line naming the test; every documented hypothesis
profile name loads from the command line; an argument of the wrong kind to
the Python API (SimDevice, EventFd, the assertions, open_device,
make_machine) is a TypeError or ValueError naming it and its value, raised
before anything changes.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from vfio_hil import (
    EventFd,
    IrqIndex,
    IrqSet,
    PciFunction,
    SimDevice,
    VfioHilError,
    assert_quiet,
    assert_signaled,
    expect_errno,
    open_device,
    read_counters,
)
from vfio_hil._exit import Exit
from vfio_hil._fuzz.profiles import fuzz_database
from vfio_hil.cli import main as vfio_hil_main
from vfio_hil.stateful import make_machine

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


# --- the Python API: every argument of the wrong kind is named -------------------------------
# A wrong argument used to surface as an internal exception ("'int' object is
# not iterable", AttributeError, OverflowError) or, worse, was taken: "false"
# is a true pcie, 8.5 MSI-X vectors were reported by GET_IRQ_INFO, a raise of
# 2**32 raised nothing.


def _refused(source: str, env: dict[str, object]) -> str:
    """The message of the TypeError/ValueError that ``source`` must raise."""
    with pytest.raises((TypeError, ValueError)) as caught:
        exec(source, env)
    return str(caught.value)


API_NAMES = {
    "IrqSet": IrqSet,
    "MSIX": IrqIndex.MSIX,
    "SimDevice": SimDevice,
    "PciFunction": PciFunction,
    "EventFd": EventFd,
    "open_device": open_device,
}

# (what the user wrote, the parameter the message must name, the bad value as shown)
NOT_A_SEQUENCE = [
    ("IrqSet.eventfds(MSIX, 0, 5)", "fds", "int 5"),
    ("IrqSet.trigger_bool(MSIX, 0, None)", "bools", "None"),
    ("IrqSet.mask_bool(0, 0, 1)", "bools", "int 1"),
    ("IrqSet(0x24, MSIX, 0, 1, data=None)", "data", "None"),
]


@pytest.mark.parametrize(("source", "name", "shown"), NOT_A_SEQUENCE)
def test_a_payload_that_is_no_sequence_names_its_parameter(
    source: str, name: str, shown: str
) -> None:
    message = _refused(source, dict(API_NAMES))
    assert message.startswith(f"{name} must be "), message
    assert shown in message, message


HARDWARE = [
    ("SimDevice.virtio_msix(vectors='8')", "msix_vectors", "'8'"),
    ("SimDevice.virtio_msix(vectors=8.5)", "msix_vectors", "8.5"),  # was GET_IRQ_INFO count=8.5
    ("PciFunction(msix_vectors=None)", "msix_vectors", "None"),
    ("SimDevice(msi_vectors='1')", "msi_vectors", "'1'"),  # was shown as msi_vectors=1
    ("SimDevice(host_vectors='x')", "host_vectors", "'x'"),
    ("SimDevice(pcie='false')", "pcie", "'false'"),  # was a PCIe function
    ("SimDevice.edu(can_reset=0)", "can_reset", "int 0"),
]


@pytest.mark.parametrize(("source", "name", "shown"), HARDWARE)
def test_a_hardware_field_of_the_wrong_type_is_refused_naming_it(
    source: str, name: str, shown: str
) -> None:
    message = _refused(source, dict(API_NAMES))
    assert message.startswith(f"{name} must be "), message
    assert shown in message, message


SIM_OPTIONS = [
    ("SimDevice.edu(msi=2)", ["unknown keyword 'msi'", "msi_vectors"]),  # said "not both"
    ("SimDevice(function='edu')", ["function must be a PciFunction", "'edu'"]),
    ("SimDevice(model=dict)", ["model must be VfioPciModel", "dict"]),
    ("SimDevice(edu='yes')", ["edu must be True or False", "'yes'"]),
    ("SimDevice(vendor=0x10000)", ["vendor 65536", "0..65535"]),
]


@pytest.mark.parametrize(("source", "parts"), SIM_OPTIONS)
def test_a_bad_simdevice_option_is_refused_naming_it(source: str, parts: list[str]) -> None:
    message = _refused(source, dict(API_NAMES))
    assert all(part in message for part in parts), message


SIM_CALLS = [
    ("dev.set_irqs('trigger')", "set_irqs takes an IrqSet", "'trigger'"),
    ("dev.set_irqs(IrqSet.trigger(MSIX).pack())", "set_irqs takes an IrqSet", "bytes"),
    ("dev.irq_info('MSIX')", "index must be an integer", "'MSIX'"),
    ("dev.read_region('7', 0, 4)", "index must be an integer", "'7'"),
    ("dev.read_region(7, 0, 4.0)", "size must be an integer", "4.0"),
    ("dev.write_region(7, 4, 'ab')", "data must be bytes", "'ab'"),
    ("dev.stimulus.raise_irq(2**32)", "value 4294967296", "0..4294967295"),  # raised nothing
    ("dev.stimulus.raise_irq(-1)", "value -1", "0..4294967295"),  # was 0xffffffff
    ("dev.stimulus.clear_irq(None)", "value must be an integer", "None"),
]


@pytest.mark.parametrize(("source", "name", "shown"), SIM_CALLS)
def test_a_bad_device_call_is_refused_and_changes_nothing(
    source: str, name: str, shown: str
) -> None:
    with SimDevice.edu() as dev:
        command = dev.read_region(7, 4, 2)  # the stimulus would turn memory + bus master on
        message = _refused(source, {**API_NAMES, "dev": dev})
        assert message.startswith(name), message
        assert shown in message, message
        assert dev.read_region(7, 4, 2) == command
        assert dev.stimulus is not None
        assert dev.stimulus.status() == 0


EVENTFDS = [
    ("EventFd(2**64)", "initval 18446744073709551616", "0..4294967295"),  # was OverflowError
    ("EventFd(semaphore='no')", "semaphore must be True or False", "'no'"),
    ("e.wait(float('inf'))", "timeout inf", "s"),
    ("e.wait(float('nan'))", "timeout nan", "s"),
    ("e.wait(1e12)", "timeout 1000000000000.0", "2147484 s"),
    ("e.wait('1')", "timeout must be a number of seconds", "'1'"),  # was 1000 ones
    ("e.write(2**64)", "value 18446744073709551616", "0..18446744073709551615"),
]


@pytest.mark.parametrize(("source", "name", "shown"), EVENTFDS)
def test_a_bad_eventfd_argument_is_refused_naming_it(source: str, name: str, shown: str) -> None:
    with EventFd() as e:
        message = _refused(source, {**API_NAMES, "e": e})
    assert message.startswith(name), message
    assert shown in message, message


def test_reading_a_closed_eventfd_says_it_is_closed() -> None:
    e = EventFd()
    e.close()
    with pytest.raises(ValueError, match=r"^EventFd is closed$"):  # was "negative integer (-1)"
        e.read()


@pytest.mark.parametrize(
    ("expected", "parts"),
    [
        ({5: 1}, ["eventfd 5", "0..1"]),  # was dropped: the assertion passed
        ({-1: 1}, ["eventfd -1", "0..1"]),
        ({"0": 1}, ["key '0'", "int"]),  # never matched: silently ignored
        ([1, 0], ["expected must be a mapping", "[1, 0]"]),
        ({0: "1"}, ["expected[0] must be an integer", "'1'"]),
    ],
)
def test_assert_signaled_refuses_an_expectation_naming_no_eventfd_before_reading(
    expected: object, parts: list[str]
) -> None:
    with EventFd() as e0, EventFd() as e1:
        e0.write(1)
        with pytest.raises((TypeError, ValueError)) as caught:
            assert_signaled([e0, e1], expected)  # type: ignore[arg-type]
        assert all(part in str(caught.value) for part in parts), caught.value
        assert e0.read() == 1  # not consumed by the refused assertion


@pytest.mark.parametrize("call", [read_counters, assert_quiet])
def test_a_list_of_fd_numbers_is_refused_naming_the_first_before_reading(
    call: Callable[[list[object]], object],
) -> None:
    with EventFd() as e:
        e.write(2)
        with pytest.raises(TypeError, match=r"^fds\[1\] must be an EventFd, not int 3$"):
            call([e, 3])
        assert e.read() == 2


@pytest.mark.parametrize("code", ["EINVAL", None, 22.0])
def test_expect_errno_takes_a_number_and_says_so_before_the_block(code: object) -> None:
    ran = []
    manager = expect_errno(code)  # type: ignore[arg-type]  # checked at enter, as with does
    with pytest.raises(TypeError, match=r"errno\.EINVAL") as caught, manager:
        ran.append(True)
    assert repr(code) in str(caught.value)
    assert ran == []  # was "expected EINVAL, got EINVAL" after running it


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("open_device(None)", "address must be a PCI address as a str"),
        ("open_device(0x0300)", "not int 768"),
        ("open_device('0000:00:1f.7', paths='/sys')", "paths must be a HostPaths"),
    ],
)
def test_open_device_names_an_argument_of_the_wrong_type(source: str, shown: str) -> None:
    assert shown in _refused(source, dict(API_NAMES))


@pytest.mark.parametrize(
    ("kwargs", "parts"),
    [
        ({"settings": 5}, ["settings must be a profile name", "ci, dev, fuzz", "int 5"]),
        ({"settings": None}, ["settings must be", "None"]),
        ({"profile": 6}, ["profile must be a KernelProfile", "int 6"]),
        ({"settle_s": -1}, ["settle_s", "-1"]),  # was accepted
        ({"settle_s": float("nan")}, ["settle_s", "nan"]),
        ({"out_dir": 5}, ["out_dir must be a directory path", "int 5"]),
        ({"name": 5}, ["name must be a str", "int 5"]),
        ({"progress": "yes"}, ["progress must be callable", "'yes'"]),  # failed 10 s in
        ({"export": "no"}, ["export must be True or False", "'no'"]),
    ],
)
def test_make_machine_names_a_bad_argument_at_once(
    kwargs: dict[str, Any], parts: list[str]
) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        make_machine(SimDevice.edu, **kwargs)
    assert all(part in str(caught.value) for part in parts), caught.value


def test_a_device_factory_that_returns_no_device_is_named_at_the_first_example() -> None:
    machine = make_machine(lambda: 5, export=False)
    one = settings(machine.TestCase.settings, max_examples=1)
    with pytest.raises(TypeError, match=r"open_kernel must return a Device.* returned int 5"):
        run_state_machine_as_test(machine, settings=one)


@pytest.mark.parametrize("profile", ["dev", "ci"])
def test_fuzz_with_an_unwritable_example_database_is_one_line_before_any_run(
    profile: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dev's database could not be created: every failure found would be lost.
    monkeypatch.setenv("VFIO_HIL_FUZZ_DB", "/proc/nope")
    code = vfio_hil_main(["fuzz", "--sim", "edu", "--profile", profile, "--max-examples", "2"])
    out, err = capsys.readouterr()
    assert code == Exit.USAGE
    assert "examples" not in out  # no run was reported: none started
    assert len(err.strip().splitlines()) == 1, err
    assert "VFIO_HIL_FUZZ_DB /proc/nope:" in err


def test_the_example_database_is_probed_only_when_a_run_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registering the profiles happens at import: it must touch no disk.
    monkeypatch.setenv("VFIO_HIL_FUZZ_DB", "/proc/nope")
    assert fuzz_database(probe=False) is not None
    with pytest.raises(VfioHilError, match=r"^VFIO_HIL_FUZZ_DB /proc/nope: "):
        fuzz_database()
    monkeypatch.setenv("VFIO_HIL_FUZZ_DB", str(tmp_path / "db"))
    assert fuzz_database() is not None
    assert list(tmp_path.iterdir()) == []  # probed, then left as it was

"""vfio-hil's pytest plugin: targets, fixtures, markers and the report header.

Registered through the ``pytest11`` entry point, so installing vfio-hil makes
the fixtures available with no conftest.  Importing it is cheap: devices are
opened in hooks and fixtures, not at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vfio_hil._plugin import markers
from vfio_hil._plugin.options import add_options, target_specs
from vfio_hil._plugin.state import TARGETS, target_infos
from vfio_hil._plugin.targets import TargetInfo

BIND = pytest.StashKey[object]()
_DEVICE_FIXTURES = {"vfio_device", "vfio_model", "vfio_stimulus", "vfio_target"}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    markers.register(config)
    from vfio_hil._errors import VfioHilError
    from vfio_hil._targets import parse_target

    where = "the target options"
    try:
        specs, where = target_specs(config)
        config.stash[TARGETS] = [parse_target(s) for s in specs]
        if config.getoption("vfio_bind") and not hasattr(config, "workerinput"):
            config.stash[BIND] = _bind(config)
        from vfio_hil._plugin.coverage import register

        register(config)
        if config.getoption("vfio_selftests"):
            from vfio_hil._selftests.collect import configure

            where = "--vfio-selftests"
            configure(config, config.getoption("vfio_selftests_dir"), config.stash[TARGETS])
    except VfioHilError as err:
        hint = f"\n  hint: {err.hint}" if err.hint else ""
        raise pytest.UsageError(f"{err.message} (from {where}){hint}") from None


def _bind(config: pytest.Config) -> object:
    """--vfio-bind: give back what a crashed run left bound, then bind ours."""
    from vfio_hil._errors import VfioHilError
    from vfio_hil._host.bind import bind_to_vfio, restore_stale

    addresses = [t.spec for t in config.stash[TARGETS] if not t.simulated]
    if not addresses:
        raise VfioHilError("--vfio-bind has nothing to bind", "give the devices with --vfio-device")
    for address in restore_stale():
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"vfio-hil: gave {address} back to its driver (left by a crashed run)"
            ),
            stacklevel=2,
        )
    return bind_to_vfio(addresses)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(BIND, None)
    if session is not None:
        from vfio_hil._host.bind import BindSession

        assert isinstance(session, BindSession)
        session.restore()  # every device fixture has closed by now


def _infos(config: pytest.Config) -> dict[str, TargetInfo]:
    return target_infos(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files: YAML with the top-level key ``vfio-hil: scenario/1``."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from vfio_hil._plugin.scenarios import collect_file

    return collect_file(file_path, parent)


def _uses_targets(items: list[pytest.Item]) -> bool:
    from vfio_hil._plugin.scenarios import ScenarioItem

    def uses(item: pytest.Item) -> bool:
        fixtures = getattr(item, "fixturenames", ())
        return isinstance(item, ScenarioItem) or bool(_DEVICE_FIXTURES & set(fixtures))

    return any(uses(item) for item in items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A real device that cannot be opened at all stops the run before any
    test, in one line (not one error per test): a typo'd address, a device
    not bound to vfio-pci, a group without permission."""
    if config.option.collectonly or not _uses_targets(items):
        return
    broken = [
        i for i in _infos(config).values() if i.error and not i.target.spec.startswith("sim:")
    ]
    if broken:
        lines = "; ".join(f"{i.target.spec}: {i.error}" for i in broken)
        pytest.exit(f"vfio-hil: cannot open {lines}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The targets, probed, once anything collected runs on one; a run with no
    vfio-hil test (another project's suite) opens nothing and shows nothing."""
    if not _uses_targets(items):
        return []
    return ["vfio-hil targets:"] + [f"  {i.header()}" for i in _infos(config).values()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _DEVICE_FIXTURES & set(metafunc.fixturenames):
        targets = metafunc.config.stash[TARGETS]
        metafunc.parametrize("vfio_target", targets, ids=[t.spec for t in targets], indirect=True)


@pytest.fixture
def vfio_target(request: pytest.FixtureRequest) -> Iterator[TargetInfo]:
    """The target this test runs on, held exclusively (xdist-safe) for the test.

    Skips the test when its markers rule the target out.
    """
    info = _infos(request.config)[request.param.spec]
    # JUnit XML records which device and kernel each result is about, skips too.
    request.node.user_properties.extend(info.junit_properties())
    if info.error:
        pytest.fail(f"{info.target.spec} cannot be opened: {info.error}", pytrace=False)
    reason = markers.unmet(request.node, info)
    if reason:
        others = [i for i in _infos(request.config).values() if not markers.unmet(request.node, i)]
        if request.config.getoption("vfio_require") and not others:
            pytest.fail(f"no target can run this test (--vfio-require): {reason}", pytrace=False)
        pytest.skip(reason)
    with info.target.hold():
        yield info


@pytest.fixture
def vfio_device(vfio_target: TargetInfo, vfio_model: object) -> Iterator[object]:
    """The target, opened for this test; afterwards every index is disabled, the
    device's interrupt status cleared (where it has a stimulus) and it is closed."""
    from vfio_hil._coverage.recorder import count_model_side
    from vfio_hil._device import close_clean
    from vfio_hil._lockstep.mirror import ModelMirror, TrackedDevice

    assert isinstance(vfio_model, ModelMirror)
    opened = vfio_target.target.open()
    count_model_side(opened, vfio_model.twin)  # a simulation's own model would count twice
    device = TrackedDevice(opened, vfio_model)
    try:
        yield device
    finally:
        close_clean(device)


@pytest.fixture
def vfio_open(
    vfio_target: TargetInfo,
) -> Callable[[], contextlib.AbstractContextManager[object]]:
    """``with vfio_open() as dev:``: the target opened afresh for the block.

    On leaving the block every index is disabled, the device's interrupt
    status cleared (where it has a stimulus) and the device closed, so each
    block -- each hypothesis example -- starts on a clean device.  The value
    itself holds no device, which is what makes it safe to share between the
    examples of a ``@given`` test (the target stays held for the whole test).
    """
    from vfio_hil._device import close_clean

    @contextlib.contextmanager
    def opened() -> Iterator[object]:
        device = vfio_target.target.open()
        try:
            yield device
        finally:
            close_clean(device)

    return opened


@pytest.fixture
def vfio_model(vfio_target: TargetInfo) -> Iterator[object]:
    """The reference model of the device, kept in step with ``vfio_device``'s
    requests, resets, reopens, region writes and stimulus."""
    from vfio_hil._lockstep.mirror import ModelMirror

    with vfio_target.target.open() as device:
        mirror = ModelMirror.of(device)
    yield mirror
    mirror.close()


@pytest.fixture
def vfio_stimulus(vfio_device: object) -> object:
    """The device side of the target (raise_irq/clear_irq); skips if it has none."""
    stimulus = getattr(vfio_device, "stimulus", None)
    if stimulus is None:
        pytest.skip("the target cannot raise interrupts on demand (no stimulus)")
    return stimulus


@pytest.fixture
def eventfds(request: pytest.FixtureRequest) -> Iterator[Callable[..., list[object]]]:
    """``eventfds(n, initval=0)``: n non-blocking eventfds, all closed at teardown.
    For a test on a target elsewhere (``lab:``, ``ssh://``) they are made there."""
    from vfio_hil._eventfd import EventFd

    made: list[Any] = []
    factory: Callable[[int, bool], Any] = EventFd
    if "vfio_target" in request.fixturenames:
        target = request.getfixturevalue("vfio_target").target
        factory = target.eventfd or EventFd

    def make(n: int, initval: int = 0) -> list[object]:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1024:
            raise ValueError(f"eventfds(n): n must be a whole number in 0..1024, not {n!r}")
        new = [factory(initval, False) for _ in range(n)]
        made.extend(new)
        return list(new)

    yield make
    for efd in made:
        efd.close()

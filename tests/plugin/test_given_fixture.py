"""``@given`` with a device: the recipe in docs/writing-tests.md, run as written.

The documented test file enables one interrupt index per example and leaves
it enabled.  The kernel refuses to enable an index while another one is
enabled (EINVAL, ``vfio_pci_set_msi_trigger``/``vfio_pci_set_intx_trigger``),
so the file passes only if every example starts on a device with every index
disabled -- which is what ``vfio_open`` promises.  The same body on the shared
``vfio_device`` must fail with that EINVAL, or the property could not tell.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "writing-tests.md"
TARGETS = ["edu@6.1", "virtio_msix@6.1", "edu@6.12", "virtio_msix@6.12"]
SIGNATURE = "(vfio_open, data):"
OPEN = "with vfio_open() as dev:"
SUPPRESS = "    suppress_health_check=[HealthCheck.function_scoped_fixture],\n"


def documented() -> str:
    """The page's ``test_given.py`` block, exactly as a reader copies it."""
    blocks = re.findall(r"```python\n(# file: test_given\.py\n.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 1, "docs/writing-tests.md should hold one test_given.py block"
    return str(blocks[0])


@pytest.fixture(autouse=True)
def only_the_given_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's targets are TARGETS alone, also where the lab sets VFIO_HIL_DEVICES."""
    for name in ("VFIO_HIL_DEVICES", "VFIO_HIL_SIM"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, code: str) -> pytest.RunResult:
    pytester.makepyfile(test_given=code)
    sims = [arg for t in TARGETS for arg in ("--vfio-sim", t)]
    # In a subprocess: --hypothesis-seed sets hypothesis' global forced seed,
    # which an in-process run would leave behind (later runs then write no
    # example database).
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hypothesis-seed=0", "-v", "--strict-markers", *sims
    )


def replaced(code: str, old: str, new: str) -> str:
    assert code.count(old) == 1, f"the documented file no longer has {old!r}"
    return code.replace(old, new)


def test_the_documented_given_test_passes_on_every_simulated_preset(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, documented())
    result.assert_outcomes(passed=len(TARGETS))
    name = "test_loopback_signals_only_the_vector_it_names"
    result.stdout.fnmatch_lines([f"*{name}?sim:{target}? PASSED*" for target in TARGETS])


def test_the_same_body_on_the_shared_vfio_device_fails_with_einval(
    pytester: pytest.Pytester,
) -> None:
    code = replaced(documented(), SIGNATURE, "(vfio_device, data):")
    code = replaced(code, OPEN, "with contextlib.nullcontext(vfio_device) as dev:")
    result = run(pytester, "import contextlib\n" + code)
    result.assert_outcomes(failed=len(TARGETS))
    assert "EINVAL" in result.stdout.str()


def test_without_the_suppression_hypothesis_refuses_the_fixture(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, replaced(documented(), SUPPRESS, ""))
    result.assert_outcomes(failed=len(TARGETS))
    result.stdout.fnmatch_lines(["*uses a function-scoped fixture 'vfio_open'*"])

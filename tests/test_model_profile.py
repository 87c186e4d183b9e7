"""kernel_profile(): version strings to behaviour switches (spec section 11)."""

from __future__ import annotations

import pytest

from vfio_hil import kernel_profile


@pytest.mark.parametrize(
    ("version", "dyn", "persistent", "rcu", "err_no_pcie"),
    [
        ("6.1", False, True, False, False),
        ("6.1.0-41-amd64", False, True, False, False),  # bookworm ABI name
        ("#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)", False, True, False, False),
        ("6.1.83", False, False, False, False),  # before the INTx hardening backport
        ("6.1.84", False, True, False, False),
        ("6.6.23", True, False, False, False),
        ("6.6.24", True, True, False, False),
        ("6.8.2", True, False, False, False),
        ("6.12.117+deb13-amd64", True, True, True, False),  # trixie's uname -r
        ("6.19.0", True, True, True, False),
        ("7.2.13+deb14-amd64", True, True, True, False),  # sid
        ("7.3.4+bpo-amd64", True, True, True, True),  # trixie-backports
    ],
)
def test_profile_switches(
    version: str, dyn: bool, persistent: bool, rcu: bool, err_no_pcie: bool
) -> None:
    profile = kernel_profile(version)
    assert (profile.dyn_ctx, profile.persistent_intx, profile.rcu_err_req) == (dyn, persistent, rcu)
    assert profile.err_without_pcie == err_no_pcie


def test_unreadable_version_says_what_to_give() -> None:
    with pytest.raises(ValueError, match=r"cannot read a kernel version from 'banana'.*6\.12\.117"):
        kernel_profile("banana")


@pytest.mark.parametrize(
    ("given", "error", "says"),
    [
        ("99.99", ValueError, "outside what the model knows"),
        ("1.0", ValueError, "outside what the model knows"),
        ("5.15.0-91-generic", ValueError, "outside what the model knows"),
        ("6.1@6.12", ValueError, "cannot read a kernel version"),
        (1.0, TypeError, "must be a str"),
        (None, TypeError, "must be a str"),
    ],
)
def test_a_kernel_the_model_knows_nothing_of_is_refused(
    given: object, error: type[Exception], says: str
) -> None:
    # Was: 99.99.0, 1.0.0, 5.15.0 and 6.1.0 profiles, and AttributeError.
    with pytest.raises(error, match=says):
        kernel_profile(given)  # type: ignore[arg-type]

"""Lab target names: each names a device its preset's guest binds."""

from __future__ import annotations

import pytest

from vfio_hil._errors import VfioHilError
from vfio_hil._lab.guest import VF_PREFIX
from vfio_hil._lab.qemu import PRESETS
from vfio_hil._lab.sessions import DEVICE_NAMES, preset_of
from vfio_hil._targets import parse_target


@pytest.mark.parametrize("name", sorted(DEVICE_NAMES))
def test_each_lab_device_name_is_bound_in_its_presets_guest(name: str) -> None:
    preset = PRESETS[preset_of(name)]
    bound = [i.removeprefix(VF_PREFIX) for i in preset.ids]
    assert DEVICE_NAMES[name] in bound
    assert parse_target(f"lab:6.12/{name}").spec == f"lab:6.12/{name}"


def test_an_address_target_boots_the_default_preset() -> None:
    assert preset_of("0000:00:0b.0") == "default"


def test_an_unknown_lab_device_name_lists_the_names() -> None:
    with pytest.raises(VfioHilError) as err:
        parse_target("lab:6.12/nvme")
    text = str(err.value)
    assert "'nvme' is no lab device" in text
    assert all(name in text for name in ("nvme-vf", "xhci-msi", "e1000e"))

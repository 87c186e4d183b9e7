"""The device agent: a device driven from another process sees the same steps.

The agent runs as a child process here (``vfio-hil agent`` over its
stdin/stdout, as under SSH) serving simulated devices; the lab's tests run
it in a guest against the real vfio-pci.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vfio_hil import IrqSet
from vfio_hil._agent import AgentChannel, AgentError, RemoteDevice, spawn_agent
from vfio_hil._agent.wire import decode_step, encode, encode_step, parse
from vfio_hil._diff.check import run_differential
from vfio_hil._errors import VfioError
from vfio_hil._fuzz.mutants import MUTANTS
from vfio_hil._lockstep import (
    BarWrite,
    Clear,
    GetIrqInfo,
    PendEventfd,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    WriteEventfd,
    function_of,
    side_of,
    twin_of,
)
from vfio_hil._targets import parse_target
from vfio_hil.stateful import Divergence, make_machine

pytest_plugins = ["pytester"]

EVERY_STEP_KIND = [
    SetIrqs(0x24, 2, 0, 3, fds=("e1", -1, "closed", "notfd", 7), argsz=40),
    SetIrqs(0x22, 0, 0, 1, bools=b"\x01\xff"),
    SetIrqs(0x21, 1, 0, 0),
    Raise(5),
    Clear(),
    Reset(),
    Reopen(),
    WriteEventfd(3),
    PendEventfd(2),
    SetDisIntx(True),
    GetIrqInfo(4),
    SetCommand(0x0507),
    BarWrite(0x60, 0xFFFFFFFF),
]


@pytest.mark.parametrize("step", EVERY_STEP_KIND, ids=repr)
def test_every_step_kind_crosses_the_wire_unchanged(step: object) -> None:
    # encode -> bytes -> parse -> decode: what the agent plays is what was sent.
    assert decode_step(parse(encode({"step": encode_step(step)}))["step"]) == step  # type: ignore[arg-type]


def test_a_remote_device_tells_what_the_device_tells(agent: AgentChannel) -> None:
    remote = agent.open("sim:virtio_msix@7.3")
    local = parse_target("sim:virtio_msix@7.3").open()
    try:
        assert remote.kernel == local.kernel
        assert remote.platform == local.platform
        assert remote.info() == local.info()
        assert function_of(remote) == function_of(local)
        assert twin_of(remote).function == twin_of(local).function
        assert (remote.stimulus is None) == (local.stimulus is None)
    finally:
        remote.close()
        local.close()


def test_the_differential_check_over_the_agent_matches_the_one_in_process(
    agent: AgentChannel,
) -> None:
    for spec in ("sim:edu", "sim:virtio_msix@6.1"):
        remote = run_differential(lambda spec=spec: agent.open(spec), seeds=range(4))  # type: ignore[misc]
        here = run_differential(parse_target(spec).open, seeds=range(4))
        assert remote.disagreements == [] == here.disagreements
        assert (remote.cases, remote.steps) == (here.cases, here.steps)


def test_the_fuzzer_over_the_agent_finds_a_mutant(agent: AgentChannel) -> None:
    # The device in the agent is the reference; the model side here is a
    # mutant: a disagreement must surface through the wire.
    mutant = next(m for m in MUTANTS if m.name == "range-off-by-one")
    machine = make_machine(
        lambda: agent.open("sim:virtio_msix:8@6.12"),
        twin_factory=lambda dev: twin_of(dev, model=mutant.model),
        export=False,
        seed=1,
    )
    from hypothesis import Phase, settings

    quick = settings(
        max_examples=300, stateful_step_count=20, database=None, phases=[Phase.generate]
    )
    try:
        with pytest.raises(Divergence):
            machine.run(quick)
    finally:
        machine.close_device()


def test_an_ioctl_error_keeps_its_errno_across_the_wire(agent: AgentChannel) -> None:
    device = agent.open("sim:edu")
    try:
        with pytest.raises(VfioError) as caught:
            device.set_irqs(IrqSet.trigger("MSIX", 0, 1))  # edu has no MSI-X
        assert caught.value.errno == errno.EINVAL
        with pytest.raises(VfioError) as caught:
            device.irq_info(9)
        assert caught.value.errno == errno.EINVAL
        assert device.irq_info(0).count == 1  # and the agent goes on
    finally:
        device.close()


def test_a_side_in_the_agent_counts_loopback_signals(agent: AgentChannel) -> None:
    device = agent.open("sim:edu")
    side = side_of(device, 2)
    try:
        assert side.play(SetIrqs(0x24, 0, 0, 1, fds=("e1",))) == 0  # INTx trigger e1
        assert side.play(SetIrqs(0x21, 0, 0, 1)) == 0  # loopback: signals e1
        assert side.read() == [0, 1]
    finally:
        side.close()
        device.close()


def test_an_unknown_operation_is_an_error_naming_it_and_the_agent_goes_on(
    agent: AgentChannel,
) -> None:
    with pytest.raises(AgentError, match="unknown operation 'frobnicate'"):
        agent.call("frobnicate")
    assert agent.hello()["devices"] is not None  # it answers as before


def test_a_silent_agent_is_an_error_within_the_timeout() -> None:
    host_r, agent_w = os.pipe()
    agent_r, host_w = os.pipe()
    channel = AgentChannel(host_r, host_w, "silent agent")
    try:
        started = time.monotonic()
        with pytest.raises(AgentError, match="no answer to hello within"):
            channel.call("hello", timeout=0.3)
        assert time.monotonic() - started < 5
        assert channel.closed  # a lost answer: the stream cannot line up again
    finally:
        channel.close()
        os.close(agent_w)
        os.close(agent_r)


def test_a_device_of_a_closed_agent_says_so(agent: AgentChannel) -> None:
    device: RemoteDevice = agent.open("sim:edu")
    agent.close()
    with pytest.raises(AgentError, match="closed"):
        device.irq_info(0)
    device.close()  # closing what is gone is not an error


# An agent of another vfio-hil version: it answers hello with protocol 1.
OLD_AGENT = """
import json, sys
for line in sys.stdin:
    ident = json.loads(line)["id"]
    print(json.dumps({"id": ident, "ok": {"protocol": 1, "release": "x", "devices": []}}))
    sys.stdout.flush()
"""


def test_an_agent_of_another_protocol_is_refused_with_what_to_do() -> None:
    with pytest.raises(AgentError, match="speaks protocol 1") as caught:
        spawn_agent([sys.executable, "-c", OLD_AGENT], "old agent")
    assert "same vfio-hil version" in caught.value.hint


HOST = """
import sys
from vfio_hil._agent import spawn_agent
from vfio_hil._agent.spawn import local_agent_argv
channel = spawn_agent(local_agent_argv(), "agent")
print(channel.call("hello")["pid"], flush=True)
channel.open("sim:edu")
sys.stdin.read()
"""


@pytest.mark.parametrize("how", ["SIGKILL", "closed"])
def test_the_agent_exits_when_its_host_dies_or_closes(how: str) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert host.stdout is not None
    assert host.stdin is not None
    pid = int(host.stdout.readline())
    if how == "SIGKILL":
        host.send_signal(signal.SIGKILL)
    else:
        host.stdin.close()  # the host ends normally: its channel closes
    host.wait(timeout=20)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as f:  # a zombie of init's is gone too
            if f.read().split()[2] == "Z":
                break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the agent (pid {pid}) outlived its host by 20 s")


FAKE_SSH = """#!/bin/sh
# ssh without the network: drop ssh's options and the host, run the command here.
while [ "$#" -gt 0 ]; do
    case "$1" in -o|-p|-i) shift 2 ;; -*) shift ;; *) break ;; esac
done
echo "$1" >> "$(dirname "$0")/hosts"
shift
exec sh -c "$*"
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from vfio_hil._agent import remote

    script = tmp_path / "ssh"
    script.write_text(FAKE_SSH)
    script.chmod(0o755)
    monkeypatch.setenv("VFIO_HIL_SSH", f"{script} -T -o BatchMode=yes")
    monkeypatch.setenv("VFIO_HIL_REMOTE_AGENT", f"{sys.executable} -m vfio_hil agent")
    yield tmp_path / "hosts"
    remote.close_all()


def test_an_ssh_target_is_driven_through_an_agent_on_that_host(fake_ssh: Path) -> None:
    target = parse_target("ssh://lab-box/sim:edu@6.1")
    assert target.spec == "ssh://lab-box/sim:edu@6.1"
    report = run_differential(target.open, seeds=range(3))
    assert report.disagreements == []
    assert report.cases > 100
    assert report.device == "sim:edu (ssh lab-box)"
    assert fake_ssh.read_text().split() == ["lab-box"]  # one agent for the whole run


def test_the_fuzz_command_takes_an_ssh_target(
    fake_ssh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vfio_hil.cli import main

    code = main(["fuzz", "--device", "ssh://box/sim:virtio_msix:8", "--max-examples", "20"])
    assert code == 0, capsys.readouterr()
    assert "ssh://box/sim:virtio_msix:8@6.12: agree; 20 examples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "spec", ["ssh://", "ssh://box", "ssh://box/", "ssh:///sim:edu", "ssh://a/ssh://b/sim:edu"]
)
def test_a_malformed_ssh_target_says_the_form(spec: str) -> None:
    from vfio_hil._errors import VfioHilError

    with pytest.raises(VfioHilError, match="ssh://HOST/ADDRESS"):
        parse_target(spec)


def test_an_unreachable_host_says_how_to_check_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from vfio_hil._agent import remote

    monkeypatch.setenv("VFIO_HIL_SSH", "false")  # an ssh that fails at once
    with pytest.raises(AgentError, match="no agent on nowhere") as caught:
        parse_target("ssh://nowhere/0000:01:00.0").open()
    assert "false nowhere 'python3 -m vfio_hil agent'" in caught.value.hint
    remote.close_all()


def test_a_remote_device_refuses_eventfds_of_this_process(agent: AgentChannel) -> None:
    from vfio_hil import EventFd

    device = agent.open("sim:edu")
    try:
        with EventFd() as efd, pytest.raises(AgentError, match="this process's eventfds"):
            device.set_irqs(IrqSet.eventfds("INTX", 0, [efd]))
        assert device.set_irqs(IrqSet.eventfds("INTX", 0, [-1])) == 0  # a de-assign is fine
    finally:
        device.close()


def test_a_remote_eventfd_counts_what_the_device_signals_there(agent: AgentChannel) -> None:
    device = agent.open("sim:edu")
    try:
        with device.eventfd() as efd:
            assert device.set_irqs(IrqSet.eventfds("INTX", 0, [efd])) == 0
            assert device.set_irqs(IrqSet.trigger("INTX")) == 0  # loopback
            assert efd.read() == 1
            assert efd.read() == 0
            efd.write(3)
            assert efd.wait(1.0) == 3
        with pytest.raises(ValueError, match="closed"):
            efd.read()
    finally:
        device.close()


def test_the_conformance_suite_runs_here_on_a_device_over_ssh(
    fake_ssh: Path, pytester: pytest.Pytester
) -> None:
    # The plugin's fixtures on a device elsewhere: eventfds made there, the
    # model mirror asking the agent which eventfd a number is.
    result = pytester.runpytest_subprocess(
        "-p",
        "vfio_hil",
        "--pyargs",
        "vfio_hil.suite",
        "--vfio-device",
        "ssh://box/sim:edu",
        "--vfio-device",
        "ssh://box/sim:virtio_msix:8",
        "-q",
    )
    here = pytester.runpytest_subprocess(
        "-p", "vfio_hil", "--pyargs", "vfio_hil.suite", "--vfio-sim", "edu", "-q"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] > here.parseoutcomes()["passed"]  # both devices ran


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("lab:6.12/edu", "lab:6.12/edu"),
        ("lab:7/virtio", "lab:7/virtio"),
        ("lab:6.1/00:0b.0", "lab:6.1/0000:00:0b.0"),
    ],
)
def test_a_lab_target_names_a_kernel_and_a_device(spec: str, canonical: str) -> None:
    target = parse_target(spec)  # parsing boots nothing: the first open does
    assert target.spec == canonical
    assert not target.simulated
    assert target.eventfd is not None  # a test's eventfds are made in the guest


@pytest.mark.parametrize("spec", ["lab:", "lab:6.12", "lab:6.12/", "lab:/edu", "lab:6.12/banana"])
def test_a_malformed_lab_target_says_the_form(spec: str) -> None:
    from vfio_hil._errors import VfioHilError

    with pytest.raises(VfioHilError, match=r"lab:KERNEL/DEVICE|'banana' is no lab device"):
        parse_target(spec)


def test_the_report_header_says_where_a_remote_target_is(
    fake_ssh: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("def test_x(vfio_device):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "vfio_hil", "--vfio-device", "ssh://box/sim:edu")
    line = (
        "ssh://box/sim:edu@6.12 [1234:11e8] driver=simulated via ssh box group=- iommu=- "
        "kernel=6.12"
    )
    assert line in result.stdout.str()


def test_after_an_interrupt_mid_call_the_channel_says_interrupted_not_failed(
    agent: AgentChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C between a request and its answer closes the channel; later calls
    # (cleanup, hypothesis' next step) must keep unwinding as an interrupt,
    # not fail as a lost agent, or hypothesis replays the example as a failure.
    def interrupted(op: str, timeout: float) -> dict[str, object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(agent, "_receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        agent.call("hello")
    assert agent.closed
    with pytest.raises(KeyboardInterrupt):
        agent.call("hello")

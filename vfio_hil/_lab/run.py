"""Host orchestration: boot each kernel, run the command in it, judge the result.

Each guest runs under a hard timeout: on expiry the whole process group
(virtme-run and QEMU) gets SIGTERM, then SIGKILL, and the run is reported as
timed out. The console stream is scanned live for kernel failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vfio_hil._lab import gcov
from vfio_hil._lab._util import LabError, log
from vfio_hil._lab.console import ConsoleScanner, Finding
from vfio_hil._lab.kernels import Kernel, kernel_has
from vfio_hil._lab.qemu import (
    Accel,
    DevicePreset,
    GuestIommu,
    build_virtme_argv,
    choose_accel,
    find_qemu,
    find_virtme_run,
    get_preset,
    kill_group,
    probe_kvm,
)

DEFAULT_TIMEOUT_S = 900.0
# A directory: every guest of a gcov kernel this process boots collects its
# kernel coverage under it (<release>-<devices>), as run_lab(coverage=True)
# does into its results; reaches the guests the device agent boots too.
COVERAGE_ENV = "VFIO_HIL_LAB_COVERAGE"
# The guest kills its command this long before the host's hard timeout, so
# the output and exit code still reach the results directory.
GUEST_GRACE_S = 20.0
# Guests running now, so that stop_all_guests() can end runs started in threads.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()
CONSOLE_TAIL = 30
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Results the guest writes; cleared before each run so stale ones never count.
_RESULT_FILES = (
    "exit_code",
    "guest.json",
    "output.log",
    "junit.xml",
    "dmesg.txt",
    "console.log",
    "findings.txt",
)


@dataclass
class LabResult:
    """The outcome of one kernel's run."""

    kernel: Kernel
    accel: Accel
    command: list[str]
    results_dir: Path
    exit_code: int | None = None
    timed_out: bool = False
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    boot_seconds: float | None = None
    first_test_seconds: float | None = None
    total_seconds: float = 0.0

    @property
    def console_log(self) -> Path:
        return self.results_dir / "console.log"

    @property
    def guest_failed(self) -> bool:
        """The guest (not the command) failed: timeout, no exit code, or a kernel failure."""
        return self.timed_out or self.error is not None or any(f.fatal for f in self.findings)

    @property
    def ok(self) -> bool:
        return not self.guest_failed and self.exit_code == 0

    def verdict(self) -> str:
        """``PASS``, ``FAIL (exit 1)``, ``TIMEOUT``, ``KERNEL FAILURE`` or ``GUEST ERROR``."""
        if self.timed_out:
            return "TIMEOUT"
        if any(f.fatal for f in self.findings):
            return "KERNEL FAILURE"
        if self.error is not None:
            return "GUEST ERROR"
        return "PASS" if self.exit_code == 0 else f"FAIL (exit {self.exit_code})"

    def summary(self) -> str:
        """One line per kernel: verdict and the two timings."""

        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f} s"

        return (
            f"{self.kernel.name} ({self.kernel.release}, {self.accel}): {self.verdict()}; "
            f"start to first test {fmt(self.first_test_seconds)}, "
            f"total {fmt(self.total_seconds)}; results in {self.results_dir}"
        )


def guest_script(
    kernel: Kernel,
    preset: DevicePreset,
    command: Sequence[str],
    results: Path,
    deadline: float | None,
    env: Mapping[str, str],
) -> str:
    """The shell script virtme-run executes in the guest (writes nothing).

    The guest's PATH is the system's, so the host's interpreter is called by
    absolute path and its directory (a venv's ``bin``) is put first on PATH
    for commands like ``pytest``; PYTHONPATH makes this package importable
    even when it is not installed.
    """
    package_parent = str(Path(__file__).resolve().parents[2])
    pythonpath = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    exports = {
        "PATH": f"{Path(sys.executable).parent}:{GUEST_PATH}",
        "PYTHONPATH": pythonpath,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    # guest.py runs by path with -S: stdlib only, so it skips site-packages
    # and the vfio_hil package import, seconds apiece over 9p under TCG.
    guest = [
        sys.executable,
        "-S",
        str(Path(__file__).with_name("guest.py")),
        "--results",
        str(results),
        "--modroot",
        str(kernel.root),
    ]
    for vd in preset.ids:
        guest += ["--device", vd]
    # What a Python command reads: served from the guest's cached share.
    reads = dict.fromkeys([sys.base_prefix, sys.prefix, package_parent, os.getcwd(), "/usr"])
    for directory in reads:
        guest += ["--cached-read", directory]
    if deadline is not None:
        guest += ["--deadline", f"{deadline:.0f}"]
    lines = ["#!/bin/sh", "# Written by vfio-hil lab; run inside the guest by virtme-run."]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
    lines.append("exec " + shlex.join([*guest, "--", *command]))
    return "\n".join(lines) + "\n"


def _argv(
    kernel: Kernel,
    accel: Accel,
    preset: DevicePreset,
    kdir: Path,
    memory: str,
    cpus: int,
    iommu: GuestIommu = "intel",
    extra_qemu_args: Sequence[str] = (),
    extra_kernel_args: Sequence[str] = (),
) -> list[str]:
    return build_virtme_argv(
        virtme_run=find_virtme_run(),
        qemu=find_qemu(),
        vmlinuz=kernel.vmlinuz,
        accel=accel,
        preset=preset,
        guest_script=kdir / "guest.sh",
        rwdirs=[kdir],
        cwd=Path.cwd(),
        memory=memory,
        cpus=cpus,
        iommu=iommu,
        extra_qemu_args=extra_qemu_args,
        extra_kernel_args=extra_kernel_args,
    )


def check_iommu(kernel: Kernel, iommu: GuestIommu) -> None:
    """A LabError before booting a guest whose devices vfio-pci could not bind."""
    if iommu == "none" and kernel_has(kernel, "VFIO_NOIOMMU") is False:
        raise LabError(
            f"kernel {kernel.name} ({kernel.release}) is built without CONFIG_VFIO_NOIOMMU "
            "(no Debian kernel has it), so without an IOMMU vfio-pci binds nothing: "
            "use --kernel iommufd (the lab's own build, `vfio-hil lab build`)"
        )


def check_coverage(kernel: Kernel) -> None:
    """A LabError before booting, for coverage on a kernel without gcov."""
    if kernel_has(kernel, "GCOV_KERNEL") is not True:
        raise LabError(
            f"kernel {kernel.name} ({kernel.release}) is built without CONFIG_GCOV_KERNEL, "
            "so it has no coverage to collect: use --kernel iommufd-cov "
            "(`vfio-hil lab build --coverage`)"
        )


def _coverage_dir(kernel: Kernel, preset: DevicePreset, coverage: Path | None) -> Path | None:
    """Where this guest's counters go: ``coverage``, else under $VFIO_HIL_LAB_COVERAGE."""
    if coverage is not None:
        return coverage
    base = os.environ.get(COVERAGE_ENV)
    if not base:
        return None
    if kernel_has(kernel, "GCOV_KERNEL") is not True:
        log(f"{kernel.name}: no CONFIG_GCOV_KERNEL: this guest's coverage is not collected")
        return None
    name = f"{kernel.release}-{preset.name}"
    for n in range(1, 1000):  # one directory per guest: a later one never overwrites
        chosen = Path(base).absolute() / (name if n == 1 else f"{name}-{n}")
        if not chosen.exists():
            return chosen
    raise LabError(f"{base} holds 999 coverage runs of {name}: give another {COVERAGE_ENV}")


def _coverage_report(kernel: Kernel, directory: Path) -> None:
    """gcovr over what the guest collected; one line with the figures, or why not."""
    log(f"{kernel.name}: kernel coverage: running gcovr over {directory / gcov.GCDA_DIR}")
    try:
        rep = gcov.report(directory)
    except LabError as exc:
        log(f"{kernel.name}: kernel coverage: error: {exc}")
        return
    lines, covered, _ = rep.file_totals("drivers/vfio/pci/vfio_pci_intrs.c")
    log(
        f"{kernel.name}: kernel coverage: vfio_pci_intrs.c {covered}/{lines} lines; "
        f"{directory / 'focus.txt'}, {rep.html}"
    )


def pick_accel(requested: str, kernel: Kernel) -> Accel:
    """Probe KVM (unless TCG was asked for) and print a note on fallback."""
    probe = None if requested == "tcg" else probe_kvm(find_qemu(), kernel.vmlinuz)
    accel, note = choose_accel(requested, probe)
    if note:
        log(note)
    return accel


class _Reader(threading.Thread):
    """Copies the console to console.log, feeds the scanner, echoes the guest."""

    def __init__(
        self,
        stream: IO[bytes],
        log_path: Path,
        scanner: ConsoleScanner,
        t0: float,
        echo: IO[str] | None,
        verbose: bool,
        label: str,
    ) -> None:
        super().__init__(daemon=True)
        self.stream, self.log_path, self.scanner = stream, log_path, scanner
        self.t0, self.echo, self.verbose, self.label = t0, echo, verbose, label
        self.tail: list[str] = []

    def run(self) -> None:
        with self.log_path.open("w", encoding="utf-8") as out:
            for raw in self.stream:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                out.write(line + "\n")
                out.flush()
                self.tail = [*self.tail[-(CONSOLE_TAIL - 1) :], line]
                up, started = self.scanner.guest_up_at, self.scanner.command_start_at
                finding = self.scanner.feed(line, time.monotonic() - self.t0)
                if up is None and self.scanner.guest_up_at is not None:
                    log(f"{self.label}: guest userspace up after {self.scanner.guest_up_at:.1f} s")
                if started is None and self.scanner.command_start_at is not None:
                    log(
                        f"{self.label}: devices bound, command started after "
                        f"{self.scanner.command_start_at:.1f} s"
                    )
                if finding is not None:
                    log(f"{self.label}: KERNEL {finding.summary()}")
                if self.echo and (self.verbose or self.scanner.guest_up_at is not None):
                    self.echo.write(line + "\n")
                    self.echo.flush()


def _judge(result: LabResult, scanner: ConsoleScanner, tail: list[str]) -> None:
    kdir = result.results_dir
    result.findings = scanner.findings
    result.boot_seconds = scanner.command_start_at
    result.first_test_seconds = scanner.first_test_at or scanner.command_start_at
    code_file = kdir / "exit_code"
    if code_file.exists():
        try:
            result.exit_code = int(code_file.read_text().strip())
        except ValueError:
            result.error = f"unreadable {code_file}"
    guest_json = kdir / "guest.json"
    if guest_json.exists():
        error = json.loads(guest_json.read_text()).get("error")
        if error:
            result.error = f"guest setup failed: {error}"
    if result.timed_out:
        result.error = result.error or "hard timeout"
    elif result.exit_code is None and result.error is None:
        result.error = "the guest ended without an exit code (boot failure or kernel panic)"
    if result.findings:
        (kdir / "findings.txt").write_text(
            "\n\n".join(f.summary() + "\n" + "\n".join(f.context) for f in result.findings) + "\n"
        )
    if result.error and not result.timed_out and result.exit_code is None and not result.findings:
        log(f"{result.kernel.name}: last console lines:\n" + "\n".join(tail))


def run_one(
    kernel: Kernel,
    command: Sequence[str],
    *,
    accel: Accel,
    preset: DevicePreset,
    results_root: Path,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory: str = "2G",
    cpus: int = 2,
    iommu: GuestIommu = "intel",
    env: Mapping[str, str] | None = None,
    verbose: bool = False,
    echo: IO[str] | None = None,
    extra_qemu_args: Sequence[str] = (),
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    coverage: Path | None = None,
    kernel_args: Sequence[str] = (),
) -> LabResult:
    """Boot ``kernel``, run ``command`` in it and return the judged result.

    ``on_start`` is given the guest's process (virtme-run, whose group holds
    QEMU) as soon as it runs, for a caller in another thread to kill.
    ``coverage``: collect the kernel's gcov counters there and report them
    (default: under $VFIO_HIL_LAB_COVERAGE when it is set; see ``gcov``)."""
    kdir = results_root / kernel.release
    kdir.mkdir(parents=True, exist_ok=True)
    for name in _RESULT_FILES:
        (kdir / name).unlink(missing_ok=True)
    t0 = time.monotonic()
    deadline = time.time() + timeout - min(GUEST_GRACE_S, timeout / 4)
    coverage = _coverage_dir(kernel, preset, coverage)
    # The guest writes only below kdir (its one writable share): it collects there and
    # the host moves the counters to ``coverage`` after the guest has ended.
    collected = kdir / "coverage"
    if coverage is not None:
        check_coverage(kernel)
        shutil.rmtree(collected / gcov.GCDA_DIR, ignore_errors=True)
        command = gcov.wrap(command, collected)
    (kdir / "guest.sh").write_text(guest_script(kernel, preset, command, kdir, deadline, env or {}))
    check_iommu(kernel, iommu)
    if cpus < preset.min_cpus:
        log(f"devices {preset.name} need {preset.min_cpus} vCPUs: the guest gets {preset.min_cpus}")
        cpus = preset.min_cpus
    argv = _argv(kernel, accel, preset, kdir, memory, cpus, iommu, extra_qemu_args, kernel_args)
    (kdir / "virtme-run.argv").write_text(shlex.join(argv) + "\n")
    result = LabResult(kernel, accel, list(command), kdir)
    scanner = ConsoleScanner()
    log(
        f"booting {kernel.describe()} under {accel.upper()} with devices {preset.name}"
        f"{'' if iommu == 'intel' else ', no IOMMU (NOIOMMU mode)'} (timeout {timeout:.0f} s)"
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    reader: _Reader | None = None
    try:  # at once: an interrupt before the try would leave the guest running
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
        if on_start is not None:
            on_start(proc)
        reader = _Reader(proc.stdout, kdir / "console.log", scanner, t0, echo, verbose, kernel.name)
        reader.start()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        result.timed_out = True
        log(f"{kernel.name}: hard timeout after {timeout:.0f} s; killing the guest")
    finally:
        # Also reached on KeyboardInterrupt (and SIGTERM, see run_lab): never
        # leave a QEMU behind, even when the interrupt lands in the kill itself.
        try:
            kill_group(proc)
        except KeyboardInterrupt:
            kill_group(proc)
            raise
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
        if reader is not None:
            reader.join(timeout=10)
        proc.stdout.close()
    assert reader is not None
    result.total_seconds = time.monotonic() - t0
    _judge(result, scanner, reader.tail)
    if coverage is not None and result.exit_code is not None:
        if coverage.absolute() != collected.absolute():
            coverage.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(coverage / gcov.GCDA_DIR, ignore_errors=True)
            if (collected / gcov.GCDA_DIR).is_dir():
                shutil.move(collected / gcov.GCDA_DIR, coverage / gcov.GCDA_DIR)
        _coverage_report(kernel, coverage)
    return result


def results_root(results_dir: Path | None) -> Path:
    """Where a run's per-kernel results go (made now): the given directory, or a new one."""
    root = (results_dir or Path(tempfile.mkdtemp(prefix="vfio-hil-lab-"))).absolute()
    root.mkdir(parents=True, exist_ok=True)
    return root


def stop_all_guests() -> int:
    """Kill every guest this process is running (runs in other threads end
    as if their guest died); how many there were."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        kill_group(proc)
    return len(running)


def run_lab(
    kernels: Sequence[Kernel],
    command: Sequence[str],
    *,
    accel: str = "auto",
    devices: str = "default",
    timeout: float = DEFAULT_TIMEOUT_S,
    results_dir: Path | None = None,
    memory: str = "2G",
    cpus: int = 2,
    iommu: GuestIommu = "intel",
    env: Mapping[str, str] | None = None,
    verbose: bool = False,
    echo: IO[str] | None = sys.stdout,
    coverage: bool = False,
    kernel_args: Sequence[str] = (),
) -> list[LabResult]:
    """Run ``command`` in a guest per kernel; one ``LabResult`` each, in order.

    ``kernel_args``: more for the guest kernel's command line (the selftests'
    guest reserves a 1 GiB hugepage at boot: ``hugepagesz=1G hugepages=1``).

    ``coverage``: each guest's kernel coverage goes to ``<results>/<release>/coverage``
    (every kernel must be a gcov one, ``iommufd-cov``: checked before any boot).

    Each guest logs a line when it boots and one with its verdict and time
    when it ends.  Called from the main thread, SIGTERM stops the run like
    Ctrl-C (``KeyboardInterrupt``), killing the guest first; the previous
    SIGTERM handler is back when this returns.
    """
    if not kernels:
        raise LabError("no kernel to run")
    if not command:
        raise LabError("no command to run in the guest")
    preset = get_preset(devices)
    for k in kernels:
        check_iommu(k, iommu)
        if coverage:
            check_coverage(k)
    find_qemu()
    find_virtme_run()
    if not Path("/lib/modules").is_dir():
        log(
            "warning: the host has no /lib/modules, so virtme-ng cannot link the guest "
            "kernel's modules there; modules load by path only (mkdir -p /lib/modules fixes it)"
        )
    with _sigterm_unwinds():
        chosen = pick_accel(accel, kernels[0])
        root = results_root(results_dir)
        log(f"results in {root}")
        results = []
        for k in kernels:
            r = run_one(
                k,
                command,
                accel=chosen,
                preset=preset,
                results_root=root,
                timeout=timeout,
                memory=memory,
                cpus=cpus,
                iommu=iommu,
                env=env,
                verbose=verbose,
                echo=echo,
                coverage=root / k.release / "coverage" if coverage else None,
                kernel_args=kernel_args,
            )
            # As each guest ends, not after the last: CI logs show a long run's progress.
            for f in r.findings:
                log(f"{r.kernel.name}: {f.summary()}")
            log(r.summary() + (f" [{r.error}]" if r.error else ""))
            results.append(r)
    return results


def _interrupt(signum: int, frame: object) -> None:
    # One is enough: a second SIGTERM while unwinding would cut the guest's kill short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While it lasts, SIGTERM raises KeyboardInterrupt, as Ctrl-C does.

    A CI runner's cancel (or ``timeout``, or ``kill``) then unwinds through
    ``run_one``, which kills the guest, instead of ending Python with QEMU
    left running in its own session.  Only the main thread can set a handler:
    runs in other threads are stopped by their caller (``stop_all_guests``).
    A SIGTERM the caller ignores stays ignored.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if not in_main or signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        # None: the handler was not set from Python; the default is the closest.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def show_commands(
    kernels: Sequence[Kernel],
    command: Sequence[str],
    *,
    accel: str = "auto",
    devices: str = "default",
    timeout: float = DEFAULT_TIMEOUT_S,
    results_dir: Path | None = None,
    memory: str = "2G",
    cpus: int = 2,
    iommu: GuestIommu = "intel",
    env: Mapping[str, str] | None = None,
    coverage: bool = False,
) -> str:
    """What ``run_lab`` would execute: the virtme-run argv and guest script per kernel."""
    preset = get_preset(devices)
    # Pure: "auto" would boot a KVM probe guest; show the TCG fallback and say so.
    chosen: Accel = "kvm" if accel == "kvm" else "tcg"
    root = (results_dir or Path(tempfile.gettempdir()) / "vfio-hil-lab-RESULTS").absolute()
    parts = []
    for k in kernels:
        kdir = root / k.release
        argv = _argv(k, chosen, preset, kdir, memory, max(cpus, preset.min_cpus), iommu)
        guest_command = gcov.wrap(command, kdir / "coverage") if coverage else command
        script = guest_script(
            k, preset, guest_command, kdir, time.time() + timeout - GUEST_GRACE_S, env or {}
        )
        how = (
            f"{chosen} (--accel auto: kvm instead if a probe guest boots)"
            if accel == "auto"
            else chosen
        )
        parts.append(
            f"# {k.describe()}, {how}\n{shlex.join(argv)}\n# {kdir / 'guest.sh'}:\n{script}"
        )
    return "\n".join(parts)


__all__ = [
    "COVERAGE_ENV",
    "LabResult",
    "check_coverage",
    "check_iommu",
    "run_lab",
    "run_one",
    "show_commands",
    "stop_all_guests",
]

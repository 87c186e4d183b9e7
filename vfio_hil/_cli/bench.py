"""``vfio-hil bench``: loopback and scale (Python against C), mutants (the fuzzer's power)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from vfio_hil._cli.common import PROFILES, in_lab, lab_kernel, positive
from vfio_hil._exit import Exit

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks: loopback and scale (Python against C), mutants (the fuzzer's power)",
    )
    which = bench.add_subparsers(dest="bench", required=True, parser_class=type(bench))
    loopback = which.add_parser("loopback", help="SET_IRQS loopback: Python against C")
    loopback.add_argument(
        "--lab", type=lab_kernel, metavar="KERNEL", help="run it in the lab on KERNEL"
    )
    loopback.set_defaults(handler=_loopback)

    scale = which.add_parser(
        "scale", help="enable, trigger and read every MSI-X vector: Python against C"
    )
    where = scale.add_mutually_exclusive_group()
    where.add_argument(
        "--lab",
        type=lab_kernel,
        metavar="KERNEL",
        help="run it in a lab guest on KERNEL with the scale preset (2048 vectors)",
    )
    where.add_argument("--device", metavar="ADDRESS", help="a device bound to vfio-pci")
    where.add_argument(
        "--sim", metavar="PRESET[:VECTORS][@KERNEL]", help="a simulated device (Python only)"
    )
    add_scale_arguments(scale)
    scale.set_defaults(handler=_scale)

    mutants = which.add_parser("mutants", help="how fast the fuzzer finds each mutant")
    mutants.add_argument("--only", action="append", metavar="NAME", help="one mutant (repeatable)")
    mutants.add_argument("--no-shrink", action="store_true", help="stop at the first failure")
    mutants.add_argument("--profile", choices=PROFILES, default="ci")
    mutants.add_argument("--out", type=Path, metavar="DIR", help="write counterexamples here")
    mutants.add_argument(
        "--seeds",
        type=positive,
        default=1,
        metavar="K",
        help="run each mutant from seeds 0..K-1 and report the detection rate (default 1)",
    )
    mutants.set_defaults(handler=_mutants)

    lab = which.add_parser(
        "lab", help="lab fuzzing in one guest: in the guest, and on the host through its agent"
    )
    lab.add_argument("--kernel", type=lab_kernel, default="6.12", metavar="KERNEL")
    lab.add_argument(
        "--examples", type=positive, default=60, metavar="N", help="per device and run (60)"
    )
    lab.set_defaults(handler=_lab)


def _loopback(args: argparse.Namespace) -> int:
    if args.lab:
        return in_lab(args.lab, [sys.executable, "-m", "vfio_hil._bench.loopback"])
    from vfio_hil._bench.loopback import main as loopback_main

    return loopback_main()


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vectors`` and ``--rounds``: here and in ``python -m vfio_hil._bench.scale``."""
    parser.add_argument(
        "--vectors", type=positive, metavar="N", help="vectors 0..N-1 (default: all the device has)"
    )
    parser.add_argument(
        "--rounds", type=positive, default=5, metavar="R", help="rounds per side (default 5)"
    )


def _scale(args: argparse.Namespace) -> int:
    from vfio_hil._bench.scale import LAB_CPUS, run

    if args.lab:
        from vfio_hil._cli.lab import run_guarded

        inner = [sys.executable, "-m", "vfio_hil._bench.scale", "--rounds", str(args.rounds)]
        inner += ["--vectors", str(args.vectors)] if args.vectors else []
        return run_guarded([args.lab], inner, devices="scale", cpus=LAB_CPUS)
    return run(args.device, args.sim, args.vectors, args.rounds)


def _mutants(args: argparse.Namespace) -> int:
    from vfio_hil._bench.mutants import format_rates, format_table, run_mutant
    from vfio_hil._errors import VfioHilError
    from vfio_hil._fuzz.context import check_out_dir
    from vfio_hil._fuzz.mutants import MUTANTS

    names = [m.name for m in MUTANTS]
    unknown = [n for n in args.only or [] if n not in names]
    if unknown:
        raise VfioHilError(f"unknown mutant {unknown[0]!r}", f"use one of: {', '.join(names)}")
    if args.out is not None:
        check_out_dir(args.out, "--out")
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    started = time.monotonic()
    rows = []
    for mutant in chosen:
        for seed in range(args.seeds):
            row = run_mutant(
                mutant,
                profile=args.profile,
                shrink=not args.no_shrink,
                out_dir=args.out,
                seed=seed,
            )
            rows.append(row)
            seen = "detected" if row.detected else "NOT detected"
            print(f"{mutant.name} (seed {seed}): {seen} in {row.total_seconds:.1f}s", flush=True)
    print(format_table(rows) if args.seeds == 1 else format_rates(rows))
    found = sum(r.detected for r in rows)
    runs = "" if args.seeds == 1 else f" runs ({len(chosen)} mutants x {args.seeds} seeds)"
    print(f"{found}/{len(rows)}{runs} detected in {time.monotonic() - started:.1f}s")
    return Exit.OK if found == len(rows) else Exit.FAILED


def _lab(args: argparse.Namespace) -> int:
    from vfio_hil._bench.lab_fuzz import format_rates, measure
    from vfio_hil._cli.lab import on_agents
    from vfio_hil._lab.agent import LabAgent

    def bench(lab: LabAgent) -> int:
        print(format_rates(lab.kernel.name, measure(lab, args.examples)), flush=True)
        return Exit.OK

    return on_agents([args.kernel], bench, 3600.0)

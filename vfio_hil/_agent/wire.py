"""The agent's wire format: one JSON object per line, each way.

A request is ``{"id": N, "op": NAME, "args": {...}}``; its answer is
``{"id": N, "ok": VALUE}`` or ``{"id": N, "error": {...}}``.  JSON rather
than pickle: an agent on a remote machine must not execute what it is sent,
and a line of JSON is readable in a log.  Values that JSON lacks travel
tagged: bytes as ``{"hex": ...}``, tuples as ``{"tuple": [...]}``, a step as
``{"step": CLASS, ...fields}``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._lockstep import steps as _steps
from vfio_hil._lockstep.engine import Expected, Observation
from vfio_hil._lockstep.steps import Step
from vfio_hil._lockstep.timing import Timing

__all__ = [
    "MAX_LINE",
    "PROTOCOL",
    "AgentError",
    "decode_error",
    "decode_expected",
    "decode_observation",
    "decode_step",
    "decode_timing",
    "encode",
    "encode_error",
    "encode_expected",
    "encode_observation",
    "encode_step",
    "encode_timing",
    "parse",
    "value_in",
    "value_out",
]

# The version of the ops and their arguments, both ends' (hello says it):
# 2 added side_observe_many and side_clean.
PROTOCOL = 2

# A request or answer never comes near this (a region read is at most 4 KiB
# of hex); a longer line is a broken channel, not something to buffer.
MAX_LINE = 1 << 20

_STEP_CLASSES: dict[str, type] = {
    name: getattr(_steps, name)
    for name in _steps.__all__
    if dataclasses.is_dataclass(getattr(_steps, name, None))
}


class AgentError(VfioHilError):
    """The agent could not do what it was asked, or could not be reached."""


def value_out(value: Any) -> Any:
    """A Python value as JSON can carry it (bytes and tuples tagged)."""
    if isinstance(value, bytes | bytearray):
        return {"hex": bytes(value).hex()}
    if isinstance(value, tuple):
        return {"tuple": [value_out(v) for v in value]}
    if isinstance(value, list):
        return [value_out(v) for v in value]
    if isinstance(value, dict):
        return {k: value_out(v) for k, v in value.items()}
    return value


def value_in(value: Any) -> Any:
    """The inverse of ``value_out``."""
    if isinstance(value, list):
        return [value_in(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"hex"}:
            return bytes.fromhex(value["hex"])
        if set(value) == {"tuple"}:
            return tuple(value_in(v) for v in value["tuple"])
        return {k: value_in(v) for k, v in value.items()}
    return value


def encode_step(step: Step) -> dict[str, Any]:
    fields = {f.name: value_out(getattr(step, f.name)) for f in dataclasses.fields(step)}
    return {"step": type(step).__name__, **fields}


def decode_step(data: dict[str, Any]) -> Step:
    cls = _STEP_CLASSES.get(data.get("step", ""))
    if cls is None:
        raise AgentError(f"unknown step kind {data.get('step')!r}")
    fields = {k: value_in(v) for k, v in data.items() if k != "step"}
    step: Step = cls(**fields)
    return step


def encode_observation(obs: Observation) -> dict[str, Any]:
    return {
        "result": obs.result,
        "counters": list(obs.counters),
        "info": None if obs.info is None else list(obs.info),
        "command": obs.command,
    }


def decode_observation(data: dict[str, Any]) -> Observation:
    info = data["info"]
    return Observation(
        data["result"],
        tuple(data["counters"]),
        None if info is None else (int(info[0]), int(info[1])),
        data["command"],
    )


def encode_timing(timing: Timing) -> dict[str, Any]:
    return {f.name: getattr(timing, f.name) for f in dataclasses.fields(timing)}


def decode_timing(data: dict[str, Any]) -> Timing:
    return Timing(**data)


def encode_expected(item: Expected) -> dict[str, Any]:
    return {
        "step": encode_step(item.step),
        "late": item.late,
        "model": encode_observation(item.model),
        "timing": encode_timing(item.timing),
    }


def decode_expected(data: dict[str, Any]) -> Expected:
    return Expected(
        decode_step(data["step"]),
        bool(data["late"]),
        decode_observation(data["model"]),
        decode_timing(data["timing"]),
    )


def encode_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, VfioError):
        return {
            "kind": "VfioError",
            "errno": exc.errno or 0,
            "operation": exc.operation,
            "request": None if exc.request is None else repr(exc.request),
        }
    hint = exc.hint if isinstance(exc, VfioHilError) else ""
    message = exc.message if isinstance(exc, VfioHilError) else f"{type(exc).__name__}: {exc}"
    return {"kind": "AgentError", "message": message, "hint": hint}


def decode_error(data: dict[str, Any], where: str) -> Exception:
    """The exception an answer's ``error`` stands for; ``where`` names the agent."""
    if data.get("kind") == "VfioError":
        return VfioError(int(data["errno"]), str(data["operation"]), data.get("request"))
    return AgentError(f"{where}: {data.get('message')}", str(data.get("hint") or ""))


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def parse(raw: bytes) -> dict[str, Any]:
    """One received line as a message, or AgentError if it is not one."""
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise AgentError(f"not a message: {raw[:80]!r} ({exc})") from None
    if not isinstance(message, dict):
        raise AgentError(f"not a message: {raw[:80]!r}")
    return message

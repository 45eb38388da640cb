"""Runtime knobs and the extension's shared state.

Everything the extension keeps (capacity providers, execution environments, pending
traces, injection settings, the call log) registers a reset hook here, so that
``POST /moto-api/reset`` clears it together with moto's own backends.

All extension state is guarded by one re-entrant lock: the server is threaded and a test
double does not need finer locking. Code must never sleep while holding it.
"""
from __future__ import annotations

import copy
import random
import threading
import time
from typing import Any, Callable

LOCK = threading.RLock()

# Defaults are small so that tests are fast; each knob is documented in README.md.
DEFAULTS: dict[str, Any] = {
    # CreateCapacityProvider: Pending -> Active after this many seconds.
    "capacity_provider_active_delay_s": 0.2,
    # DeleteCapacityProvider: Deleting -> gone (404) after this many seconds.
    "capacity_provider_delete_delay_s": 0.2,
    # A published LMI version: Pending -> Active after this many seconds.
    "version_active_delay_s": 0.2,
    # UpdateFunctionCode/Configuration: LastUpdateStatus InProgress -> Successful.
    "function_update_delay_s": 0.0,
    # A default function's idle execution environment is reclaimed after this long.
    "default_env_idle_s": 300.0,
    # Init duration of a default function's cold start (really slept).
    "default_init_ms": 250.0,
    # Execution environments an LMI version starts when no scaling config says otherwise.
    "lmi_min_environments": 3,
    # Traces become visible to BatchGetTraces/GetTraceSummaries this long after the invoke.
    "trace_delay_s": 0.0,
    # Invokes record no trace at all.
    "drop_traces": False,
    # Added latency per operation, keys "service:Operation", "service:*" or "*".
    "latency_s": {},
    # Injected throttling and server errors, for every SigV4-signed request.
    "fault": {
        "throttle_rate": 0.0,
        "error_rate": 0.0,
        "seed": None,
        "operations": [],
        "max_faults": None,
    },
}

_FAULT_KEYS = set(DEFAULTS["fault"])


class ConfigError(ValueError):
    """A bad control-endpoint request (answered with HTTP 400)."""


def _number(key: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number")
    if value < 0:
        raise ConfigError(f"{key} must be >= 0")
    if integer and int(value) != value:
        raise ConfigError(f"{key} must be an integer")
    return int(value) if integer else float(value)


class Config:
    """The knobs, read on every use so that a change applies to the next request."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = copy.deepcopy(DEFAULTS)
        self.rng = random.Random()
        self.faults_injected = 0

    def __getitem__(self, key: str) -> Any:
        with LOCK:
            return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        with LOCK:
            out = copy.deepcopy(self._values)
            out["fault"]["injected"] = self.faults_injected
            return out

    def reset(self) -> None:
        with LOCK:
            self._values = copy.deepcopy(DEFAULTS)
            self.rng = random.Random()
            self.faults_injected = 0

    def update(self, changes: Any) -> None:
        """Merge a partial config. ``latency_s`` entries are merged (a null value removes
        one); ``fault`` replaces the whole fault config and restarts its random stream."""
        if not isinstance(changes, dict):
            raise ConfigError("the body must be a JSON object")
        unknown = set(changes) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown keys: {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        staged = copy.deepcopy(self._values)
        for key, value in changes.items():
            if key == "latency_s":
                if not isinstance(value, dict):
                    raise ConfigError("latency_s must be an object")
                for op, seconds in value.items():
                    if seconds is None:
                        staged["latency_s"].pop(op, None)
                    else:
                        staged["latency_s"][op] = _number(f"latency_s[{op}]", seconds)
            elif key == "fault":
                staged["fault"] = self._parse_fault(value)
            elif key == "drop_traces":
                if not isinstance(value, bool):
                    raise ConfigError("drop_traces must be a boolean")
                staged[key] = value
            elif key == "lmi_min_environments":
                staged[key] = _number(key, value, integer=True)
            else:
                staged[key] = _number(key, value)
        with LOCK:
            self._values = staged
            if "fault" in changes:
                self.rng = random.Random(staged["fault"]["seed"])
                self.faults_injected = 0

    @staticmethod
    def _parse_fault(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError("fault must be an object")
        unknown = set(value) - _FAULT_KEYS
        if unknown:
            raise ConfigError(f"unknown fault keys: {sorted(unknown)}")
        fault = copy.deepcopy(DEFAULTS["fault"])
        for key in ("throttle_rate", "error_rate"):
            if key in value:
                rate = _number(f"fault.{key}", value[key])
                if rate > 1:
                    raise ConfigError(f"fault.{key} must be between 0 and 1")
                fault[key] = rate
        if fault["throttle_rate"] + fault["error_rate"] > 1:
            raise ConfigError("fault.throttle_rate + fault.error_rate must be <= 1")
        if value.get("seed") is not None:
            if isinstance(value["seed"], bool) or not isinstance(value["seed"], int):
                raise ConfigError("fault.seed must be an integer")
            fault["seed"] = value["seed"]
        ops = value.get("operations") or []
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise ConfigError("fault.operations must be a list of 'service:Operation'")
        fault["operations"] = ops
        if value.get("max_faults") is not None:
            fault["max_faults"] = _number("fault.max_faults", value["max_faults"], integer=True)
        return fault


CONFIG = Config()

_reset_hooks: list[Callable[[], None]] = [CONFIG.reset]


def on_reset(hook: Callable[[], None]) -> Callable[[], None]:
    """Register a function that clears one part of the extension's state."""
    _reset_hooks.append(hook)
    return hook


def reset_all() -> None:
    with LOCK:
        for hook in _reset_hooks:
            hook()


def now() -> float:
    """Monotonic clock for state transitions (Pending -> Active, idle expiry)."""
    return time.monotonic()

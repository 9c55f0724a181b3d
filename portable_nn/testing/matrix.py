"""The backend × device × dtype matrix: which combinations to test, and why some cannot run here."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._backend import BACKENDS, FLOAT_DTYPES, device_matrix, resolve_device, resolve_namespace, supported_dtypes
from ..backends import all_adapters, get_adapter
from ..errors import PortableNNError

__all__ = ["DEFAULT_DTYPES", "Combination", "Selection", "combinations", "device_matches", "third_party_backends"]

DEFAULT_DTYPES: tuple[str, ...] = ("float32", "float64")
#: array-api-strict devices run by default; the others (device2, no_float64, ...) on request.
_STRICT_DEFAULT_DEVICES = ("cpu", "device1")


def device_matches(wanted: str, device: str) -> bool:
    """Whether a requested device (``"cuda"``, ``"cpu"``, ``"cuda:1"``, ``"device1"``) names ``device``.

    ``"cuda"`` and ``"cpu"`` name every device of that kind (``"cuda:0"``, ``"cuda:1"``, ``"cpu:1"``).
    """
    return device == wanted or (wanted in ("cuda", "cpu") and device.startswith(wanted + ":"))


@dataclass(frozen=True)
class Combination:
    """One cell of the test matrix; ``reason`` says why it cannot run here (None = it can)."""

    backend: str
    device: str
    dtype: str | None = None
    reason: str | None = None

    @property
    def id(self) -> str:
        parts = [self.backend, self.device] + ([self.dtype] if self.dtype else [])
        return "-".join(parts)


def third_party_backends() -> tuple[str, ...]:
    """The backends beyond the built-in ones (third-party tier and registered adapters): their tests are marked
    ``third_party``, and the rest of the suite runs on them only when ``--backends`` names them."""
    return tuple(a.name for a in all_adapters() if a.tier not in ("ci", "gpu"))


def _split(text: str | None) -> list[str] | None:
    if text is None or not text.strip() or text.strip() == "all":
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Selection:
    """What the user asked for: backends (``torch`` or ``torch:cuda``), devices and dtypes (None = default)."""

    backends: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, backends: str | None, devices: str | None, dtypes: str | None) -> Selection:
        b, d, t = _split(backends), _split(devices), _split(dtypes)
        for name in b or []:
            if name.split(":", 1)[0] not in BACKENDS + third_party_backends():
                known = ", ".join(BACKENDS + third_party_backends())
                raise PortableNNError(f"unknown backend {name!r} in --backends; known: {known}")
        for name in t or []:
            if name not in FLOAT_DTYPES:
                raise PortableNNError(f"unknown dtype {name!r} in --dtypes; known: {', '.join(FLOAT_DTYPES)}")
        return cls(tuple(b) if b else None, tuple(d) if d else None, tuple(t) if t else None)

    @classmethod
    def from_env(cls) -> Selection:
        return cls.parse(
            os.environ.get("PORTABLE_NN_BACKENDS"),
            os.environ.get("PORTABLE_NN_DEVICES"),
            os.environ.get("PORTABLE_NN_DTYPES"),
        )

    def third_party(self) -> Selection:
        """The selection for a test marked ``third_party``: the named third-party backends, or all of them."""
        tier = third_party_backends()
        named = tuple(b for b in self.backends or () if b.partition(":")[0] in tier)
        return Selection(named or (tier if self.backends is None else ()), self.devices, self.dtypes)

    def _backend_devices(self) -> dict[str, tuple[str, ...] | None]:
        """backend -> devices pinned by a ``backend:device`` entry (None = any device)."""
        chosen: dict[str, list[str] | None] = {}
        for entry in BACKENDS if self.backends is None else self.backends:
            name, _, device = entry.partition(":")
            if not device:
                chosen[name] = None
            elif chosen.get(name, []) is not None:
                chosen.setdefault(name, []).append(device)  # type: ignore[union-attr]
        return {k: (tuple(v) if v is not None else None) for k, v in chosen.items()}

    def wants_device(self, backend: str, device: str, pinned: tuple[str, ...] | None) -> bool:
        wanted = pinned or self.devices
        if wanted is None:
            return backend != "array_api_strict" or device in _STRICT_DEFAULT_DEVICES or device.startswith("cuda")
        return any(device_matches(w, device) for w in wanted)


def combinations(selection: Selection, *, with_dtype: bool, with_device: bool) -> list[Combination]:
    """Every combination the selection asks for, the ones that cannot run carrying their reason.

    ``with_device=False`` keeps one (the default) device per backend; ``with_dtype=False``
    leaves the dtype axis out.
    """
    found: list[Combination] = []
    for backend, pinned in selection._backend_devices().items():
        devices = [(d, r) for d, r in device_matrix(backend) if selection.wants_device(backend, d, pinned)]
        if pinned or selection.devices:
            known = {d for d, _ in device_matrix(backend)}
            for want in pinned or selection.devices or ():
                if not any(device_matches(want, d) for d in known):
                    devices.append((want, f"{backend} has no device {want!r} here"))
        if not with_device:
            devices = devices[:1]
        for device, reason in devices:
            if not with_dtype:
                found.append(Combination(backend, device, None, reason))
                continue
            usable = _usable_dtypes(backend, device) if reason is None else []
            for dtype in selection.dtypes or DEFAULT_DTYPES:
                why = reason
                if why is None and dtype not in usable:
                    why = f"{backend} on {device} has no {dtype}{get_adapter(backend).missing_dtype_hint(dtype)}"
                found.append(Combination(backend, device, dtype, why))
    return found


def _usable_dtypes(backend: str, device: str) -> list[str]:
    xp = resolve_namespace(backend)
    return supported_dtypes(xp, resolve_device(xp, device))

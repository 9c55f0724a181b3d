"""The backend × device × dtype matrix: which combinations to test, and why some cannot run here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .._backend import BACKENDS, FLOAT_DTYPES, device_matrix, resolve_device, resolve_namespace, supported_dtypes
from ..backends import all_adapters, get_adapter
from ..errors import PortableNNError

__all__ = [
    "DEFAULT_DTYPES",
    "Combination",
    "Selection",
    "check_selection",
    "combinations",
    "device_matches",
    "third_party_backends",
]

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
        # a name given twice (--dtypes float32,float32) would run every test twice: keep the first
        return cls(*(tuple(dict.fromkeys(names)) if names else None for names in (b, d, t)))

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


_INDEXED = re.compile(r"(cpu|cuda):(0|[1-9][0-9]*)")


def _could_have(backend: str, device: str) -> bool:
    """Whether ``backend`` could have a device named ``device`` on some machine: one it lists here (usable or
    not), or ``cuda:N``/``cpu:N`` (N >= 0) where it lists that kind. ``CPU``, ``cuda:-1``, ``nosuch``: never."""
    known = [d for d, _ in device_matrix(backend)]
    if any(device_matches(device, d) for d in known):
        return True
    indexed = _INDEXED.fullmatch(device)
    return indexed is not None and any(d.split(":", 1)[0] == indexed.group(1) for d in known)


def check_selection(selection: Selection) -> None:
    """Raise :class:`PortableNNError` for a selection that can only skip: it would test nothing and pass.

    - every device asked for (``--devices``, or pinned as ``torch:cuda``) must be one a selected
      backend could have (:func:`_could_have`): a typo is refused, not skipped;
    - when a selected device runs here, some combination must run: a dtype no selected
      backend has on those devices (``--backends numpy --dtypes bfloat16``) is refused.

    A device or backend this machine lacks (``cuda`` without a GPU, cupy not installed) still
    gives skipped rows with their reason, as without a selection.
    """
    wanted: dict[str, list[str]] = {}  # device -> the backends it is asked of
    for backend, pinned in selection._backend_devices().items():
        for device in pinned or selection.devices or ():
            wanted.setdefault(device, []).append(backend)
    for device, backends in wanted.items():
        if not any(_could_have(backend, device) for backend in backends):
            known = sorted({d for b in backends for d, _ in device_matrix(b)} | {"cpu", "cuda"})
            raise PortableNNError(
                f"device {device!r} names no device of {', '.join(backends)}: the selection would skip every test; "
                f"device names: {', '.join(known)}, cuda:N, cpu:N (N >= 0)"
            )
    if selection.dtypes is None:
        return
    devices = [c for c in combinations(selection, with_dtype=False, with_device=True) if c.reason is None]
    if not devices:
        return  # nothing runs here for lack of hardware or a backend: skipped with those reasons
    if not any(c.reason is None for c in combinations(selection, with_dtype=True, with_device=True)):
        have = "; ".join(
            f"{c.backend} on {c.device}: {', '.join(_usable_dtypes(c.backend, c.device))}" for c in devices
        )
        raise PortableNNError(
            f"no selected backend here has dtype {', '.join(selection.dtypes)} on the selected devices "
            f"({have}): the selection would skip every test"
        )


def _usable_dtypes(backend: str, device: str) -> list[str]:
    xp = resolve_namespace(backend)
    return supported_dtypes(xp, resolve_device(xp, device))

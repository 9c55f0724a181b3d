"""What the command line writes: ``--json`` figures, ``--plot`` loss curves, ``--save`` / ``--export-onnx`` the model.

Every output path is checked by :func:`check_output_path` before any training starts, so a
typo costs nothing: a directory, a missing parent folder or a place that cannot be written
is refused up front. The path reported afterwards is the one actually written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import Data
    from .train import RunResult

__all__ = [
    "check_metadata_fits",
    "check_output_path",
    "export_model",
    "save_model",
    "saver",
    "write_json",
    "write_plot",
]

#: Suffix added to a ``--plot`` path that has none (matplotlib would add it silently).
PLOT_SUFFIX = ".png"


def check_output_path(option: str, text: str, *, png: bool = False) -> Path:
    """The path ``option`` will write, checked: raises ``ValueError`` (one line) if it cannot be written.

    ``png``: a path without a suffix gets ``.png`` (the returned path is the real one); a
    suffix must be an image format matplotlib writes. Nothing is left behind by the check.
    """
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise ValueError(f"{option} {text!r}: names a directory, expected a file path")
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{option} {text!r}: is a directory, expected a file path")
    if png:
        if not path.suffix:
            path = path.with_name(path.name + PLOT_SUFFIX)
        else:
            formats = _plot_formats()
            if formats is not None and path.suffix.lower().lstrip(".") not in formats:
                raise ValueError(
                    f"{option} {text!r}: unknown image format {path.suffix!r}; known: {', '.join(sorted(formats))}"
                )
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{option} {str(path)!r}: is a directory, expected a file path")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ValueError(f"{option} {text!r}: directory {str(parent.resolve())!r} {what}")
    if path.exists() and not path.is_file():
        raise ValueError(f"{option} {str(path)!r}: exists and is not a regular file")
    try:
        if path.exists():
            with path.open("ab"):  # appends nothing: only checks that it can be written
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".check"):
                pass
    except OSError as exc:
        raise ValueError(f"{option} {str(path)!r}: cannot write there ({exc.strerror or exc})") from None
    return path


def _plot_formats() -> set[str] | None:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # --plot without matplotlib is refused separately
        return None
    return set(Figure().canvas.get_supported_filetypes())


def write_json(path: Path, figures: dict[str, Any]) -> Path:
    """Write ``figures`` (see :func:`portable_nn.cli.report.figures`) as indented JSON; returns ``path``."""
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return path


def write_plot(path: Path, results: list[RunResult], title: str) -> Path:
    """Plot every run's loss curve (log scale) into ``path``; returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ["-", "--", ":", "-."]
    try:
        for index, r in enumerate(results):
            epochs = range(1, len(r.curve) + 1)
            width = max(0.8, 3.0 - 0.5 * index)  # later runs thinner, so coinciding curves all stay visible
            ax.plot(epochs, r.curve, styles[index % len(styles)], linewidth=width, label=r.spec.label)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss (cross-entropy)")
        ax.set_title(title, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path


def saver() -> Callable[..., None] | None:
    """``portable_nn.save`` when this installation has it (looked up at call time), else None."""
    package = sys.modules.get("portable_nn")
    save = getattr(package, "save", None)
    return save if callable(save) else None


#: Metadata keys ``--save`` writes next to the model (JSON values), what predicting on raw data needs.
SAVED_METADATA = ("cli.labels", "cli.feature_mean", "cli.feature_std")


#: Bytes of a saved file's header kept for the model itself (tensor entries, config): the metadata
#: ``--save`` writes must fit the rest of the format's header limit.
MODEL_HEADER_RESERVE = 1_000_000


def _metadata(run: str, data: Data | None) -> dict[str, str]:
    metadata = {"cli.run": run}
    if data is not None:
        values = (data.labels, data.mean.tolist(), data.std.tolist())
        metadata.update({key: json.dumps(value) for key, value in zip(SAVED_METADATA, values, strict=True)})
    return metadata


def metadata_budget() -> int:
    """The most bytes of metadata ``--save`` writes: the file format's header limit less the model's reserve."""
    from ..io._safetensors_format import MAX_HEADER

    return MAX_HEADER - MODEL_HEADER_RESERVE


def check_metadata_fits(data: Data, run: str = "") -> None:
    """Raise ``ValueError`` (one line) when ``data``'s labels and feature statistics cannot fit a saved file's
    header: checked before training, so ``--save`` cannot fail (or write a file ``load`` refuses) at the end."""
    size = len(json.dumps(_metadata(run, data)).encode("utf-8"))
    budget = metadata_budget()
    if size > budget:
        longest = max((len(str(label)) for label in data.labels), default=0)
        raise ValueError(
            f"--save: the labels and feature statistics take {size:_} bytes of metadata, more than a saved "
            f"file's header holds ({budget:_}); {len(data.labels)} labels, the longest {longest:_} characters"
        )


def save_model(result: RunResult, path: Path, data: Data | None = None) -> Path:
    """Persist ``result``'s trained model to ``path`` (whole: ``pnn.load(path)`` rebuilds it); returns the path.

    With ``data``, the metadata also holds what using the model on raw features needs, as JSON:
    ``cli.labels`` (class ``i``'s label), ``cli.feature_mean`` and
    ``cli.feature_std`` (raw ``x`` -> ``(x - mean) / std`` before the model). The one
    place ``--save`` goes through.
    """
    save = saver()
    if save is None:
        raise RuntimeError("portable_nn.save is not available")
    save(result.model, path, _metadata(result.spec.label, data))
    return path


def export_model(result: RunResult, path: Path, data: Data) -> Path:
    """Export ``result``'s trained model to ONNX at ``path`` (float32, a symbolic batch); returns the path.

    The graph takes standardized features, ``(x - mean) / std`` as for ``--save``'s model.
    """
    from ..io.onnx_export import export_onnx

    export_onnx(result.model, path, input_shape=(None, data.features), dtype="float32")
    return path

"""Checkpoints in the safetensors format: ``save``, ``load``, ``load_state``, ``load_metadata``, ``load_optimizer``.

Never pickle. One idea per module:

- :mod:`~portable_nn.io.model_files`: ``save`` (a model with its registered class and config, or a
  state dict) and ``load`` (rebuilds any registered model on any backend, device and dtype);
- :mod:`~portable_nn.io.state_files`: ``load_state`` (every tensor by name) and ``load_metadata``;
- :mod:`~portable_nn.io.optimizer_files`: an optimizer's state written by ``save(..., optimizer=opt)``
  and ``load_optimizer``;
- :mod:`~portable_nn.io.registry`: the classes a file may name (``pnn.register``,
  ``pnn.register_optimizer``); :mod:`~portable_nn.io.onnx_export`: ``pnn.export_onnx``.

Files load with the ``safetensors`` package and files it writes load here. Reading validates the
whole file (:mod:`portable_nn.io._safetensors_format`), the config (:mod:`portable_nn.io._model_config`)
and the parameter table before building anything, so a bad file raises SerializationError and
nothing is half-loaded; writes are atomic (:mod:`portable_nn.io._atomic_write`).
"""

from __future__ import annotations

from .model_files import load, save
from .optimizer_files import load_optimizer
from .state_files import load_metadata, load_state

__all__ = ["load", "load_metadata", "load_optimizer", "load_state", "save"]

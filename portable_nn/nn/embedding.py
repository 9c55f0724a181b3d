"""``Embedding(num_embeddings, embedding_dim, padding_idx)``: a lookup table of rows by integer index, as torch.nn.

Forward ``y = weight[x]`` (:func:`portable_nn.nn.scatter.gather_rows`: out-of-range indices are an
``IndexOutOfRangeError``); backward ``dL/dweight = index_add(x, dL/dy, num_embeddings)``
(:func:`portable_nn.nn.scatter.index_add`: repeated indices summed, through a backend's scatter-add
where one exists), with the ``padding_idx`` row's gradient zero. The input is integer: it has no
gradient (``functional_backward`` returns None for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError
from ..init import Seed
from .grad_mode import CHECKED, Call
from .module import Module
from .scatter import gather_rows, index_add

__all__ = ["Embedding"]

Array = Any


class Embedding(Module):
    """``y = weight[x]``: ``x`` integer indices of any shape -> ``y`` of shape ``x.shape + (embedding_dim,)``.

    ``weight`` ``(num_embeddings, embedding_dim)`` is drawn from ``N(0, 1)`` (PyTorch's rule, from the
    module's seeded host RNG) with the ``padding_idx`` row zero; that row gets no gradient.

    Parameters
    ----------
    num_embeddings : int
        The number of rows.
    embedding_dim : int
        The size of a row.
    padding_idx : int or None
        A row that stays as it is (zero at initialization, no gradient); negative counts from the end.
    xp, device, dtype, seed
        Placement, as for every :class:`~portable_nn.Module`.

    Raises
    ------
    ArgumentError
        A bad size or ``padding_idx``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> table = pnn.Embedding(5, 2, padding_idx=0, seed=0)
    >>> y = table(table.xp.asarray([[0, 3, 3]]))
    >>> y.shape, y[0, 0].tolist()
    ((1, 3, 2), [0.0, 0.0])
    >>> table.backward(table.xp.ones_like(y)) is None, table.grad_weight[3].tolist()
    (True, [2.0, 2.0])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        xp: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: Seed = None,
    ) -> None:
        super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"Embedding: {name} must be a positive int, got {value!r}")
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
                raise ArgumentError(f"Embedding: padding_idx must be an int or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ArgumentError(f"Embedding: padding_idx must be within num_embeddings, got {padding_idx}")
            padding_idx = padding_idx % num_embeddings  # torch's rule for a negative index
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx

        def normal(rng: Any, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> Any:
            values = rng.standard_normal(shape)
            if padding_idx is not None:
                values[padding_idx] = 0.0
            return values

        self.add_parameter("weight", (num_embeddings, embedding_dim), init=normal)

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(weight[x], x)``.

        Parameters
        ----------
        params : mapping
            ``weight``.
        x : array
            Integer indices in ``[0, num_embeddings)``, any shape, on the module's backend and device.
        call : Call
            ``call.validate``: check ``x`` (namespace, device, an integer dtype).

        Returns
        -------
        y : array
            ``x.shape + (embedding_dim,)``.
        saved : array
            ``x``.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError
            ``x`` is not an integer array of the module's backend and device.
        IndexOutOfRangeError
            An index outside ``[0, num_embeddings)``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> table = pnn.Embedding(3, 4, seed=0)
        >>> table.functional_forward(table.named_parameters(), table.xp.asarray([2, 0]))[0].shape
        (2, 4)
        """
        if call.validate:
            self.check_input(x, kind="integral")
        return gather_rows(params["weight"], x), x

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(None, {"weight": index_add(x, dL/dy, num_embeddings)})`` (the ``padding_idx`` row zero).

        Parameters
        ----------
        params : mapping
            ``weight``.
        saved : array
            The forward's indices.
        grad_output : array
            ``dL/dy``, ``x.shape + (embedding_dim,)``.
        need_input_grad : bool
            Unused: integer indices have no gradient (always None).
        call : Call
            ``call.validate``: check ``grad_output``.

        Returns
        -------
        grad_x : None
            Integer inputs have no gradient.
        grads : dict of str to array
            ``{"weight": ...}``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> table = pnn.Embedding(3, 1, seed=0)
        >>> x = table.xp.asarray([2, 2, 0])
        >>> y, saved = table.functional_forward(table.named_parameters(), x)
        >>> table.functional_backward(table.named_parameters(), saved, table.xp.ones_like(y))[1]["weight"].tolist()
        [[1.0], [0.0], [2.0]]
        """
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=(*saved.shape, self.embedding_dim))
        grad = index_add(saved, grad_output, self.num_embeddings)
        if self.padding_idx is not None:
            xp = self.xp
            rows = xp.reshape(xp.arange(self.num_embeddings, device=self.device), (-1, 1))
            grad = xp.where(rows == self.padding_idx, xp.zeros_like(grad), grad)
        return None, {"weight": grad}

    def __repr__(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{padding}, {self._placement()})"

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values).

        Returns
        -------
        dict
            ``num_embeddings``, ``embedding_dim``, ``padding_idx``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Embedding(5, 2).get_config()["padding_idx"] is None
        True
        """
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
        }

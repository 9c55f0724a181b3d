"""Counter-based random numbers that are the same on every backend: Threefry-2x32 in array-API integer ops.

A *key* is an ``int32`` array of shape ``(2,)`` on the namespace and device where the numbers are
wanted (the two 32-bit words of a Threefry key, stored as their two's-complement bit patterns). The
numbers are a pure function of the key and the position of each element: no state lives anywhere,
so a key can be an argument of a compiled program (``jax.jit``, ``torch.compile``) and a batch of
keys can be mapped over (``jax.vmap``), and the same key gives bit-identical numbers on NumPy,
CuPy, PyTorch, JAX, array-api-strict and Dask.

Why array ops rather than host draws: the only operations used are ``int32`` addition (which
wraps modulo ``2**32`` on every backend: two's-complement hardware arithmetic in NumPy, CuPy,
PyTorch and XLA), shifts, ``&``, ``|`` and ``^`` on values kept within 32 bits, and exact
integer-to-float conversions of at most 26-bit values. Unsigned dtypes (few operations in PyTorch)
and ``int64`` (32-bit by default in JAX) are avoided. A logical right shift is written as an
arithmetic shift followed by a mask.

The stream is the one ``jax.random`` draws with its default Threefry implementation
(``jax_threefry_partitionable``, JAX's default since 0.5): :func:`key` is ``jax.random.PRNGKey``,
:func:`fold_in`, :func:`split`, :func:`uniform` (float32 and float64) and :func:`bernoulli` (float32
``p``) give ``jax.random``'s numbers for the same key. The block function passes Random123's
known-answer tests for Threefry-2x32-20.

A :class:`RandomStream` is a seed and a position (plain ints, saved with a model): its
:meth:`~RandomStream.key` is ``fold_in(key(seed), position)``, computed on the host.

Examples
--------
>>> import array_api_compat.numpy as xp
>>> from portable_nn.nn import rng
>>> k = rng.key(42, xp=xp)
>>> rng.uniform(k, (3,)).dtype
dtype('float32')
>>> a, b = rng.split(k, 2)
>>> bool(xp.all(rng.uniform(a, (3,)) == rng.uniform(rng.fold_in(k, 0), (3,))))
True
"""

from __future__ import annotations

import math
import operator
import struct
from dataclasses import dataclass
from typing import Any

from .._backend import (
    device_of,
    dtype_name,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_on,
    to_host,
)
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..typing import Array, Backend, Device, DType

__all__ = ["RandomStream", "bernoulli", "fold_in", "key", "key_data", "random_bits", "split", "uniform"]

_MASK32 = 0xFFFFFFFF
#: Threefry's key-schedule parity constant (Random123's SKEIN_KS_PARITY32).
_PARITY = 0x1BD11BDA
#: Rotation amounts of Threefry-2x32, alternating per group of four rounds.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
#: Elements of one draw are numbered by an int32 counter.
_MAX_ELEMENTS = 2**31


def _signed(word: int) -> int:
    """The int32 bit pattern of an unsigned 32-bit word."""
    return word - 2**32 if word >= 2**31 else word


def _threefry_host(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32-20 of one block on Python ints (unsigned words): the host twin of :func:`_threefry`."""
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = (x0 + k0) & _MASK32, (x1 + k1) & _MASK32
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = (x0 + x1) & _MASK32
            x1 = (((x1 << r) | (x1 >> (32 - r))) & _MASK32) ^ x0
        x0 = (x0 + schedule[(group + 1) % 3]) & _MASK32
        x1 = (x1 + schedule[(group + 2) % 3] + group + 1) & _MASK32
    return x0, x1


def _rotate_left(x: Array, r: int) -> Array:
    """``x`` (int32 bit patterns) rotated left by ``r`` bits: the right shift is arithmetic, so it is masked."""
    return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))


def _threefry(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """Threefry-2x32-20 on int32 arrays (broadcast together); additions wrap modulo 2**32."""
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = x0 + k0, x1 + k1
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + schedule[(group + 1) % 3]
        x1 = (x1 + schedule[(group + 2) % 3]) + (group + 1)  # array + array first: no scalar-only overflow
    return x0, x1


def _check_key(k: Any, what: str = "key") -> Any:
    if not hasattr(k, "shape") or not hasattr(k, "dtype"):
        raise ArgumentTypeError(f"{what}: expected an int32 array of shape (2,) from rng.key, got {type(k).__name__}")
    xp = namespace_of(k)
    if tuple(k.shape) != (2,):
        raise ShapeError(f"{what}: expected shape (2,) (one Threefry key; vmap over a batch of keys), got {k.shape}")
    if k.dtype != xp.int32:
        raise DTypeError(f"{what}: expected dtype int32 (a key from rng.key), got {dtype_name(xp, k.dtype)}")
    return xp


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise ArgumentTypeError(f"shape: expected a tuple of ints, got {shape!r}")
    if any(d < 0 for d in shape):
        raise ArgumentError(f"shape: dimensions must be >= 0, got {shape}")
    if math.prod(shape) >= _MAX_ELEMENTS:
        raise ArgumentError(f"shape: at most 2**31 - 1 elements per draw, got {math.prod(shape)}")
    return shape


def _words(k: Array) -> tuple[Array, Array]:
    """The key's two words as (1,)-arrays (1-D, so that NumPy never falls back to overflow-checked scalars)."""
    return k[0:1], k[1:2]


def _check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as a Python int in ``[0, 2**64)`` (NumPy integers accepted; bools, floats and strings refused)."""
    if isinstance(seed, bool) or not hasattr(type(seed), "__index__"):
        raise ArgumentTypeError(f"{what}: expected an int in [0, 2**64), got {type(seed).__name__}")
    value: int = operator.index(seed)
    if not 0 <= value < 2**64:
        raise ArgumentError(f"{what}: expected an int in [0, 2**64), got {value}")
    return value


def _key_array(words: tuple[int, int], xp: Any, device: Any) -> Array:
    return xp.asarray([_signed(words[0]), _signed(words[1])], dtype=xp.int32, device=device)


def key(seed: int, *, xp: Backend, device: Device = None) -> Array:
    """The key of ``seed``: an int32 array ``[seed >> 32, seed & 0xFFFFFFFF]`` (``jax.random.PRNGKey``'s words).

    Parameters
    ----------
    seed : int
        In ``[0, 2**64)``.
    xp : str, namespace or array
        The backend of the key (and of everything drawn from it).
    device : device, optional
        The key's device (default: the backend's default device).

    Returns
    -------
    array
        Shape ``(2,)``, dtype ``int32``.

    Raises
    ------
    ArgumentTypeError, ArgumentError
        ``seed`` is not an int, or out of range.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> rng.key_data(rng.key(2**32 + 5, xp="numpy"))
    (1, 5)
    """
    seed = _check_seed(seed)
    namespace = resolve_namespace(xp)
    return _key_array((seed >> 32, seed & _MASK32), namespace, resolve_device(namespace, device))


def key_data(k: Array) -> tuple[int, int]:
    """The key's two words as unsigned Python ints (a read-back to the host: not inside a compiled program).

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).

    Returns
    -------
    tuple of int
        ``(word0, word1)``, each in ``[0, 2**32)``.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> rng.key_data(rng.fold_in(rng.key(0, xp="numpy"), 1)) == rng.RandomStream(0, 1).key_data()
    True
    """
    _check_key(k)
    host = to_host(k)
    return int(host[0]) & _MASK32, int(host[1]) & _MASK32


def fold_in(k: Array, data: int | Array) -> Array:
    """A new key from ``k`` and ``data`` (a step number, a layer index, an example index...).

    ``fold_in(k, d)`` is Threefry of the block ``(d >> 32, d & 0xFFFFFFFF)`` under ``k``:
    ``jax.random.fold_in``. ``data`` may be an integer array (traced inside a compiled program
    too): one key per element, shape ``data.shape + (2,)``; array data is folded in as its low 32
    bits (``jax.random.fold_in``'s rule).

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).
    data : int or integer array
        An int in ``[0, 2**64)``, or an integer array of ``k``'s namespace and device.

    Returns
    -------
    array
        A key (shape ``(2,)``), or ``data.shape + (2,)`` keys for array data.

    Raises
    ------
    ArgumentTypeError, ArgumentError, DTypeError, ShapeError
        A malformed key or ``data``.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> k = rng.key(7, xp="numpy")
    >>> rng.fold_in(k, 3).shape, rng.fold_in(k, rng.key(0, xp="numpy")).shape
    ((2,), (2, 2))
    """
    xp = _check_key(k)
    k0, k1 = _words(k)
    if not hasattr(data, "shape"):  # an int (a NumPy integer too)
        data = _check_seed(data, "data")
        high = xp.full((1,), _signed(data >> 32), dtype=xp.int32, device=device_of(k))
        low = xp.full((1,), _signed(data & _MASK32), dtype=xp.int32, device=device_of(k))
        y0, y1 = _threefry(k0, k1, high, low)
        return xp.concat([y0, y1])
    if not hasattr(data, "dtype") or not xp.isdtype(data.dtype, "integral"):
        raise ArgumentTypeError(f"data: expected an int or an integer array, got {type(data).__name__}")
    shape = tuple(data.shape)
    low = xp.reshape(xp.astype(data, xp.int32), (-1,))
    y0, y1 = _threefry(k0, k1, xp.zeros_like(low), low)
    return xp.reshape(xp.stack([y0, y1], axis=1), (*shape, 2))


def split(k: Array, num: int = 2) -> Array:
    """``num`` independent keys from ``k``: ``fold_in(k, i)`` for ``i`` in ``range(num)`` (``jax.random.split``).

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).
    num : int
        How many keys (``>= 0``).

    Returns
    -------
    array
        Shape ``(num, 2)``: row ``i`` is a key.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> rng.split(rng.key(0, xp="numpy"), 4).shape
    (4, 2)
    """
    xp = _check_key(k)
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
        raise ArgumentError(f"num: expected an int >= 0, got {num!r}")
    return fold_in(k, xp.arange(_check_shape((num,))[0], dtype=xp.int32, device=device_of(k)))


def random_bits(k: Array, shape: tuple[int, ...] | int) -> Array:
    """32 random bits per element, as int32 bit patterns (``jax.random.bits``' uint32 values, reinterpreted).

    Element ``i`` (C order) is ``y0 ^ y1`` for ``(y0, y1)`` = Threefry of the block ``(0, i)`` under ``k``.

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).
    shape : tuple of int or int
        The shape drawn (fewer than ``2**31`` elements).

    Returns
    -------
    array
        int32, of ``shape``, on ``k``'s namespace and device.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> rng.random_bits(rng.key(0, xp="numpy"), (2, 3)).dtype
    dtype('int32')
    """
    xp = _check_key(k)
    y0, y1 = _blocks(xp, k, _check_shape(shape))
    return xp.reshape(y0 ^ y1, shape if isinstance(shape, tuple) else (shape,))


def _blocks(xp: Any, k: Array, shape: tuple[int, ...]) -> tuple[Array, Array]:
    """Threefry of the blocks ``(0, i)``, ``i`` in ``range(prod(shape))``, flat."""
    counter = xp.arange(math.prod(shape), dtype=xp.int32, device=device_of(k))
    k0, k1 = _words(k)
    return _threefry(k0, k1, xp.zeros_like(counter), counter)


def _float_name(xp: Any, k: Array, dtype: DType) -> tuple[Any, str]:
    native = supported_on(xp, device_of(k), resolve_dtype(xp, dtype))
    name = dtype_name(xp, native)
    if name not in ("float32", "float64"):
        raise DTypeError(f"dtype: uniform draws float32 or float64, got {name}")
    return native, name


def uniform(
    k: Array, shape: tuple[int, ...] | int, *, dtype: DType = "float32", low: float = 0.0, high: float = 1.0
) -> Array:
    """Uniform numbers in ``[low, high)`` from the key ``k`` (``jax.random.uniform``'s numbers).

    float32 takes 23 bits per element (``(bits >>> 9) * 2**-23``); float64 takes 52 bits of
    the block's two words (``((y0 << 32 | y1) >>> 12) * 2**-52``). Both conversions are exact,
    so every backend gives the same numbers; ``low + u * (high - low)`` is then rounded in
    ``dtype`` (and kept ``>= low``).

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).
    shape : tuple of int or int
        The shape drawn (fewer than ``2**31`` elements).
    dtype : str or dtype
        ``"float32"`` (default) or ``"float64"``, or the backend's dtype object.
    low, high : float
        The interval.

    Returns
    -------
    array
        Of ``shape`` and ``dtype``, on ``k``'s namespace and device.

    Raises
    ------
    DTypeError
        A dtype other than float32 or float64, or one the device lacks.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> u = rng.uniform(rng.key(0, xp="numpy"), (1000,), dtype="float64")
    >>> bool((u >= 0).all() and (u < 1).all()), round(float(u.mean()), 1)
    (True, 0.5)
    """
    xp = _check_key(k)
    native, name = _float_name(xp, k, dtype)
    shape = _check_shape(shape)
    y0, y1 = _blocks(xp, k, shape)
    if name == "float32":
        u = xp.astype((y0 ^ y1) >> 9 & 0x7FFFFF, native) * 2.0**-23
    else:
        high_word = xp.astype(y0 >> 16 & 0xFFFF, native) * 2.0**16 + xp.astype(y0 & 0xFFFF, native)
        u = (high_word * 2.0**20 + xp.astype(y1 >> 12 & 0xFFFFF, native)) * 2.0**-52
    if (low, high) != (0.0, 1.0):
        u = xp.maximum(u * (high - low) + low, xp.asarray(low, dtype=native, device=device_of(k)))
    return xp.reshape(u, shape)


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def bernoulli(k: Array, p: float, shape: tuple[int, ...] | int) -> Array:
    """True with probability ``p``: where ``uniform(k, shape, dtype="float32") < float32(p)``.

    The comparison is made on the 23 integer bits of the float32 draw (``bits < ceil(p * 2**23)``),
    so the result does not depend on a dtype and equals ``jax.random.bernoulli(k, float32(p))``.

    Parameters
    ----------
    k : array
        A key (shape ``(2,)``, int32).
    p : float
        The probability of True, in ``[0, 1]`` (rounded to float32, resolution ``2**-23``).
    shape : tuple of int or int
        The shape drawn.

    Returns
    -------
    array
        Booleans of ``shape`` on ``k``'s namespace and device.

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> keep = rng.bernoulli(rng.key(0, xp="numpy"), 0.75, (4000,))
    >>> round(float(keep.mean()), 1)
    0.8
    """
    xp = _check_key(k)
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ArgumentTypeError(f"p: expected a float in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"p: expected a probability in [0, 1], got {p}")
    shape = _check_shape(shape)
    threshold = math.ceil(_float32(float(p)) * 2**23)
    y0, y1 = _blocks(xp, k, shape)
    return xp.reshape(((y0 ^ y1) >> 9 & 0x7FFFFF) < threshold, shape)


@dataclass(frozen=True)
class RandomStream:
    """A seeded stream's position: draw ``n`` uses the key ``fold_in(key(seed), n)``.

    Plain ints, so a model's stream is saved and resumed bit for bit (:meth:`state_dict`). The key
    of a position is computed on the host (no device op) and handed to the program that draws:
    eagerly, or as an argument of a compiled step.

    Parameters
    ----------
    seed : int
        In ``[0, 2**64)``.
    position : int
        How many draws were taken (``>= 0``).

    Examples
    --------
    >>> from portable_nn.nn import rng
    >>> stream = rng.RandomStream(seed=3)
    >>> k = stream.key(xp="numpy")
    >>> stream = stream.advanced()
    >>> stream, rng.RandomStream.from_state_dict(stream.state_dict()) == stream
    (RandomStream(seed=3, position=1), True)
    """

    seed: int
    position: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", _check_seed(self.seed))
        if isinstance(self.position, bool) or not hasattr(type(self.position), "__index__"):
            raise ArgumentTypeError(f"position: expected an int >= 0, got {type(self.position).__name__}")
        object.__setattr__(self, "position", operator.index(self.position))
        if not 0 <= self.position < 2**64:
            raise ArgumentError(f"position: expected an int in [0, 2**64) (draws taken), got {self.position}")

    def key_data(self) -> tuple[int, int]:
        """The two words (unsigned ints) of the key at this position: ``fold_in(key(seed), position)``."""
        return _threefry_host(self.seed >> 32, self.seed & _MASK32, self.position >> 32, self.position & _MASK32)

    def key(self, *, xp: Backend, device: Device = None) -> Array:
        """The key at this position as an int32 array on ``xp`` and ``device`` (one host-to-device copy).

        Parameters
        ----------
        xp : str, namespace or array
            The backend.
        device : device, optional
            The device (default: the backend's default device).

        Returns
        -------
        array
            A key (shape ``(2,)``, int32).
        """
        namespace = resolve_namespace(xp)
        return _key_array(self.key_data(), namespace, resolve_device(namespace, device))

    def advanced(self, draws: int = 1) -> RandomStream:
        """The stream ``draws`` positions further on (a new object: streams are values)."""
        if not isinstance(draws, int) or isinstance(draws, bool) or draws < 0:
            raise ArgumentError(f"draws: expected an int >= 0, got {draws!r}")
        return RandomStream(self.seed, self.position + draws)

    def state_dict(self) -> dict[str, int]:
        """``{"seed": seed, "position": position}``: what a checkpoint stores."""
        return {"seed": self.seed, "position": self.position}

    @classmethod
    def from_state_dict(cls, state: dict[str, int]) -> RandomStream:
        """The stream that :meth:`state_dict` described (checked as the constructor checks)."""
        if not isinstance(state, dict) or set(state) != {"seed", "position"}:
            raise ArgumentError(f"expected a dict with the keys 'seed' and 'position', got {state!r}")
        return cls(state["seed"], state["position"])

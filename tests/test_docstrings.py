"""Every public callable documents itself in numpydoc form (issue 22, item 6), checked by numpydoc's own validator.

Public means: each name in ``__all__`` of ``portable_nn`` and of its public subpackages and modules below, and the
public methods a public class defines itself (inherited ``object`` methods excluded). For each one:

- ``GL08`` a docstring; ``PR01`` every parameter documented, ``PR02`` none that does not exist, ``PR07`` each with
  a description; ``RT01`` a Returns section where it returns something; ``EX01`` an Examples section (the examples
  run in tests/test_docs.py);
- ``RAISES`` (this file's own check, numpydoc has none): a Raises section where the body itself has a ``raise``.

Exception classes and protocols (types, not called) are documented by their summary line only (``GL08``).
``KNOWN_GAPS`` lists what is still missing, name by name: it may only shrink. A gap that is fixed fails the test
until it leaves the list.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from types import FunctionType

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is not installed (the test extra)")
NumpyDocString = pytest.importorskip("numpydoc.docscrape").NumpyDocString

CHECKS = {"GL08", "PR01", "PR02", "PR07", "RT01", "EX01"}
# Where the public names are listed: module paths that hold an ``__all__``.
NAMESPACES = [
    "portable_nn",
    "portable_nn.losses",
    "portable_nn.optim",
    "portable_nn.lr_scheduler",
    "portable_nn.testing",
    "portable_nn.init",
    "portable_nn.functional",
    "portable_nn.io",
    "portable_nn.training",
    "portable_nn.backends",
    "portable_nn.distributed",
]


def _namespaces() -> list[object]:
    modules = []
    for name in NAMESPACES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # portable_nn.distributed needs dask
            continue
    return modules


def _summary_only(obj: object) -> bool:
    """Exception classes and protocols: types a user raises, catches or implements, never calls for a result."""
    return inspect.isclass(obj) and (issubclass(obj, BaseException) or getattr(obj, "_is_protocol", False))


def _own_members(cls: type) -> dict[str, object]:
    """The class's own members and those of the private classes (in private modules) it is split into."""
    members: dict[str, object] = {}
    for klass in cls.__mro__:
        if klass is not cls and not (klass.__name__.startswith("_") and "._" in klass.__module__):
            break
        for name, member in vars(klass).items():
            members.setdefault(name, member)
    return members


def public_callables() -> dict[str, object]:
    """Public name (its first namespace above) -> object, for every public function, class and method.

    Public names, not the modules that define them, so that a move inside the package changes no key.
    """
    found: dict[str, object] = {}
    seen: set[int] = set()
    for module in _namespaces():
        for attr in module.__all__:
            obj = getattr(module, attr)
            if (
                inspect.ismodule(obj)
                or not callable(obj)
                or not getattr(obj, "__module__", "").startswith("portable_nn")
            ):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            public = f"{module.__name__}.{attr}"
            found[public] = obj
            if inspect.isclass(obj) and not _summary_only(obj):
                for name, member in _own_members(obj).items():
                    if name.startswith("_") or not isinstance(member, (FunctionType, classmethod, staticmethod)):
                        continue
                    found[f"{public}.{name}"] = getattr(obj, name)
    return dict(sorted(found.items()))


def _raises_itself(obj: object) -> bool:
    """Whether the function's own body (not a nested function) has a ``raise`` statement."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return False
    tree = ast.parse(source)
    function = tree.body[0]
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    if isinstance(function, ast.ClassDef):  # a class: its __init__ raises for it
        init = next((n for n in function.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is None:
            return False
        function = init

    def walk(node: ast.AST) -> bool:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if (isinstance(child, ast.Raise) and child.exc is not None) or walk(child):
                return True
        return False

    return walk(function)


def _first_parameter_is_cls(obj: object) -> bool:
    """A module-level function whose first parameter is named ``cls`` (e.g. ``register_optimizer(cls, name)``)."""
    if not inspect.isfunction(obj) or "." in obj.__qualname__:
        return False
    return next(iter(inspect.signature(obj).parameters), None) == "cls"


def problems(name: str, obj: object) -> set[str]:
    """The codes of the checks ``obj`` (named ``name``) fails."""
    if _summary_only(obj):
        return set() if (obj.__doc__ or "").strip() else {"GL08"}
    result = numpydoc_validate.validate(name)
    codes = {code for code, _ in result["errors"]} & CHECKS
    if _first_parameter_is_cls(obj):  # numpydoc drops it as if it were a classmethod's: check it here
        documented = {p.name for p in NumpyDocString(inspect.getdoc(obj) or "")["Parameters"]}
        if "cls" in documented and not documented - {"cls"} - set(inspect.signature(obj).parameters):
            codes.discard("PR02")
        elif "GL08" not in codes and "cls" not in documented:
            codes.add("PR01")
    if "GL08" not in codes and _raises_itself(obj) and not NumpyDocString(inspect.getdoc(obj) or "")["Raises"]:
        codes.add("RAISES")
    return codes


# ------------------------------------------------------------------------------------------------------------------
# KNOWN GAPS (issue 22, item 6): docstrings still to be completed after the merge of the concurrent branches.
# This list may only shrink: fix a docstring, then delete its entry (the test fails until you do).
KNOWN_GAPS: dict[str, set[str]] = {}  # every gap closed: keep it empty (a new gap fails the test)
# ------------------------------------------------------------------------------------------------------------------


def test_every_public_callable_is_documented_in_numpydoc_form():
    found = {name: problems(name, obj) for name, obj in public_callables().items()}
    failing = {name: codes for name, codes in found.items() if codes}
    total = sum(len(codes) for codes in failing.values())
    print(f"\n{len(failing)} of {len(found)} public callables fail {total} docstring checks")
    new = {name: sorted(codes - KNOWN_GAPS.get(name, set())) for name, codes in failing.items()}
    new = {name: codes for name, codes in new.items() if codes}
    fixed = {name: sorted(KNOWN_GAPS[name] - found.get(name, set())) for name in KNOWN_GAPS}
    fixed = {name: codes for name, codes in fixed.items() if codes}
    assert not new, "undocumented (codes: numpydoc's, RAISES: no Raises section): " + "\n".join(
        f"{name}: {codes}" for name, codes in new.items()
    )
    assert not fixed, "fixed, remove from KNOWN_GAPS: " + "\n".join(f"{name}: {codes}" for name, codes in fixed.items())


def test_the_check_sees_a_missing_parameter_and_a_missing_raises():
    """The checker itself fails an undocumented parameter and a raise without a Raises section."""

    def half(x, y):
        """Half of ``x``.

        Parameters
        ----------
        x : float
            A number.

        Returns
        -------
        float
            ``x / 2``.

        Examples
        --------
        >>> half(2.0, 0)
        1.0
        """
        if x is None:
            raise ValueError("x is None")
        return x / 2

    half.__module__ = __name__
    globals()["half"] = half
    try:
        assert problems(f"{__name__}.half", half) == {"PR01", "RAISES"}
    finally:
        del globals()["half"]


def test_a_first_parameter_named_cls_is_checked_like_any_other():
    """numpydoc skips a first parameter named ``cls`` (as a classmethod's); the check does not."""

    def name_of(cls, default=None):
        """The name of ``cls``.

        Parameters
        ----------
        cls : type
            A class.
        default : str, optional
            Unused.

        Returns
        -------
        str
            ``cls.__name__``.

        Examples
        --------
        >>> name_of(int)
        'int'
        """
        return cls.__name__

    name_of.__module__, name_of.__qualname__ = __name__, "name_of"
    globals()["name_of"] = name_of
    try:
        assert problems(f"{__name__}.name_of", name_of) == set()
        name_of.__doc__ = name_of.__doc__.replace("        cls : type\n            A class.\n", "")
        assert problems(f"{__name__}.name_of", name_of) == {"PR01"}
    finally:
        del globals()["name_of"]

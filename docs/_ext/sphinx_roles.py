"""Griffe extension for the docs build: Sphinx cross-reference roles in docstrings become checked links.

The docstrings are numpydoc, written for ``help()`` and Sphinx alike, so they refer to other objects with roles
such as ``:class:`~portable_nn.Module``` or ``:meth:`add_parameter```. mkdocstrings renders Markdown, where a
cross-reference is ``[title][identifier]``. This extension rewrites each role, once the package is loaded, into
such a reference: the name is resolved in the scope of the docstring's object (its members, its module's names
and imports, its parents), as Sphinx would. A name that does not resolve is logged as a warning, which fails
``mkdocs build --strict``, and so does a resolved reference whose target the site does not render.

Used from ``mkdocs.yml``: ``extensions: [docs/_ext/sphinx_roles.py:SphinxRoles]``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import griffe

_logger = logging.getLogger("mkdocs.plugins.portable_nn_sphinx_roles")
_ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj|const):`(?P<text>[^`]+)`")
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^>]+)>$")


#: Private class path -> the public class it is a part of (its first public subclass), filled by ``on_package``.
_PUBLIC_OF: dict[str, griffe.Class] = {}
#: Path of an object defined in a private module -> the public path that exports it (``__all__``), by ``on_package``.
_EXPORTED_AS: dict[str, str] = {}


def _public_path(path: str) -> str:
    """``path``, or where a public module exports it (or the object it is a member of) when it is private."""
    head, tail = path, ""
    while _private(head) and "." in head:
        if head in _EXPORTED_AS:
            return _EXPORTED_AS[head] + tail
        head, _, last = head.rpartition(".")
        tail = f".{last}{tail}"
    return path


def _private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


def _member_of_class(obj: griffe.Object, head: str) -> str | None:
    """``head`` as a member, inherited ones included, of ``obj``'s class or of the public class it is a part of."""
    cls = obj if obj.is_class else obj.parent
    if not isinstance(cls, griffe.Class):
        return None
    for owner in (cls, _PUBLIC_OF.get(cls.path)):
        if owner is not None and not _private(owner.path) and head in owner.all_members:
            return f"{owner.path}.{head}"
    return None


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """The full path of ``name`` as seen from ``obj``: absolute, or resolved head + attribute tail.

    A method's name may also be one its class inherits, or one of the public class that a private class (a part of
    a class split over several modules) is a base of.
    """
    head, _, tail = name.partition(".")
    try:
        path: str | None = obj.resolve(head)
    except griffe.NameResolutionError:
        path = None
    if path is None or _private(path):
        path = _member_of_class(obj, head) or path
    if path is None:
        if name.startswith(obj.package.name + "."):
            path, tail = name, ""
        else:
            return None
    return f"{path}.{tail}" if tail else path


def _convert(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        raw = match.group("text").strip()
        titled = _TITLED.match(raw)
        if titled:
            title, target = titled.group("title"), titled.group("target")
        else:
            target = raw.lstrip("~")
            title = target.rsplit(".", 1)[-1] if raw.startswith("~") else target
        path = _resolve(obj, target)
        if path is None:
            _logger.warning("%s: cannot resolve the reference %r in its docstring", obj.path, raw)
            return f"`{title}`"
        path = _public_path(path)
        if _private(path):
            return f"`{title}`"  # private: not in the API reference, so no link
        return f"[`{title}`][{path}]"

    return _ROLE.sub(link, text)


def _comment_docstring(obj: griffe.Object) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above an attribute (Sphinx's attribute docstrings), as a docstring."""
    if not obj.is_attribute or obj.lineno is None or obj.filepath is None or isinstance(obj.filepath, list):
        return None
    lines = obj.filepath.read_text(encoding="utf-8").splitlines()
    first = obj.lineno - 1
    while first > 0 and lines[first - 1].strip().startswith("#:"):
        first -= 1
    if first == obj.lineno - 1:
        return None
    text = "\n".join(line.strip()[2:].strip() for line in lines[first : obj.lineno - 1])
    return griffe.Docstring(text, lineno=first + 1, endlineno=obj.lineno - 1, parent=obj)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles into Markdown cross-references in every docstring of the loaded package.

    Attributes documented by ``#:`` comments (Sphinx's convention, used in this project) get those comments as
    their docstring first.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Convert once the whole package is loaded, so that every name can be resolved."""
        _map_private_classes(pkg)
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is None:
                obj.docstring = _comment_docstring(obj)
            if obj.docstring is not None:
                obj.docstring.value = _convert(obj, obj.docstring.value)
            stack.extend(member for member in obj.members.values() if isinstance(member, griffe.Object))


def _map_private_classes(pkg: griffe.Module) -> None:
    """Fill ``_EXPORTED_AS`` and ``_PUBLIC_OF`` (each private base class -> its public subclass, shortest MRO)."""
    stack: list[griffe.Object] = [pkg]
    while stack:
        obj = stack.pop()
        stack.extend(member for member in obj.members.values() if isinstance(member, griffe.Object))
        if isinstance(obj, griffe.Module) and not _private(obj.path):
            for name in obj.exports or ():
                member = obj.members.get(name)
                if isinstance(member, griffe.Alias) and _private(member.target_path):
                    _EXPORTED_AS.setdefault(member.target_path, member.path)
        if not isinstance(obj, griffe.Class) or _private(obj.path):
            continue
        try:
            bases = obj.mro()
        except Exception:  # a base outside the loaded package: nothing to map
            continue
        for base in bases:
            if _private(base.path):
                known = _PUBLIC_OF.get(base.path)
                if known is None or len(known.mro()) > len(bases):
                    _PUBLIC_OF[base.path] = obj

"""The strict YAML path: PyYAML's safe loader (libyaml where available) that also
refuses duplicate keys, aliases and tags other than YAML's standard ones.

``etl.extract.extract.parse_yaml`` uses it for documents that yaml-rs is not trusted with
(tags, anchors or aliases may be present; tab indentation) and to place an error
yaml-rs reports without a position; ``etl.extract.site_data`` reads a site's data files and
``_config.yml`` with it (the first YAML document, as Jekyll does). Imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import yaml

from etl.records import DocumentError

if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's loader where PyYAML was built with it (the same API, faster)
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictSafeLoader(_SafeLoader):
    """PyYAML's safe loader that also refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable key: the base class reports it
            if duplicate:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """An impossible date (2020-13-45) stays text, as on the fast path; validation names it."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, AttributeError):  # AttributeError: `!!timestamp not-a-date`
            return self.construct_scalar(node)


# Only the tags whose values JSON can hold: sets, binary, ordered maps and every
# application tag (!!python/..., !custom) have no constructor and are refused.
_REFUSED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("set", "binary", "omap", "pairs")}
StrictSafeLoader.yaml_constructors = {
    tag: constructor
    for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
    if tag not in _REFUSED_TAGS  # the None entry refuses unknown tags: keep it
}
StrictSafeLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", StrictSafeLoader.construct_yaml_timestamp
)


def _refuse_aliases(node: yaml.Node) -> None:
    """Raise if any node is reachable twice (an alias): keeps expansion bombs out."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            mark = current.start_mark
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", mark)
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


@contextmanager
def _as_document_error(first_line: int) -> Iterator[None]:
    """PyYAML's errors (and the constructors' own) become a placed ``DocumentError``."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = "YAML error: " + " ".join(part for part in (exc.context, exc.problem) if part)
        if mark is not None:
            raise DocumentError(reason, mark.line + first_line, mark.column + 1) from None
        raise DocumentError(reason) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"YAML error: {exc}") from None
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise DocumentError(f"YAML error: cannot construct a value: {exc}") from None


def _construct(loader: _SafeLoader, node: yaml.Node | None) -> Any:
    if node is None:
        return None
    if isinstance(loader, StrictSafeLoader):
        _refuse_aliases(node)
    return loader.construct_document(node)


def parse_strict(text: str, first_line: int) -> Any:
    loader = StrictSafeLoader(text)
    try:
        with _as_document_error(first_line):
            return _construct(loader, loader.get_single_node())
    finally:
        loader.dispose()


def parse_first(text: str, first_line: int = 1, *, strict: bool = True) -> tuple[Any, bool]:
    """The first YAML document of ``text``, and whether anything follows it.

    This is how Psych's ``load`` (so Jekyll's ``SafeYAML.load_file``) reads a data
    file: the first document, and what follows it (a trailing ``---``, more documents,
    even text that is not YAML) never parsed. ``strict=False`` is PyYAML's own safe
    loader, which takes duplicate keys (the last wins) and aliases, as Psych does.
    """
    loader = StrictSafeLoader(text) if strict else _SafeLoader(text)
    try:
        with _as_document_error(first_line):
            if not loader.check_node():
                return None, False
            value = _construct(loader, loader.get_node())
        try:
            follows = not loader.check_event(yaml.StreamEndEvent)
        except yaml.YAMLError:
            follows = True  # broken YAML after the first document: ignored as well
        return value, follows
    finally:
        loader.dispose()

"""``data.train``: one corpus path, or a list of corpora with weights, tags and names."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, List, Optional

from ..errors import ConfigError


@dataclass(frozen=True)
class CorpusSpec:
    """One training corpus of ``data.train``: its path prefix, its sampling weight, the tag put before
    its sources (``data.src_prefix`` unless it says otherwise) and the name the log gives it."""
    path: str
    weight: float = 1.0
    src_prefix: Optional[str] = None
    name: str = ""
    alignments: Optional[str] = None  # its word alignments (Pharaoh), for guided alignment


_CORPUS_KEYS = ("path", "weight", "src_prefix", "name", "alignments")


def is_tag(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()) and not any(c.isspace() for c in value))


def train_corpora(value: Any, src_prefix: Optional[str] = None, alignments: Optional[str] = None) -> List[CorpusSpec]:
    """``data.train`` as corpus specs: a path prefix (one corpus, weight 1, ``alignments`` its word
    alignments) or a list whose items are prefixes or ``{path, weight, src_prefix, name, alignments}``
    maps. ConfigError naming ``data.train[i].KEY`` for a bad item; [] when no corpus is given."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [CorpusSpec(value, 1.0, src_prefix, _corpus_name(value), alignments)]
    if alignments is not None:
        raise ConfigError(f"data.alignments={alignments!r} with several training corpora: give each corpus its own, "
                          f"\"data.train=[{{path: A, alignments: A.align}}, ...]\"")
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"data.train={value!r}: must be a path prefix or a non-empty list of corpora "
                          f"({{path: PREFIX, weight: W}} or PREFIX each)")
    specs = []
    for i, item in enumerate(items):
        key = f"data.train[{i}]"
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            raise ConfigError(f"{key}={item!r}: must be a path prefix or {{path: PREFIX, weight: W}}")
        for k in item:
            if k not in _CORPUS_KEYS:
                import difflib
                close = difflib.get_close_matches(str(k), _CORPUS_KEYS, n=1)
                raise ConfigError(f"{key}: unknown key {k!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                                   f"; a corpus has {', '.join(_CORPUS_KEYS)}"))
        path, weight = item.get("path"), item.get("weight", 1.0)
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"{key}.path={path!r}: must be a corpus path prefix (reads PREFIX.SRC_LANG, "
                              f"PREFIX.TGT_LANG)")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight <= 0:
            raise ConfigError(f"{key}.weight={weight!r}: must be a number > 0")
        tag = item.get("src_prefix", src_prefix)
        if not is_tag(tag):
            raise ConfigError(f"{key}.src_prefix={tag!r}: must be one token without whitespace (or null)")
        name = item.get("name") or _corpus_name(path)
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name={name!r}: must be a string")
        links = item.get("alignments")
        if links is not None and (not isinstance(links, str) or not links.strip()):
            raise ConfigError(f"{key}.alignments={links!r}: must be the path of a Pharaoh alignment file")
        specs.append(CorpusSpec(path, float(weight), tag, name, links))
    names = [s.name for s in specs]
    return [CorpusSpec(s.path, s.weight, s.src_prefix, s.name if names.count(s.name) == 1 else f"{s.name}#{i + 1}",
                       s.alignments) for i, s in enumerate(specs)]


def _corpus_name(path: str) -> str:
    """A corpus's name in the log: its prefix's last part (``data/wmt/news.2019`` -> ``news.2019``)."""
    return os.path.basename(os.path.normpath(path)) or path

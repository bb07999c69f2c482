"""Hydra composition: the schema registered in the ConfigStore, unknown keys refused with a
suggestion, Hydra's errors reworded; typed config to and from plain values."""
from __future__ import annotations

import re
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Iterator, List, Optional, Tuple, cast

from ..errors import ConfigError
from .schema import Config


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="base_config", node=Config)


def iter_fields(cls=Config, prefix: str = "") -> Iterator[Tuple[str, Any, str]]:
    """(dotted key, default, help) of every leaf field, in declaration order."""
    for f in fields(cls):
        key = prefix + f.name
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        if is_dataclass(default):
            yield from iter_fields(type(default), key + ".")
        else:
            yield key, default, f.metadata.get("help", "")


def check_known_keys(values: dict) -> None:
    """Refuse keys the schema does not have (``+train.max_step=10`` adds one past Hydra's checks)."""
    known = {key for key, _, _ in iter_fields()}
    groups = {k.rsplit(".", 1)[0] for k in known if "." in k}

    def walk(d: dict, prefix: str):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and key in groups:
                yield from walk(v, key + ".")
            else:
                yield key

    for key in walk({k: v for k, v in values.items() if k != "hydra"}, ""):
        if key not in known:
            raise unknown_key(key)


def unknown_key(key: str) -> ConfigError:
    """The error for a key the schema does not have, with the closest known key (by the whole
    dotted key, else by its last part) as a suggestion."""
    import difflib
    known = sorted(k for k, _, _ in iter_fields())
    close = difflib.get_close_matches(key, known, n=1)
    if not close:
        leaf = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1)
        close = [k for k in known if leaf and k.rsplit(".", 1)[-1] == leaf[0]][:1]
    return ConfigError(f"unknown config key {key!r}" + (f"; did you mean {close[0]!r}?" if close
                                                        else "; nmt-train --help lists the keys"))


def compose(overrides=(), config_name: str = "train") -> Config:
    """The typed ``Config`` that ``nmt-train OVERRIDES`` runs with (Hydra's compose API over
    ``configs/``), its keys checked; a bad override is a ConfigError in nmt's words."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():  # inside nmt-train's Hydra app: its search path
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        else:
            with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
                cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        check_known_keys(cast(dict, OmegaConf.to_container(cfg, resolve=False)))
        return cast(Config, OmegaConf.to_object(cfg))
    except (HydraException, OmegaConfBaseException) as e:
        raise _compose_error(e) from None


def _compose_error(e: Exception) -> ConfigError:
    """Hydra's composition errors, reworded: an unknown key gets nmt's "did you mean", never
    Hydra's advice to add it with ``+`` (which the schema refuses anyway)."""
    parts: List[str] = []
    cause: Optional[BaseException] = e
    while cause is not None and len(parts) < 4:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(parts)
    unknown = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if unknown and ("is not in struct" in text or "To append to your config" in text):
        return unknown_key(unknown.group(1))
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line and line not in lines and not line.startswith(
                ("full_key", "object_type", "reference_type", "Set the environment variable", "Config search path",
                 "provider=")) and "$VALUE" not in line:
            lines.append(line)
    return ConfigError(" ".join(lines) or type(e).__name__)


def from_dict(values: dict) -> Config:
    """A typed ``Config`` from plain values (a checkpoint's), checked like a command line."""
    from omegaconf import OmegaConf
    merged = OmegaConf.merge(OmegaConf.structured(Config), values)
    return cast(Config, OmegaConf.to_object(merged))


def to_dict(cfg: Config) -> dict:
    """Plain JSON-able values (enums as their strings, tuples as lists)."""
    import json
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(cfg)))

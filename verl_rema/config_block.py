"""Reading a typed config block (a dataclass on veRL's ``BaseConfig``, TRL-style help per field) from a composed
config: the one place that turns a ``DictConfig`` into the dataclass and names unknown keys by their full path."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ConfigBlock")


class ConfigBlock:
    """Mixed into a config dataclass; ``CONFIG_PATH`` is where its block lives in the composed config."""

    CONFIG_PATH: ClassVar[str]

    @classmethod
    def from_config(cls: type[T], block: Any) -> T:
        """The block of a composed config (a ``DictConfig`` or mapping; None: all defaults), checked."""
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else dict(block or {})
        values.pop("_target_", None)
        fields = getattr(cls, "__dataclass_fields__", {})
        unknown = sorted(set(values) - {name for name in fields if name != "_target_"})
        if unknown:
            known = sorted(name for name in fields if name != "_target_")
            raise ValueError(
                f"{cls.CONFIG_PATH}: unknown keys {[f'{cls.CONFIG_PATH}.{key}' for key in unknown]}; allowed: {known}"
            )
        return cls(**values)


def require_int(path: str, name: str, value: Any, least: int = 1) -> None:
    """``path.name`` must be an integer >= ``least`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        wanted = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ValueError(f"{path}.{name} must be {wanted}, got {value!r}")


__all__ = ["ConfigBlock", "require_int"]

"""The pydantic models of data/study.yaml share these value types and this bridge: `typed`
validates a mapping into a model and turns pydantic's ValidationError into one message that
names where (file, profile, block), the key and the value it got."""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args

import pydantic
from pydantic import BeforeValidator, Field, PlainValidator, StrictInt, StrictStr, TypeAdapter
from pydantic.dataclasses import is_pydantic_dataclass

T = TypeVar("T")


class StudyDesignError(ValueError):
    """The study design file is missing a field or describes an impossible study."""


# Frozen, and a key the model does not know is an error (a typo must not pass silently).
design_model = functools.partial(
    pydantic.dataclasses.dataclass, frozen=True, config=pydantic.ConfigDict(extra="forbid")
)


def _number(value: object) -> object:
    # An int stays an int: training fingerprints hash the value as the file writes it.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Number = Annotated[float, PlainValidator(_number)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
Text = Annotated[StrictStr, Field(min_length=1)]
# An empty block (`training:` with nothing under it) keeps the block's defaults.
EMPTY_IF_NONE = BeforeValidator(lambda value: {} if value is None else value)

# What a value must be, by pydantic's error type, when its field gives no wording of its own.
_MUST = {
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
    "string_type": "must be a non-empty string",
    "string_too_short": "must be a non-empty string",
    "list_type": "must be a non-empty list",
    "tuple_type": "must be a non-empty list",
    "too_short": "must be a non-empty list",
    "dict_type": "must be a mapping",
    "literal_error": "must be one of {expected}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_NOT_A_MAPPING = ("dataclass_type", "model_type", "dict_type", "dataclass_args_type")


def typed(cls: type[T], raw: object, where: str, noun: str = "field", **given: object) -> T:
    """`raw` (None: empty) validated into the model `cls`, with `given` fields the file does not
    write; StudyDesignError "<where>: <what is wrong>" otherwise."""
    raw = {} if raw is None else raw
    clash = sorted(set(raw) & set(given)) if isinstance(raw, Mapping) else []
    if clash:
        known = ", ".join(f.name for f in dataclasses.fields(cls) if f.name not in given)
        raise StudyDesignError(f"{where}: unknown {noun}(s) {clash}; known: {known}")
    data = {**raw, **given} if isinstance(raw, Mapping) and given else raw
    try:
        return _adapter(cls).validate_python(data)
    except pydantic.ValidationError as error:
        message = describe(error.errors(include_url=False), cls, raw, noun)
    raise StudyDesignError(f"{where}: {message}")


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def describe(errors: list[Any], cls: type, raw: object, noun: str) -> str:
    """The first of pydantic's `errors` for model `cls` read from `raw`, in the design's words:
    unknown keys first, then missing ones, then the first bad value (inside a block, prefixed
    `block '<name>': `)."""
    if not isinstance(raw, Mapping):
        return f"expected a mapping, got {type(raw).__name__}"
    unknown = sorted(
        str(e["loc"][0]) for e in errors if e["type"] in _UNKNOWN and len(e["loc"]) == 1
    )
    if unknown:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        return f"unknown {noun}(s) {unknown}; known: {known}"
    missing = [e["loc"][0] for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing:
        return f"missing required {noun} {missing[0]!r}"
    first = errors[0]
    if not first["loc"]:  # a rule across fields, raised by the model's __post_init__
        return str(first["ctx"]["error"]) if first["type"] == "value_error" else first["msg"]
    key = first["loc"][0]
    block = _block_model(cls, key)
    if block is not None:
        inner = [{**e, "loc": e["loc"][1:]} for e in errors if e["loc"][:1] == (key,)]
        return f"block {key!r}: " + describe(inner, block, raw[key], f"{key} setting")
    return f"{noun} {key!r} {_must(first, cls, key)}, got {raw.get(key)!r}"


def _must(error: Any, cls: type, key: str) -> str:
    """What the field must be: its own wording (its description) for an error on the field
    itself, else the wording of the error's type."""
    description = cls.__pydantic_fields__[key].description
    if description and len(error["loc"]) == 1:
        return description
    ctx = error.get("ctx", {})
    if error["type"] == "value_error":
        return str(ctx["error"])
    if error["type"] == "greater_than" and ctx["gt"] == 0:
        return "must be positive"
    return _MUST[error["type"]].format(**ctx) if error["type"] in _MUST else error["msg"]


def _block_model(cls: type, key: str) -> type | None:
    """The model of field `key` when it is a block of its own (a nested model), else None."""
    annotation = cls.__pydantic_fields__[key].annotation
    candidates = (annotation, *get_args(annotation))
    return next((c for c in candidates if is_pydantic_dataclass(c)), None)

"""Attacks by name, for the command line and the evaluation engine.

Modules are imported lazily: a name whose module or class does not exist (yet) is left out of
:func:`available`, so a half-finished attack never breaks the others. Parameters are the
keyword-only arguments of each class's ``__init__`` (read with :mod:`inspect`), which is what
``foolkit attack`` turns into command-line flags.

Example:
    >>> cls = get("deepfool"); attack = create("deepfool", norm="inf", overshoot=0.01)
    >>> [p.name for p in parameters("fgsm")]
    ['eps', 'clip']
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..errors import InputError
from ..norms import parse_norm
from .base import Attack

# name -> (module, class). Order is the order of ``foolkit attacks``.
ATTACKS: dict[str, tuple[str, str]] = {
    "fgsm": ("foolkit.attacks.fgsm", "FGSM"),
    "lbfgs": ("foolkit.attacks.lbfgs", "LBFGS"),
    "deepfool": ("foolkit.attacks.deepfool", "DeepFool"),
    "sparsefool": ("foolkit.attacks.sparsefool", "SparseFool"),
    "superdeepfool": ("foolkit.attacks.superdeepfool", "SuperDeepFool"),
    "fmn": ("foolkit.attacks.fmn", "FMN"),
    "onepixel": ("foolkit.attacks.onepixel", "OnePixel"),
    "universal": ("foolkit.attacks.universal", "UniversalPerturbation"),
}


def _resolve(name: str) -> type[Attack]:
    """The class for ``name``, or raise ``LookupError`` (missing) / the import's own error."""
    module_name, class_name = ATTACKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise LookupError(f"{module_name} does not exist yet") from None
        raise
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise LookupError(f"{module_name} has no attack class {class_name}")
    return cls


def status() -> dict[str, tuple[type[Attack] | None, str]]:
    """Every known name -> ``(class or None, reason it is unavailable or "")``."""
    out: dict[str, tuple[type[Attack] | None, str]] = {}
    for name in ATTACKS:
        try:
            out[name] = (_resolve(name), "")
        except LookupError as exc:
            out[name] = (None, f"missing: {exc}")
        except Exception as exc:  # a broken module must not break the others
            out[name] = (None, f"cannot import: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return out


def available() -> dict[str, type[Attack]]:
    """Names whose class can be imported -> the class."""
    return {name: cls for name, (cls, _) in status().items() if cls is not None}


def list_attacks() -> list[str]:
    """Names of the available attacks, in registry order."""
    return list(available())


def get(name: str) -> type[Attack]:
    """The attack class registered as ``name`` (case-insensitive); ``ValueError`` if unknown."""
    key = str(name).lower()
    if key not in ATTACKS:
        raise InputError(f"unknown attack {name!r}; available attacks: {', '.join(list_attacks())}")
    try:
        return _resolve(key)
    except LookupError as exc:
        raise InputError(f"attack {name!r} is not available ({exc}); available attacks: "
                         f"{', '.join(list_attacks())}") from None


def name_of(attack: Any) -> str:
    """The registry name of an attack instance or class (its ``name`` attribute)."""
    cls = attack if isinstance(attack, type) else type(attack)
    for key, (module_name, class_name) in ATTACKS.items():
        if cls.__module__ == module_name and cls.__name__ == class_name:
            return key
    return getattr(cls, "name", cls.__name__.lower())


def parameters(name_or_class: Any) -> list[inspect.Parameter]:
    """The keyword-only parameters of the attack's ``__init__`` (with defaults and annotations)."""
    cls: type = get(name_or_class) if isinstance(name_or_class, str) else name_or_class
    sig = inspect.signature(cls)  # the class's signature is its __init__'s without self
    return [p for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def summary(name_or_class: Any) -> str:
    """First line of the class docstring."""
    cls = get(name_or_class) if isinstance(name_or_class, str) else name_or_class
    doc = inspect.getdoc(cls) or ""
    return doc.splitlines()[0].strip() if doc else cls.__name__


def create(attack: str | type[Attack] | Attack, /, **params: Any) -> Attack:
    """The one attack factory: an attack from a registry name (case-insensitive), an attack
    class or an instance (then no ``params``).

    ``params`` are the keyword parameters of the class; one it does not take raises
    ``InputError`` naming the class's parameters. Values are passed as given: convert
    command-line text first with :func:`convert_params`.
    """
    if isinstance(attack, type) and issubclass(attack, Attack):
        cls = attack
    elif isinstance(attack, str):
        cls = get(attack)
    elif isinstance(attack, Attack):
        if params:
            raise InputError(f"attack parameters {sorted(params)} given with an attack instance; "
                             f"pass them to its constructor instead")
        return attack
    else:
        raise InputError(f"attack must be a name, an Attack class or instance, got {type(attack).__name__}")
    known = [p.name for p in parameters(cls)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"{attack if isinstance(attack, str) else cls.__name__} has no parameter "
                         f"{', '.join(unknown)} (its parameters: {', '.join(known) or 'none'})")
    return cls(**params)


def convert_params(attack: str | type[Attack] | Attack, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` with each text value converted by :func:`convert` for the attack's parameter of
    that name (``"inf"`` -> ``math.inf``, ``"10"`` -> ``10``); other values, and names the attack
    does not take (:func:`create` refuses them), are kept as they are. ``attack``: a name or class
    (an instance takes no parameters: ``params`` come back unchanged)."""
    params = dict(params or {})
    if not isinstance(attack, (str, type)):
        return params
    known = {p.name: p for p in parameters(attack)}
    return {k: convert(known[k], v) if isinstance(v, str) and k in known else v for k, v in params.items()}


# --- text -> value, for command-line flags ------------------------------------------------
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def _parse_float(text: str) -> float:
    # float() reads inf, +inf, infinity, -inf; "linf" is a norm's name: norms.parse_norm reads it
    try:
        return float(text)
    except ValueError:
        return parse_norm(text)  # anything else: an InputError, a ValueError to convert()


def convert(param: inspect.Parameter, text: str) -> Any:
    """Convert a flag's text to the type the parameter expects (its annotation, else its default).

    ``"inf"`` is accepted for floats (norms), ``"none"`` where the annotation allows None,
    true/false/yes/no/1/0 for booleans. Raises ``ValueError`` with a one-line message.
    """
    ann = param.annotation
    ann_s = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    ann_s = "" if ann is inspect.Parameter.empty else ann_s
    default = param.default
    parts = {a.strip() for a in ann_s.replace("Optional[", "").replace("]", "").split("|")} if ann_s else set()
    t = text.strip()
    flag = "--" + param.name.rstrip("_").replace("_", "-")
    if t.lower() == "none" and ("None" in parts or default is None):
        return None
    kinds = []
    if parts:
        kinds = [k for k in ("bool", "int", "float", "str") if k in parts]
    elif default is not inspect.Parameter.empty and default is not None:
        kinds = [type(default).__name__]
    try:
        if "bool" in kinds:
            if t.lower() in _TRUE:
                return True
            if t.lower() in _FALSE:
                return False
            raise ValueError
        if "int" in kinds and "float" not in kinds:
            return int(t)
        if "float" in kinds:
            value = _parse_float(t)
            return int(value) if "int" in kinds and value.is_integer() and "." not in t and "e" not in t.lower() else value
        if "int" in kinds:
            return int(t)
        if kinds == ["str"]:
            return text
        if not kinds:
            # untyped: a number if it reads as one, else the text
            try:
                return int(t)
            except ValueError:
                try:
                    return _parse_float(t)
                except ValueError:
                    return text
        raise ValueError
    except ValueError:
        want = "/".join(kinds) if kinds else "value"
        raise InputError(f"{flag}: expected {want}, got {text!r}") from None

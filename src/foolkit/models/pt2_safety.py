"""Read a ``torch.export`` archive (``.pt2``) as data: refuse everything in it that could run code.

``torch.export.load`` trusts its file. Reading torch 2.x's loader (``torch/export/pt2_archive/
_package.py``, ``torch/_export/serde/serialize.py``), these parts of an archive run code:

- a weight or constant whose payload config says ``use_pickle``: ``torch.load(weights_only=False)``;
- custom (torchbind) and opaque objects among the constants: ``torch._C._pickle_load_obj`` and
  ``pickle.loads``;
- sample inputs that ``torch.load(weights_only=True)`` refuses: retried with ``weights_only=False``;
- legacy weight/constant files (``data/weights/<model>.pt``): unpickled the same way;
- AOTInductor packages (``data/aotinductor/``): compiled shared libraries, loaded;
- ``guards_code`` in the model's JSON: Python source turned into a function by ``ep.module()``;
- symbolic shape expressions (``expr_str``): parsed by ``sympy.sympify``, which ``eval``s text;
- graph node targets: resolved as ``torch.<any attribute path>`` and called when the model runs.

:func:`check_pt2` reads the zip itself (never unpickling anything but the sample inputs, with
``weights_only=True``) and refuses each of these with one line. :func:`load_pt2` checks the
bytes and hands the *same bytes* to ``torch.export.load`` (no second read of the file).
"""
from __future__ import annotations

import io
import json
import math
import operator
import os
import re
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from .registry import ModelError

# torch.export's archive layout (torch/csrc/export/pt2_archive_constants.h), relative to the root folder
_MODELS = "models/"
_WEIGHTS = "data/weights/"
_CONSTANTS = "data/constants/"
_SAMPLE_INPUTS = "data/sample_inputs/"
_TOP_FILES = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PAYLOAD_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")

# sympy names a shape expression may use: torch's own functions and a few sympy ones, plus the
# assumptions a Symbol is created with; everything else but shape symbols (s0, u3) is refused
_SYMPY_NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or",
    "Not", "Abs", "Mod", "floor", "ceiling", "oo", "zoo", "nan", "true", "false", "True", "False", "Mul", "Add",
    "Pow", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "TruncToFloat", "TruncToInt",
    "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "IsNonOverlappingAndDenseIndicator", "OpaqueUnaryFn_sqrt",
    "BitwiseFn_bitwise_and", "BitwiseFn_bitwise_or", "BitwiseFn_bitwise_xor",
    "positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "zero", "nonzero",
    "even", "odd", "rational", "extended_real", "commutative",
}
_SYMBOL = re.compile(r"^[a-z]+[0-9]+$")  # s77, u0, ps1
_EXPR_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)|"
                         r"('[A-Za-z0-9_]*'|\"[A-Za-z0-9_]*\")|(\*\*|//|==|!=|<=|>=|[-+*/%(),<>=&|~]))")


def _refuse(path: Path, what: str) -> ModelError:
    return ModelError(f"refusing {path}: {what}; foolkit loads .pt2 archives only as data "
                      f"(plain tensors, graph and shapes), since this could run code")


def check_expr(expr: str) -> bool:
    """Whether a symbolic shape expression uses only numbers, operators, quoted symbol names,
    shape symbols and the sympy names above: then ``sympy.sympify`` cannot reach Python."""
    pos = 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            return expr[pos:].strip() == ""
        name = m.group(1)
        if name is not None and name not in _SYMPY_NAMES and not _SYMBOL.match(name):
            return False
        pos = m.end()
    return True


def _allowed_target(target: str) -> bool:
    """Whether a graph node calls an operator (aten/prims/... op, higher-order op) or one of the
    symbolic-shape helpers torch itself serialises; resolved exactly as torch's deserializer does."""
    from torch._export.serde import serialize

    module: types.ModuleType
    if target.startswith("_operator."):
        module, names = operator, target.split(".")[1:]
    elif target.startswith("math."):
        module, names = math, target.split(".")[1:]
    elif target.startswith("torch."):
        module, names = torch, target.split(".")[1:]
    else:
        return False  # "#namespace:op" extension handlers, or anything else
    if any(not n.isidentifier() or n.startswith("__") for n in names):
        return False
    obj: Any = module
    for name in names:
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    if obj is operator.getitem or obj in getattr(serialize, "_SYM_OPS", ()):
        return True
    ops = torch._ops
    return isinstance(obj, (ops.OpOverload, ops.OpOverloadPacket, ops.HigherOrderOperator))


def _walk(node: Any, path: Path, seen_targets: set) -> None:
    if isinstance(node, dict):
        expr = node.get("expr_str")
        if isinstance(expr, str) and not check_expr(expr):
            raise _refuse(path, f"a shape expression sympy would evaluate as Python ({expr[:60]!r})")
        target = node.get("target")
        if isinstance(target, str) and "inputs" in node and "outputs" in node and target not in seen_targets:
            if not _allowed_target(target):
                raise _refuse(path, f"its graph calls {target[:80]!r}, which is not a PyTorch operator")
            seen_targets.add(target)
        for value in node.values():
            _walk(value, path, seen_targets)
    elif isinstance(node, list):
        for value in node:
            _walk(value, path, seen_targets)


def _payload_config(zf: zipfile.ZipFile, name: str, path: Path) -> dict:
    try:
        config = json.loads(zf.read(name))["config"]
        if not isinstance(config, dict):
            raise TypeError
        return config
    except KeyError:
        raise ModelError(f"{path} is not a complete torch.export archive: {name.split('/', 1)[1]} is missing") from None
    except (ValueError, TypeError):
        raise ModelError(f"{path} is not a valid torch.export archive: {name.split('/', 1)[1]} is not a payload config") from None


def check_pt2(data: bytes, path: str | os.PathLike = "model.pt2") -> None:
    """Refuse (``ModelError``, one line) an archive that is not a ``torch.export.save`` file or
    holds anything that would run code when loaded or run (see the module docstring)."""
    from torch.export.pt2_archive import constants as C

    path = Path(path)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ModelError(f"{path} is not a torch.export archive (not a zip file; make one with "
                         f"torch.export.save(torch.export.export(model, ...), 'net.pt2'))") from None
    roots = {n.split("/", 1)[0] for n in names}
    root = next(iter(roots)) if len(roots) == 1 else None
    if root is None or f"{root}/archive_format" not in names or zf.read(f"{root}/archive_format").strip() != b"pt2":
        raise ModelError(f"{path} is not a torch.export archive (a zip without a pt2 archive_format; "
                         f"make one with torch.export.save)")
    rel = [n[len(root) + 1:] for n in names]
    models = [r[len(_MODELS):-len(".json")] for r in rel if r.startswith(_MODELS) and r.endswith(".json")]
    if not models:
        raise ModelError(f"{path} holds no exported program (no models/*.json)")
    allowed = set(_TOP_FILES)
    for model in models:
        if not _PAYLOAD_NAME.match(model):
            raise ModelError(f"{path}: odd model name {model[:40]!r} in the archive")
        allowed |= {f"{_MODELS}{model}.json", f"{C.SAMPLE_INPUTS_FILENAME_FORMAT.format(model)}",
                    C.WEIGHTS_CONFIG_FILENAME_FORMAT.format(model), C.CONSTANTS_CONFIG_FILENAME_FORMAT.format(model)}
    for r in rel:
        if r in allowed or r.endswith("/") or r.startswith(C.EXTRA_DIR):  # extra files are read as text
            continue
        if r.startswith(C.AOTINDUCTOR_DIR):
            raise _refuse(path, "it holds AOTInductor compiled code (data/aotinductor/)")
        if (r.startswith(_WEIGHTS) or r.startswith(_CONSTANTS)) and r.endswith(".pt"):
            raise _refuse(path, f"it holds a legacy pickled payload ({r})")
        if r.startswith(_WEIGHTS) or r.startswith(_CONSTANTS):
            continue  # tensor payloads: checked through the configs below
        raise _refuse(path, f"it holds an unexpected file {r[:80]!r}")
    for model in models:
        weights = _payload_config(zf, f"{root}/{C.WEIGHTS_CONFIG_FILENAME_FORMAT.format(model)}", path)
        for fqn, meta in weights.items():
            name = meta.get("path_name", "") if isinstance(meta, dict) else ""
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise _refuse(path, f"weight {fqn[:60]!r} is a pickle (use_pickle)")
            if not _PAYLOAD_NAME.match(str(name)) or not str(name).startswith(C.WEIGHT_FILENAME_PREFIX):
                raise _refuse(path, f"weight {fqn[:60]!r} points at {str(name)[:60]!r}")
        constants = _payload_config(zf, f"{root}/{C.CONSTANTS_CONFIG_FILENAME_FORMAT.format(model)}", path)
        for fqn, meta in constants.items():
            name = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
            if name.startswith(C.CUSTOM_OBJ_FILENAME_PREFIX) or name.startswith(C.OPAQUE_OBJ_FILENAME_PREFIX):
                raise _refuse(path, f"constant {fqn[:60]!r} is an opaque (pickled) object")
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise _refuse(path, f"constant {fqn[:60]!r} is a pickle (use_pickle)")
            if not _PAYLOAD_NAME.match(name) or not name.startswith(C.TENSOR_CONSTANT_FILENAME_PREFIX):
                raise _refuse(path, f"constant {fqn[:60]!r} points at {name[:60]!r}")
        sample = f"{root}/{C.SAMPLE_INPUTS_FILENAME_FORMAT.format(model)}"
        if sample in names and zf.getinfo(sample).file_size:
            try:  # the restricted unpickler: what torch tries first, and what must succeed here
                torch.load(io.BytesIO(zf.read(sample)), map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001 -- any refusal: torch would retry with weights_only=False
                raise _refuse(path, "its sample inputs are not plain tensors (weights_only refuses them)") from None
        try:
            program = json.loads(zf.read(f"{root}/{_MODELS}{model}.json"))
        except ValueError:
            raise ModelError(f"{path} is not a valid torch.export archive: models/{model}.json is not JSON") from None
        if not isinstance(program, dict):
            raise ModelError(f"{path} is not a valid torch.export archive: models/{model}.json is not an object")
        if program.get("guards_code"):
            raise _refuse(path, "it holds guard code (Python source run by ExportedProgram.module())")
        _walk(program, path, set())


def load_pt2(path: str | os.PathLike) -> "torch.export.ExportedProgram":
    """``torch.export.load`` of a checked archive: ``ModelError`` (one line) for a missing file,
    a file that is not an archive, or an archive holding code (see :func:`check_pt2`)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    data = path.read_bytes()
    check_pt2(data, path)
    import logging

    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)  # torch logs a traceback before raising on a bad archive
    try:
        return torch.export.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 -- a checked but broken archive: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"cannot load {path} with torch.export.load: {first}") from None
    finally:
        logger.setLevel(level)

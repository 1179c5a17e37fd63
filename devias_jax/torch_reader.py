"""Secure reading of PyTorch checkpoints into numpy, without importing torch and without unsafe unpickling.

The .pth zip format and the legacy (torch < 1.6) stream format go through a restricted unpickler that
rebuilds tensors as numpy arrays and refuses every other global before it can run; safetensors through a
small header parser. `read_checkpoint` returns the flat {PyTorch name: array} weights of a file.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import pickle
import struct
import zipfile
from typing import Any, Callable, Iterable, Mapping

import ml_dtypes
import numpy as np

# ----------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle asked for a global outside the allow-list; nothing in it was executed."""


# ----------------------------------------------------------------------------------------------------
# Restricted unpickling of torch files
# ----------------------------------------------------------------------------------------------------

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "UntypedStorage": np.dtype(np.uint8),
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """Stands in for torch.FloatStorage & co.: only carries the numpy dtype."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


class InertObject:
    """Placeholder for harmless non-tensor objects (argparse.Namespace in `args`): keeps their state,
    never runs their code."""

    def __init__(self, *args: Any):
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"InertObject(state={self.state!r})"


def _make_inert(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (InertObject,), {"qualname": qualname})


class _LazyStorage:
    def __init__(self, key: str, dtype: np.dtype):
        self.key, self.dtype = key, dtype


@dataclasses.dataclass
class _LazyTensor:
    storage: _LazyStorage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage: np.ndarray, storage_offset: int, size: tuple, stride: tuple,
                    *_unused: Any) -> np.ndarray:
    """numpy equivalent of torch._utils._rebuild_tensor_v2 (strides are in elements)."""
    if isinstance(storage, _LazyStorage):  # legacy format: the bytes come after the pickle
        return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return storage[storage_offset].copy()
    needed = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(size) > 0 and needed > storage.size:
        raise CheckpointError(f"tensor of size {size} runs past the end of its storage ({storage.size} elements)")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=tuple(s * item for s in stride))
    return np.array(view)  # contiguous copy; the storage buffer may be shared


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       *_unused):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: np.ndarray, *_unused: Any) -> np.ndarray:
    return data


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding.lower() not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise UnsafeCheckpointError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode(encoding)


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _numpy_dtype(name: str, align: bool = False, copy: bool = False) -> np.dtype:
    return np.dtype(name)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "slice"): slice,
    ("torch", "Size"): tuple,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("argparse", "Namespace"): _make_inert("argparse.Namespace"),
}
for _name in _STORAGE_DTYPES:
    _ALLOWED_GLOBALS[("torch", _name)] = _StorageType(_name)
_ALLOWED_GLOBALS[("torch.storage", "UntypedStorage")] = _StorageType("UntypedStorage")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals come from a fixed allow-list; tensors become numpy arrays."""

    def __init__(self, file: io.BufferedIOBase, load_storage: Callable[[tuple], np.ndarray], source: str,
                 extra_inert: Iterable[str] = ()):
        super().__init__(file)
        self._load_storage = load_storage
        self._source = source
        self._extra_inert = set(extra_inert)

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if f"{module}.{name}" in self._extra_inert:
            return _make_inert(f"{module}.{name}")
        raise UnsafeCheckpointError(
            f"{self._source}: refusing to load global '{module}.{name}'. A weights file should only hold "
            "tensors and plain containers; this one asks to import and run other code, so nothing in it "
            "was executed. If you trust the file and the object is harmless data, pass it as an "
            "allowed inert class (allow_inert=['module.Name']).")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"{self._source}: unsupported persistent id {pid!r}")
        return self._load_storage(pid)


def _read_torch_zip(path: str, extra_inert: Iterable[str]) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl")]
        if not pickles:
            raise CheckpointError(f"{path}: zip file without data.pkl; not a torch.save checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
        cache: dict[str, np.ndarray] = {}

        def load_storage(pid: tuple) -> np.ndarray:
            _, storage_type, key, _location, numel = pid[:5]
            if not isinstance(storage_type, _StorageType):
                raise CheckpointError(f"{path}: unknown storage type {storage_type!r}")
            if key not in cache:
                try:
                    raw = archive.read(f"{prefix}data/{key}")
                except KeyError:
                    raise CheckpointError(f"{path}: storage '{key}' is missing from the archive") from None
                dtype = storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
                if len(raw) % dtype.itemsize:
                    raise CheckpointError(f"{path}: storage '{key}' has a size that is not whole elements")
                cache[key] = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype, copy=False)
            return cache[key]

        with archive.open(pickles[0]) as handle:
            return _RestrictedUnpickler(io.BytesIO(handle.read()), load_storage, path, extra_inert).load()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_torch_legacy(path: str, extra_inert: Iterable[str]) -> Any:
    with open(path, "rb") as handle:
        def safe_load() -> Any:
            return _RestrictedUnpickler(handle, _no_storage, path, extra_inert).load()

        def _no_storage(pid: tuple) -> np.ndarray:
            raise CheckpointError(f"{path}: unexpected storage reference in a header pickle")

        if safe_load() != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch checkpoint (bad magic number)")
        safe_load()  # protocol version
        sys_info = safe_load()
        little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
        storages: dict[str, tuple[np.ndarray, np.dtype]] = {}
        pending: dict[str, _StorageType] = {}

        def load_storage(pid: tuple) -> np.ndarray:
            _, storage_type, key, _location, numel, view = pid
            if view is not None:
                raise CheckpointError(f"{path}: storage views in legacy checkpoints are not supported")
            pending.setdefault(key, storage_type)
            return _LazyStorage(key, storage_type.dtype)

        # Tensors reference storages whose bytes come later in the stream: unpickle with lazy
        # holders, then read the data, then rebuild.
        obj = _RestrictedUnpickler(handle, load_storage, path, extra_inert).load()
        keys = safe_load()
        for key in keys:
            (numel,) = struct.unpack("<q" if little else ">q", handle.read(8))
            storage_type = pending.get(key, _StorageType("UntypedStorage"))
            dtype = storage_type.dtype.newbyteorder("<" if little else ">")
            raw = handle.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise CheckpointError(f"{path}: truncated file (storage '{key}' is cut short)")
            storages[key] = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype, copy=False)
    return _resolve_lazy(obj, storages)


def _resolve_lazy(obj: Any, storages: Mapping[str, np.ndarray]) -> Any:
    if isinstance(obj, _LazyTensor):
        return _rebuild_tensor(storages[obj.storage.key], obj.offset, obj.size, obj.stride)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve_lazy(v, storages)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve_lazy(v, storages) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_lazy(v, storages) for v in obj)
    return obj


def read_torch_file(path: str, allow_inert: Iterable[str] = ()) -> Any:
    """Loads a torch.save file (zip or legacy format) with tensors as numpy arrays, torch-free."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: empty file")
    try:
        if zipfile.is_zipfile(path):
            return _read_torch_zip(path, allow_inert)
        with open(path, "rb") as handle:
            if handle.read(4) == b"PK\x03\x04":
                raise CheckpointError(f"{path}: truncated or corrupt zip archive (no central directory); "
                                      "re-download or re-save the checkpoint")
        return _read_torch_legacy(path, allow_inert)
    except CheckpointError:
        raise
    except (EOFError, zipfile.BadZipFile, pickle.UnpicklingError, struct.error, ValueError, KeyError,
            IndexError, TypeError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupt file?): "
                              f"{type(error).__name__}: {error}") from error


# ----------------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Reads a .safetensors file: u64 little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: truncated safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > os.path.getsize(path):
            raise CheckpointError(f"{path}: safetensors header length {length} exceeds the file size")
        try:
            header = json.loads(handle.read(length))
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{path}: corrupt safetensors header: {error}") from error
        data = handle.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        if end > len(data):
            raise CheckpointError(f"{path}: tensor '{name}' runs past the end of the file (truncated?)")
        tensors[name] = np.frombuffer(data[start:end], dtype=dtype.newbyteorder("<")).astype(dtype).reshape(
            info["shape"])
    return tensors


# ----------------------------------------------------------------------------------------------------
# State dicts: pick the weights
# ----------------------------------------------------------------------------------------------------

_WEIGHT_CONTAINERS = ("model", "module", "state_dict", "model_state", "model_state_dict")


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, np.ndarray]:
    """The flat {name: array} weights of a loaded file: under 'model', 'module', ... or at top level."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict of weights, found {type(obj).__name__}")
    for key in _WEIGHT_CONTAINERS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, np.ndarray) for v in inner.values()):
            obj = inner
            break
    weights = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not weights:
        raise CheckpointError(f"{source}: no tensors found (looked under {_WEIGHT_CONTAINERS} and top level)")
    return weights


def read_checkpoint(path: str, allow_inert: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Flat PyTorch-named weights from a .pth/.pt/.bin (torch.save) or .safetensors file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as handle:
        start = handle.read(16)
    if path.endswith(".safetensors") or (len(start) >= 9 and start[8:9] == b"{"):
        return read_safetensors(path)
    return extract_state_dict(read_torch_file(path, allow_inert), path)

"""PyTorch checkpoints -> Flax parameters, without importing torch and without unsafe unpickling.

Readers: the .pth zip format and the legacy (torch < 1.6) stream format through a restricted
unpickler that rebuilds tensors as numpy arrays and refuses every other global before it can run;
safetensors through a small header parser. Key maps: original VideoMAE (pre-training with `encoder.`
prefix and decoder keys; fine-tuned with `fc_norm`; weights under `model` / `module` / top level) and
HuggingFace VideoMAE. Flax modules are named like their PyTorch counterparts, so the map is one
generic rule (`default_torch_key`) plus per-format key renames.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import pickle
import re
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
# State dicts: pick the weights, normalise key names
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


def is_huggingface(state_dict: Mapping[str, Any]) -> bool:
    return any(k.startswith(("videomae.", "embeddings.patch_embeddings")) or ".attention.attention." in k
               for k in state_dict)


_HF_RENAMES = [
    (r"^videomae\.", ""),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.(q_bias|v_bias)$", r"blocks.\1.attn.\2"),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]
_HF_QKV = re.compile(r"^(?:videomae\.)?encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$")


def huggingface_to_videomae(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames HuggingFace VideoMAE keys to the original VideoMAE names; fuses q/k/v into qkv."""
    out: dict[str, np.ndarray] = {}
    qkv: dict[str, dict[str, np.ndarray]] = collections.defaultdict(dict)
    for key, value in state_dict.items():
        match = _HF_QKV.match(key)
        if match:
            layer, which, kind = match.groups()
            qkv[layer][f"{which}.{kind}"] = value
            continue
        new = key
        for pattern, replacement in _HF_RENAMES:
            new = re.sub(pattern, replacement, new)
        out[new] = value
    for layer, parts in qkv.items():
        missing = [p for p in ("query.weight", "key.weight", "value.weight") if p not in parts]
        if missing:
            raise CheckpointError(f"HuggingFace layer {layer}: missing attention weights {missing}")
        out[f"blocks.{layer}.attn.qkv.weight"] = np.concatenate(
            [parts["query.weight"], parts["key.weight"], parts["value.weight"]], axis=0)
        if "key.bias" in parts and np.any(parts["key.bias"] != 0):
            raise CheckpointError(f"HuggingFace layer {layer}: non-zero key bias; the VideoMAE ViT fixes it at 0")
        for which, name in (("query", "q_bias"), ("value", "v_bias")):
            if f"{which}.bias" in parts:
                out[f"blocks.{layer}.attn.{name}"] = parts[f"{which}.bias"]
    return out


# Keys of VideoMAE pre-training files that no encoder-only model uses.
_DROPPED = re.compile(r"^(decoder\.|encoder_to_decoder\.|mask_token$|decoder_pos_embed$|pos_embed$)")


def normalize_state_dict(state_dict: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Original VideoMAE names at top level: strips DDP/pre-training prefixes, drops decoder keys,
    renames HuggingFace keys. Returns (weights, dropped key names)."""
    weights = {re.sub(r"^module\.", "", k): v for k, v in state_dict.items()}
    if is_huggingface(weights):
        weights = huggingface_to_videomae(weights)
    dropped = sorted(k for k in weights if _DROPPED.match(k))
    weights = {re.sub(r"^(encoder|backbone)\.", "", k): v for k, v in weights.items() if not _DROPPED.match(k)}
    return weights, dropped


# ----------------------------------------------------------------------------------------------------
# Mapping onto the Flax parameter tree
# ----------------------------------------------------------------------------------------------------


def default_torch_key(flax_path: str) -> str:
    """'blocks/0/attn/qkv/kernel' -> 'blocks.0.attn.qkv.weight' (modules are named as in PyTorch)."""
    parts = flax_path.split("/")
    if parts[-1] in ("kernel", "scale"):
        parts[-1] = "weight"
    return ".".join(parts)


def torch_to_flax_array(flax_path: str, value: np.ndarray) -> np.ndarray:
    """Layout change for one tensor: Linear (out,in)->(in,out); Conv3d (D,C,t,y,x)->(t,y,x,C,D)."""
    value = np.asarray(value)
    if value.dtype == ml_dtypes.bfloat16 or np.issubdtype(value.dtype, np.floating):
        value = value.astype(np.float32)  # fp16 / bf16 / fp64 checkpoints -> float32 params
    if flax_path.endswith("kernel"):
        if value.ndim == 2:
            return value.T
        if value.ndim >= 3:
            return np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))
    return value


@dataclasses.dataclass
class ConversionReport:
    loaded: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)  # flax params not in the checkpoint
    skipped: list[str] = dataclasses.field(default_factory=list)  # flax params excluded by a rule
    unused: list[str] = dataclasses.field(default_factory=list)  # checkpoint keys nothing used
    dropped: list[str] = dataclasses.field(default_factory=list)  # checkpoint keys known to be irrelevant

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for name in ("missing", "skipped", "unused", "dropped"):
            items = getattr(self, name)
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                lines.append(f"{name} ({len(items)}): {shown}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, list[str]]:
        return dataclasses.asdict(self)


def map_to_params(template: Mapping[str, tuple[int, ...]], weights: Mapping[str, np.ndarray], *,
                  torch_key: Callable[[str], str | None] = default_torch_key,
                  transform: Callable[[str, np.ndarray], np.ndarray] = torch_to_flax_array,
                  skip: str | None = None, strict: bool = False,
                  dropped: Iterable[str] = ()) -> tuple[dict[str, np.ndarray], ConversionReport]:
    """Fills {flax_path: shape} from PyTorch-named weights.

    `torch_key` maps a flax path to its PyTorch key (None: not in checkpoints), `transform` changes the
    layout (identity for already-converted params); `skip` is a regex of
    flax paths to leave at their initial values (e.g. a new head). Every shape mismatch is reported at
    once with both shapes; with `strict`, missing parameters are an error too.
    """
    report = ConversionReport(dropped=sorted(dropped))
    params: dict[str, np.ndarray] = {}
    used: set[str] = set()
    mismatches = []
    skip_re = re.compile(skip) if skip else None
    for path, shape in template.items():
        if skip_re is not None and skip_re.search(path):
            report.skipped.append(path)
            continue
        key = torch_key(path)
        if key is None or key not in weights:
            report.missing.append(path)
            continue
        used.add(key)
        value = transform(path, weights[key])
        if tuple(value.shape) != tuple(shape):
            mismatches.append(f"  '{key}': checkpoint {tuple(np.shape(weights[key]))} "
                              f"(as Flax {tuple(value.shape)}) vs model '{path}' {tuple(shape)}")
            continue
        params[path] = value
        report.loaded.append(path)
    report.unused = sorted(set(weights) - used)
    if mismatches:
        raise CheckpointError("shape mismatch between checkpoint and model:\n" + "\n".join(mismatches))
    if strict and report.missing:
        raise CheckpointError("checkpoint lacks model parameters: " + ", ".join(report.missing))
    return params, report


# ----------------------------------------------------------------------------------------------------
# Converted checkpoints on disk (orbax)
# ----------------------------------------------------------------------------------------------------

CONVERSION_FILE = "conversion.json"


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a/b/c': x} -> {'a': {'b': {'c': x}}} (string keys throughout; orbax-friendly)."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def save_converted(directory: str, params: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> str:
    """Writes params (orbax, under `params/`) and a JSON description; returns the directory."""
    import orbax.checkpoint as ocp

    directory = os.path.abspath(directory)
    target = os.path.join(directory, "params")
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists; choose a new output directory")
    os.makedirs(directory, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(target, unflatten({k: np.asarray(v) for k, v in params.items()}))
        checkpointer.wait_until_finished()
    with open(os.path.join(directory, CONVERSION_FILE), "w") as handle:
        json.dump(dict(metadata), handle, indent=2, default=str)
    return directory


def is_converted_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "params"))


def load_converted(directory: str) -> dict[str, np.ndarray]:
    """Flat {flax_path: array} from a directory written by `save_converted`."""
    import orbax.checkpoint as ocp

    target = os.path.join(os.path.abspath(directory), "params")
    if not os.path.isdir(target):
        raise CheckpointError(f"{directory}: not a converted checkpoint (no params/ inside)")
    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(target)
    return {k: np.asarray(v) for k, v in flatten(tree).items()}

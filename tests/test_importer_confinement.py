#!/usr/bin/python3
"""The importers read nothing outside the model's folder and inflate nothing past a bound
(tools/model_files.py; docs/robustness.md, "Importers").

Each trick is built in a temporary folder beside a "secret" file outside the model's folder, sized so
that, read as weights, it would convert: ONNX external data reaching it through `weights/../..` (the
CVE-2024-27318 bypass Debian's onnx 1.12 still has), `../`, an absolute path, a symlink inside the
folder, and a FIFO, a directory, an offset or length past the end; Keras HDF5 weights stored in the
secret (external raw storage), reached through an external link or a virtual dataset; a `.keras` zip
bomb whose weights member declares, or (with a lying header) inflates, past a bound the test lowers
(GAPNET_IMPORT_MAX_BYTES) to keep the bomb small. Each must exit non-zero with exactly one line on
stderr naming the model and the problem, write no output file, and print none of the secret's bytes.
Controls: the same files without the trick convert, and a legitimate external-data ONNX (weights in a
subfolder, one through a symlink inside it) converts to the same layers as the embedded model and
passes `gapnet verify` against numpy's result.

Usage: test_importer_confinement.py GAPNET. Needs python3-onnx, python3-h5py, python3-numpy: fails,
never skips, without them.
"""
import base64
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_CONVERTER = os.path.join(ROOT, "tools", "onnx_to_gapnet.py")
KERAS_CONVERTER = os.path.join(ROOT, "tools", "keras_to_gapnet.py")

try:
    import h5py
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    sys.exit(f"FAIL: {e}: install Debian's python3-onnx, python3-h5py and python3-numpy")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import model_files  # noqa: E402
from gapnet_file import ConversionError  # noqa: E402

# 48 bytes: exactly a float32 [3,4] weight, all finite, so only the confinement stops the import.
SECRET = b"SECRET-credentials-0123456789-abcdefghijklmnopqr"
assert len(SECRET) == 48 and np.all(np.isfinite(np.frombuffer(SECRET, "<f4")))
W = np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5
B = np.array([0.25, -1.0, 2.0], np.float32)
failures = []


def check(condition, message):
    print(("ok    " if condition else "FAIL  ") + message)
    if not condition:
        failures.append(message)


def run(converter, model, out, env=None):
    return subprocess.run(
        [sys.executable, converter, model, out],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def expect_refused(label, converter, model, out, needles, env=None):
    """The converter exits non-zero with one stderr line naming the model and each of `needles`, writes
    no `out`, and shows the secret nowhere (raw, as base64, or as the floats it would have become)."""
    r = run(converter, model, out, env)
    lines = r.stderr.decode("utf-8", "replace").splitlines()
    text = r.stdout + r.stderr
    leaks = [SECRET, SECRET[:16], base64.b64encode(SECRET)[:16]]
    ok = (
        r.returncode != 0
        and len(lines) == 1
        and model in lines[0]
        and all(n in lines[0] for n in needles)
        and not os.path.exists(out)
        and not any(leak in text for leak in leaks)
    )
    check(ok, f"{label}: refused ({lines[0] if len(lines) == 1 else lines!r}, exit {r.returncode})")


def expect_converted(label, converter, model, out, env=None):
    r = run(converter, model, out, env)
    check(r.returncode == 0 and os.path.exists(out), f"{label}: converts ({r.stderr.decode().strip()})")
    with open(out) as f:
        return json.load(f) if os.path.exists(out) else None


# ---- ONNX ---------------------------------------------------------------------------------------


def gemm_model(external=None, constant_external=None):
    """x [N,4] -> Gemm(W [3,4], B, transB=1) -> y [N,3]. `external`: {tensor name: (location, offset,
    length)} stores those initializers as external data; `constant_external` makes B a Constant node
    whose value is external data there instead."""
    initializers = [numpy_helper.from_array(W, "W")]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc", transB=1)]
    if constant_external:
        value = numpy_helper.from_array(B, "B_value")
        nodes.insert(0, helper.make_node("Constant", [], ["B"], name="bias", value=value))
    else:
        initializers.append(numpy_helper.from_array(B, "B"))
    for t in initializers + ([nodes[0].attribute[0].t] if constant_external else []):
        spec = (external or {}).get(t.name) or (constant_external if t.name == "B_value" else None)
        if spec:
            location, offset, length = spec
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", offset), ("length", length)):
                if value is not None:
                    t.external_data.add(key=key, value=str(value))
    graph = helper.make_graph(
        nodes,
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def save(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def onnx_tricks(tmp):
    folder, outside = os.path.join(tmp, "model"), os.path.join(tmp, "outside")
    os.makedirs(os.path.join(folder, "weights"))
    os.makedirs(outside)
    secret = os.path.join(outside, "secret.bin")
    with open(secret, "wb") as f:
        f.write(SECRET)
    with open(os.path.join(folder, "weights", "w.bin"), "wb") as f:
        f.write(W.astype("<f4").tobytes())
    os.symlink(os.path.join("..", "..", "outside", "secret.bin"), os.path.join(folder, "weights", "link.bin"))
    os.mkfifo(os.path.join(folder, "weights", "fifo.bin"))
    out = os.path.join(tmp, "out.json")

    cases = [  # (label, location of W, offset, length, words the message must hold)
        ("weights/../.. (CVE-2024-27318's bypass)", "weights/../../outside/secret.bin", None, None, ["outside"]),
        ("a leading ../", "../outside/secret.bin", None, None, ["outside"]),
        ("an absolute path", secret, None, None, ["absolute"]),
        ("a symlink inside the folder leading out", "weights/link.bin", None, None, ["outside"]),
        ("a FIFO", "weights/fifo.bin", None, None, ["not a regular file"]),
        ("a directory", "weights", None, None, ["not a regular file"]),
        ("offset + length past the end", "weights/w.bin", 8, 48, ["past the end"]),
        ("an offset past the end", "weights/w.bin", 100, None, ["offset 100 is past the end"]),
        ("a length that is not the tensor's size", "weights/w.bin", 0, 44, ["the tensor's shape needs 48"]),
        ("a missing file", "weights/none.bin", None, None, ["No such file"]),
    ]
    for label, location, offset, length, needles in cases:
        path = os.path.join(folder, "trick.onnx")
        save(gemm_model({"W": (location, offset, length)}), path)
        expect_refused(f"onnx, {label}", ONNX_CONVERTER, path, out, ["initializer 'W'", repr(location), *needles])

    # What onnx's own loader does with the first trick (Debian's onnx 1.12: reads the secret).
    path = os.path.join(folder, "cve.onnx")
    save(gemm_model({"W": ("weights/../../outside/secret.bin", None, None)}), path)
    try:
        leaked = SECRET in onnx.load(path).graph.initializer[0].raw_data
    except Exception as e:  # a fixed onnx refuses it
        leaked = f"no ({type(e).__name__})"
    print(f"note  onnx {onnx.__version__}'s own loader reads the secret through weights/../..: {leaked}")

    # The weights read in all are bounded, not only each file: W (48 bytes) then B (12) past 50.
    path = os.path.join(folder, "budget.onnx")
    with open(os.path.join(folder, "weights", "b.bin"), "wb") as f:
        f.write(b"\0" * 16 + B.astype("<f4").tobytes())
    save(gemm_model({"W": ("weights/w.bin", None, None), "B": ("weights/b.bin", 16, 12)}), path)
    expect_refused(
        "onnx, external data past the bound in all (lowered to 50 bytes)",
        ONNX_CONVERTER,
        path,
        out,
        ["initializer 'B'", "12 bytes more would make 60 bytes of weights, beyond the import bound of 50 bytes"],
        {model_files.LIMIT_VARIABLE: "50"},
    )

    # The bias as a Constant node's value: every tensor of the model is checked, not only initializers.
    path = os.path.join(folder, "constant.onnx")
    save(gemm_model(constant_external=("weights/../../outside/secret.bin", 0, 12)), path)
    expect_refused("onnx, a Constant node's external value", ONNX_CONVERTER, path, out, ["node 'bias'", "outside"])

    # A library user who loads with onnx.load(..., load_external_data=False) gets a refusal from
    # convert, not numpy_helper's unchecked read relative to the working directory.
    import onnx_to_gapnet

    model = onnx.load(os.path.join(folder, "trick.onnx"), load_external_data=False)
    try:
        onnx_to_gapnet.convert(model)
        check(False, "onnx, convert() on external data not read in: refused")
    except ConversionError as e:
        check("not read in" in str(e), f"onnx, convert() on external data not read in: refused ({e})")

    # Controls: the legitimate layout converts, weights in a subfolder, and through a symlink inside.
    os.symlink("w.bin", os.path.join(folder, "weights", "alias.bin"))
    embedded = os.path.join(folder, "embedded.onnx")
    save(gemm_model(), embedded)
    reference = expect_converted("onnx, embedded weights (control)", ONNX_CONVERTER, embedded, out + ".ref")
    data = os.path.join(tmp, "test_data_set_0")
    os.makedirs(data)
    x = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 1.5, -1.0, 2.0]], np.float32)
    y = x @ W.T + B  # Gemm with transB=1, computed independently
    for name, array in (("input_0.pb", x), ("output_0.pb", y)):
        with open(os.path.join(data, name), "wb") as f:
            f.write(numpy_helper.from_array(array).SerializeToString())
    for location in ("weights/w.bin", "weights/alias.bin"):
        path = os.path.join(folder, "external.onnx")
        save(gemm_model({"W": (location, None, None), "B": ("weights/b.bin", 16, 12)}), path)
        stored = onnx.load(path, load_external_data=False)
        check(
            all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer),
            f"onnx, {location}: the saved model holds its weights as external data",
        )
        doc = expect_converted(f"onnx, external data at {location}", ONNX_CONVERTER, path, out)
        check(
            doc is not None and doc["layers"] == reference["layers"],
            f"onnx, external data at {location}: the same layers as the embedded model",
        )
        r = subprocess.run(
            [sys.executable, ONNX_CONVERTER, path, out, "--test-data", data], capture_output=True, text=True
        )
        v = subprocess.run([GAPNET, "verify", "--tolerance", "1e-6", out], capture_output=True, text=True)
        check(
            r.returncode == 0 and v.returncode == 0,
            f"onnx, external data at {location}: gapnet verify against numpy's x @ W.T + B "
            f"({(v.stdout + v.stderr).strip()})",
        )
        os.unlink(out)


# ---- Keras --------------------------------------------------------------------------------------


def keras2_config(features=4, units=3):
    """A Keras 2 Sequential: input [features] -> Dense(units)."""
    layers = [
        {
            "class_name": "InputLayer",
            "config": {"batch_input_shape": [None, features], "dtype": "float32", "name": "in"},
        },
        {"class_name": "Dense", "config": {"name": "fc", "units": units, "activation": "linear", "use_bias": True}},
    ]
    return {"class_name": "Sequential", "config": {"name": "tiny", "layers": layers}}


def write_h5(path, kernel=None, features=4, units=3):
    """A Keras 2 model.save("m.h5") of keras2_config(); `kernel(group, name)` stores the kernel
    (default: W as an ordinary dataset)."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(keras2_config(features, units))
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("model_weights").create_group("fc")
        g.attrs["weight_names"] = [b"fc/kernel:0", b"fc/bias:0"]
        inner = g.create_group("fc")
        if kernel:
            kernel(inner, "kernel:0")
        else:
            inner.create_dataset("kernel:0", data=W.T)
        inner.create_dataset("bias:0", data=B if units == 3 else np.zeros(units, np.float32))


def keras_tricks(tmp):
    folder, outside = os.path.join(tmp, "keras"), os.path.join(tmp, "keras-outside")
    os.makedirs(folder)
    os.makedirs(outside)
    secret = os.path.join(outside, "secret.bin")
    with open(secret, "wb") as f:
        f.write(SECRET)
    secret_h5 = os.path.join(outside, "secret.h5")
    with h5py.File(secret_h5, "w") as f:
        f.create_dataset("kernel", data=np.frombuffer(SECRET, "<f4").reshape(4, 3))
    out = os.path.join(tmp, "keras.json")

    control = os.path.join(folder, "control.h5")
    write_h5(control)
    doc = expect_converted("keras .h5 (control)", KERAS_CONVERTER, control, out)
    check(doc is not None and len(doc["layers"]) == 2, "keras .h5 (control): flatten and dense")
    os.unlink(out)

    tricks = [
        (
            "external raw storage naming the secret",
            lambda g, n: g.create_dataset(n, (4, 3), "<f4", external=[(secret, 0, 48)]),
            ["stores its data in another file", "secret.bin"],
        ),
        (
            "an external link to another file",
            lambda g, n: g.__setitem__(n, h5py.ExternalLink(secret_h5, "/kernel")),
            [],
        ),
        (
            "a virtual dataset mapped from another file",
            lambda g, n: g.create_virtual_dataset(n, _layout(secret_h5)),
            ["virtual dataset"],
        ),
    ]
    for label, kernel, needles in tricks:
        path = os.path.join(folder, "trick.h5")
        write_h5(path, kernel)
        needles = needles or ["external link", "secret.h5"]
        expect_refused(f"keras .h5, {label}", KERAS_CONVERTER, path, out, ["/model_weights/fc/fc/kernel:0", *needles])

    # A tiny file declaring a 64 MiB kernel it never stores (h5py reads it back as the fill value):
    # bounded like any weights read, before the array is read.
    path = os.path.join(folder, "fill.h5")
    write_h5(path, lambda g, n: g.create_dataset(n, (4096, 4096), "<f4"), features=4096, units=4096)
    check(os.path.getsize(path) < 64 << 10, f"keras .h5 declaring a 64 MiB kernel: {os.path.getsize(path)} bytes")
    expect_refused(
        "keras .h5, a 64 MiB kernel never stored, bound lowered to 1 MiB",
        KERAS_CONVERTER,
        path,
        out,
        ["layer 'fc' (Dense): weight 'fc/kernel:0': 67108864 bytes (64.0 MiB) more", "bound of 1048576 bytes"],
        {model_files.LIMIT_VARIABLE: str(1 << 20)},
    )

    # The same trick inside a .keras archive's model.weights.h5.
    path = os.path.join(folder, "trick.keras")
    write_archive(path, lambda g, n: g.create_dataset(n, (4, 3), "<f4", external=[(secret, 0, 48)]))
    expect_refused(
        "keras archive, external raw storage in model.weights.h5",
        KERAS_CONVERTER,
        path,
        out,
        ["model.weights.h5 in the archive", "/layers/dense/vars/0"],
    )


def _layout(source):
    layout = h5py.VirtualLayout(shape=(4, 3), dtype="<f4")
    layout[:] = h5py.VirtualSource(source, "kernel", shape=(4, 3))
    return layout


def keras3_config():
    layers = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3, "activation": "linear", "use_bias": True}},
    ]
    return {"class_name": "Sequential", "config": {"name": "tiny", "layers": layers}}


def write_archive(path, kernel=None, padding=0):
    """A Keras 3 model.save("m.keras") of keras3_config(); `padding` zero bytes appended to
    model.weights.h5 (HDF5 ignores what follows its end) make it a bomb of that size."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "w.h5")
        with h5py.File(weights, "w") as f:
            g = f.create_group("layers").create_group("dense").create_group("vars")
            if kernel:
                kernel(g, "0")
            else:
                g.create_dataset("0", data=W.T)
            g.create_dataset("1", data=B)
        with open(weights, "ab") as f:
            f.write(b"\0" * padding)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
            z.writestr("config.json", json.dumps(keras3_config()))
            z.write(weights, "model.weights.h5")


def lie_about_size(path, member, size):
    """Rewrites the uncompressed size the zip's local and central headers declare for `member`."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    name = member.encode()
    for signature, size_at, name_length_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        at = data.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", data, at + name_length_at)[0]
            if data[at + name_at : at + name_at + length] == name:
                struct.pack_into("<I", data, at + size_at, size)
            at = data.find(signature, at + 4)
    with open(path, "wb") as f:
        f.write(data)


def archive_bombs(tmp):
    folder = os.path.join(tmp, "bombs")
    os.makedirs(folder)
    out = os.path.join(tmp, "bomb.json")
    bound = {model_files.LIMIT_VARIABLE: str(1 << 20)}  # 1 MiB, lowered so that the bomb stays 4 MiB

    control = os.path.join(folder, "control.keras")
    write_archive(control)
    expect_converted("keras archive (control, 1 MiB bound)", KERAS_CONVERTER, control, out, bound)
    os.unlink(out)

    bomb = os.path.join(folder, "bomb.keras")
    write_archive(bomb, padding=4 << 20)
    check(os.path.getsize(bomb) < 64 << 10, f"keras archive bomb: {os.path.getsize(bomb)} bytes inflate to 4 MiB")
    expect_refused(
        "keras archive, model.weights.h5 declaring 4 MiB past the 1 MiB bound",
        KERAS_CONVERTER,
        bomb,
        out,
        ["model.weights.h5 in the archive declares", "beyond the import bound of 1048576 bytes"],
        bound,
    )
    # The header lies: it declares 1000 bytes, the data inflates to 4 MiB. zipfile stops at the
    # declared size and then finds the CRC wrong: refused without inflating the rest.
    liar = os.path.join(folder, "liar.keras")
    write_archive(liar, padding=4 << 20)
    lie_about_size(liar, "model.weights.h5", 1000)
    with zipfile.ZipFile(liar) as z:
        check(z.getinfo("model.weights.h5").file_size == 1000, "keras archive, lying header: declares 1000 bytes")
    expect_refused("keras archive, a lying header", KERAS_CONVERTER, liar, out, ["model.weights.h5"], bound)

    # copy_member counts the bytes it is given, whatever the header said (for a reader that does not
    # stop at the declared size as zipfile does).
    class Lying:
        def getinfo(self, name):
            info = zipfile.ZipInfo(name)
            info.file_size = 1000
            return info

        def open(self, name):
            return io.BytesIO(b"\0" * (3 << 20))

    sink = io.BytesIO()
    try:
        model_files.copy_member(Lying(), "model.weights.h5", sink, 1 << 20)
        check(False, "copy_member on a member inflating past its header: refused")
    except ConversionError as e:
        check(
            "inflates past 1000 bytes" in str(e) and len(sink.getvalue()) == 0,
            f"copy_member on a member inflating past its header: refused, nothing written ({e})",
        )
    os.environ[model_files.LIMIT_VARIABLE] = "12"
    try:
        model_files.read_member(zipfile.ZipFile(control), "config.json")
        check(False, "read_member under GAPNET_IMPORT_MAX_BYTES=12: refused")
    except ConversionError as e:
        check("beyond the import bound of 12 bytes" in str(e), f"read_member under GAPNET_IMPORT_MAX_BYTES=12: ({e})")
    del os.environ[model_files.LIMIT_VARIABLE]
    check(model_files.max_bytes() == model_files.DEFAULT_MAX_BYTES == 1 << 30, "the default bound is 1 GiB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: test_importer_confinement.py GAPNET")
    GAPNET = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_tricks(tmp)
        keras_tricks(tmp)
        archive_bombs(tmp)
    if failures:
        sys.exit(f"FAIL: {len(failures)} check(s) failed")
    print("all importer confinement checks passed")

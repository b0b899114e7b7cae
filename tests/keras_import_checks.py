"""The checks of tests/test_keras_import.py on good files: each small model imported, verified and
classified; deliberate mistakes seen by verify; the imported graphs' structure; the published model."""

import base64
import json
import os

import h5py
import numpy as np
import torch
from PIL import Image

from keras_import_common import (
    EMOTIONS,
    FACE,
    KERAS_FILE,
    LABELS_FILE,
    METADATA_FILE,
    ROOT,
    SHIPPED,
    TOLERANCE,
    classify,
    import_model,
    random_batch,
    verify,
)
from keras_import_models import Spec, chain_model, write_keras2_h5, write_keras3_archive
from keras_import_reference import face_input, mini_xception_outputs, reference_inputs
import keras_to_gapnet  # noqa: E402  (the importer as a library: its tensor encoding, test_cases)


def check_synthetic(gapnet, tmp, spec, container, keras_version):
    """Write `spec` as a Keras file, import it with reference outputs as its tests, verify them in
    gapnet, and classify a PNG through the whole image path."""
    major = int(keras_version.split(".")[0])
    label = f"{spec.name} ({container}, Keras {keras_version})"
    path = os.path.join(tmp, f"{spec.name}-{keras_version}.{'keras' if container == 'keras' else 'h5'}")
    if container == "keras":
        write_keras3_archive(spec, path, keras_version)
    else:
        write_keras2_h5(spec, path, keras_version)
    x = random_batch(spec, 4, seed=len(spec.layers))
    with torch.no_grad():
        y = spec.reference(x, major).numpy().astype(np.float32)
    assert np.all(np.abs(y.sum(axis=1) - 1) < 1e-5), f"{label}: the reference does not end in a softmax"
    npz = os.path.join(tmp, f"{spec.name}-{keras_version}.npz")
    np.savez(npz, x=x, y=y)
    out = os.path.join(tmp, f"{spec.name}-{keras_version}.json")
    if len(spec.input_shape) == 1:
        # A vector input is a tensor model (color none): its recorded tests are all there is to run.
        doc = import_model(path, out, "--test-data", npz)
        assert doc["input"] == {"channels": spec.input_shape[0], "height": 1, "width": 1, "color": "none"}, label
        assert doc["layers"][0]["type"] == "flatten", label
        difference = verify(gapnet, out)
        print(
            f"ok  {label}: {len(doc['layers'])} gapnet layers; recorded tests verify (largest difference "
            f"{difference:.2g}); a vector input, so no image to classify"
        )
        return out
    channels = spec.input_shape[2]
    mean, std = ["0.5"] * channels, ["0.25"] * channels
    doc = import_model(path, out, "--test-data", npz, "--mean", *mean, "--std", *std)
    assert len(doc["tests"]) == 4, label
    difference = verify(gapnet, out)

    # The image path: a PNG's pixels, normalized as the file says, through the reference and gapnet.
    rng = np.random.RandomState(7)
    h, w, c = spec.input_shape
    pixels = rng.randint(0, 256, size=(h, w, c), dtype=np.uint8)
    png = os.path.join(tmp, f"{spec.name}.png")
    Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, mode="L" if c == 1 else "RGB").save(png)
    x_image = ((pixels.astype(np.float32) / 255.0 - 0.5) / 0.25)[None]
    with torch.no_grad():
        expected = spec.reference(x_image, major).numpy()[0]
    got = classify(gapnet, out, png, len(expected))
    image_difference = np.abs(got - expected).max()
    assert image_difference <= TOLERANCE, (
        f"{label}: image probabilities differ by {image_difference:.3g}\n" f" gapnet  {got}\n reference {expected}"
    )
    print(
        f"ok  {label}: {len(doc['layers'])} gapnet layers; recorded tests verify (largest difference "
        f"{difference:.2g}); a PNG's probabilities within {image_difference:.2g} of the reference"
    )
    return out


def check_mistakes_are_seen(gapnet, tmp, chain_json, graph_json):
    """The comparison must be able to fail: three conversion mistakes, applied by hand to the imported
    files, must make `gapnet verify` fail."""
    doc = json.load(open(chain_json))
    spec = chain_model()
    fc1 = next(layer for layer in doc["layers"] if layer["name"] == "fc1")
    kernel = dict(next(layer for layer in spec.layers if layer["name"] == "fc1")["weights"])["kernel"]
    fc1["weight"] = keras_to_gapnet._tensor(kernel.T)  # rows left in H-W-C order
    mistaken = os.path.join(tmp, "mistake-unpermuted.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "a Dense after Flatten with unpermuted weights verified"

    doc = json.load(open(chain_json))
    conv = next(layer for layer in doc["layers"] if layer["name"] == "conv_a")
    assert conv["padding"] == [1, 1, 1, 2], conv["padding"]  # TensorFlow: the odd pixel right
    conv["padding"] = [1, 2, 1, 1]  # ... put on the left instead
    mistaken = os.path.join(tmp, "mistake-padding.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "`same` padding on the wrong side verified"

    doc = json.load(open(graph_json))
    hard_sigmoids = [layer for layer in doc["layers"] if layer["type"] == "hard_sigmoid"]
    assert hard_sigmoids and hard_sigmoids[0]["alpha"] == 0.2, "Keras 2's hard_sigmoid is 0.2x + 0.5"
    hard_sigmoids[0]["alpha"] = 1.0 / 6.0  # Keras 3's meaning in a Keras 2 file
    mistaken = os.path.join(tmp, "mistake-hard-sigmoid.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "hard_sigmoid with Keras 3's slope verified"
    print(
        "ok  unpermuted Dense weights, `same` padding on the wrong side and the wrong hard_sigmoid all fail "
        "gapnet verify"
    )


def check_structure(chain_json, graph_json):
    """What the importer must have written, beyond the numbers."""
    chain = {layer["name"]: layer for layer in json.load(open(chain_json))["layers"]}
    assert chain["pool_max"]["padding"] == [1, 0, 1, 1], chain["pool_max"]
    assert chain["pool_avg"]["padding"] == [0, 1, 1, 1] and chain["pool_avg"]["count_include_pad"] is False
    assert chain["conv_b"]["padding"] == [1, 2, 0, 1], "ZeroPadding2D ((1,0),(2,1)) as conv_b's padding"
    assert "zero_pad" not in chain and "dropout" not in chain
    assert chain["depthwise"]["groups"] == 5 and chain["depthwise"]["out_channels"] == 10
    assert chain["relu6"]["type"] == "relu6" and chain["leaky"]["negative_slope"] == 0.1
    graph = json.load(open(graph_json))["layers"]
    by_name = {layer["name"]: layer for layer in graph}
    # a layer with an activation is written as two: NAME, then NAME_<activation>
    assert by_name["add3"]["inputs"] == ["mul", "dw_hard_sigmoid", "sep_relu"]
    assert by_name["se_scale"]["type"] == "multiply" and by_name["se_scale"]["inputs"] == ["bn", "se_expand_sigmoid"]
    assert by_name["head"]["type"] == "concat" and by_name["head"]["inputs"] == ["gap", "flatten", "gmp"]
    assert by_name["sep_depthwise"]["groups"] == 8 and by_name["sep"]["kernel_size"] == [1, 1]
    # Every layer's output is read by a later one (gapnet refuses dead layers); the last is the output.
    read, previous = set(), "input"
    for layer in graph:
        read.update(layer["inputs"] if "inputs" in layer else [layer.get("input", previous)])
        previous = layer["name"]
    assert all(layer["name"] in read for layer in graph[:-1]), "a layer nobody reads"
    print("ok  the imported graphs: per-side padding, folded ZeroPadding2D, skipped Dropout, merge inputs in order")


# ---- the published model --------------------------------------------------------------------------------


def check_published_model(gapnet, tmp):
    with h5py.File(KERAS_FILE, "r") as f:
        assert f.attrs["keras_version"] == "2.0.5" and f.attrs["backend"] == "tensorflow"
        assert json.loads(f.attrs["model_config"])["class_name"] == "Model"

    # The shipped file is what the importer writes from the shipped Keras file today.
    shipped = json.load(open(SHIPPED))
    fresh = os.path.join(tmp, "emotion.json")
    doc = import_model(
        KERAS_FILE,
        fresh,
        "--labels",
        LABELS_FILE,
        "--scale",
        "0.00392156862745098",
        "--mean",
        "0.5",
        "--std",
        "0.5",
        "--name",
        "emotion_mini_xception",
        "--metadata",
        METADATA_FILE,
    )
    for key in ("format", "version", "name", "layers", "metadata"):
        assert doc[key] == shipped[key], f"models/emotion_mini_xception.json: '{key}' differs from a fresh import"
    assert (
        doc["input"]
        == shipped["input"]
        == {
            "channels": 1,
            "height": 64,
            "width": 64,
            "color": "grayscale",
            "scale": 0.00392156862745098,
            "mean": [0.5],
            "std": [0.5],
        }
    )
    assert shipped["labels"] == EMOTIONS

    # Its recorded tests are MiniXception's outputs for its recorded inputs (3 random images, the face).
    x = reference_inputs()
    y = mini_xception_outputs(x)
    tests = keras_to_gapnet.test_cases(keras_to_gapnet.convert(keras_to_gapnet.load(KERAS_FILE)), x, y)
    assert len(shipped["tests"]) == len(tests) == 4
    for i, (recorded, fresh_case) in enumerate(zip(shipped["tests"], tests)):
        assert recorded["input"] == fresh_case["input"], f"recorded test {i}: the input is not reference_inputs()[{i}]"
        a = np.frombuffer(base64.b64decode(recorded["output"]["data"]), "<f4")
        assert np.abs(a - y[i]).max() <= 1e-6, f"recorded test {i}: {a} is not MiniXception's {y[i]}"

    difference = verify(gapnet, SHIPPED)
    print(
        f"ok  models/emotion_mini_xception.json is a fresh import; its 4 recorded tests are MiniXception's "
        f"outputs; gapnet verify passes (largest difference {difference:.2g})"
    )

    # The whole image path on the sample face.
    expected = mini_xception_outputs(face_input())[0]
    got = classify(gapnet, SHIPPED, FACE, len(EMOTIONS))
    face_difference = np.abs(got - expected).max()
    assert face_difference <= TOLERANCE, f"face: gapnet {got} vs MiniXception {expected}"
    top = np.argsort(-expected)[:3]
    assert np.array_equal(np.argsort(-got)[:3], top), "gapnet and MiniXception rank the face differently"
    shown = ", ".join(f"{EMOTIONS[i]} {got[i]:.4f} (PyTorch {expected[i]:.4f})" for i in top)
    print(f"ok  {os.path.relpath(FACE, ROOT)}: {shown}; largest difference {face_difference:.2g}")

    # The same import as a Keras 3 archive would carry it must convert to the same layers: rewrite
    # the published weights in the .keras layout with a Keras-3-style config.
    spec = spec_from_published()
    archive = os.path.join(tmp, "mini_xception.keras")
    write_keras3_archive(spec, archive, "3.3.3")
    doc3 = import_model(archive, os.path.join(tmp, "emotion3.json"), "--name", "emotion_mini_xception")
    assert doc3["layers"] == shipped["layers"], "the .keras rewrite converts differently"
    print("ok  the published model rewritten as a Keras 3 .keras archive converts to the same gapnet layers")


def spec_from_published():
    """The published model as a Spec (its config and weights read with h5py), for the .keras rewrite."""
    with h5py.File(KERAS_FILE, "r") as f:
        config = json.loads(f.attrs["model_config"])["config"]
        weights = f["model_weights"]
        spec = Spec("model_1", [64, 64, 1], seed=0)
        spec.layers = []
        for layer in config["layers"]:
            group = weights[layer["name"]]
            names = [n.decode() for n in group.attrs["weight_names"]] if len(group.attrs["weight_names"]) else []
            spec.layers.append(
                {
                    "class_name": layer["class_name"],
                    "name": layer["name"],
                    "config": layer["config"],
                    "inputs": [i[0] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [],
                    "weights": [(n.split("/")[-1].split(":")[0], np.array(group[n])) for n in names],
                }
            )
    return spec

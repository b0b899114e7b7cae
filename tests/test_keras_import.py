#!/usr/bin/python3
"""The Keras importer (tools/keras_to_gapnet.py) against an independent computation.

    /usr/bin/python3 tests/test_keras_import.py PATH/TO/gapnet

Keras and TensorFlow are not installed (and are not needed), so "what Keras computes" comes from
PyTorch modules written here, NCHW, that apply the Keras weights as Keras defines them: kernels as
stored, TensorFlow's `same` padding spelled out (odd pixel at the bottom/right), `same` max pooling
over -inf padding, `same` average pooling divided by the real pixels, Flatten in H-W-C order, Dense
as x @ kernel, a depthwise kernel's multiplier loop written out. None of that computation shares
code with the importer (whose module the test uses only to encode tensors and test cases).

1. The published model models/keras/fer2013_mini_XCEPTION.102-0.66.hdf5 (Keras 2.0.5) against
   `MiniXception`, a hand-written module of its architecture: the shipped
   models/emotion_mini_xception.json must be exactly what the importer writes, its recorded tests
   must be this module's outputs, `gapnet verify` must pass, and `gapnet classify` on the sample
   face must match the module through the whole image path.
2. Small models written with h5py in Keras's own layouts (a Keras 2 .h5, its `model_config` and
   `model_weights` exactly as the published file has them; a Keras 3 .keras zip with config.json and
   model.weights.h5) covering every supported layer: Flatten -> Dense, `same` pooling on odd sizes,
   separable and depthwise convolutions, ZeroPadding2D, Add/Concatenate/Multiply in a functional
   graph, a squeeze-and-excitation gate, and the Keras 2 vs Keras 3 meaning of hard_sigmoid. Each is
   imported, its reference outputs recorded, `gapnet verify` run, and a PNG classified. Three
   deliberate mistakes (Dense weights not permuted after Flatten, `same` padding's odd pixel on the
   wrong side, Keras 3's hard_sigmoid in a Keras 2 file) must make verify fail: the comparison can
   see them.
3. A table of bad files (truncated HDF5, a missing config key, a weight of the wrong shape, an
   unknown layer, a cycle, an unknown inbound layer, ...): each must give exactly one line on stderr
   naming the file and the layer, exit status 1, and no traceback.

Needs Debian's python3-h5py, python3-numpy, python3-torch and python3-pil; a missing one is a
failure, not a skip.

Parts, in tests/: keras_import_reference.py (Keras's semantics in PyTorch, MiniXception),
keras_import_models.py (the small models, written as Keras 2 .h5 and Keras 3 .keras files),
keras_import_checks.py (1 and 2), keras_import_bad_files.py (3), keras_import_common.py (what they
share: paths, the tolerance, running the importer and gapnet).

    /usr/bin/python3 tests/test_keras_import.py --write-reference OUT.npz

writes the shipped model's test inputs (3 seeded random images and the sample face, preprocessed,
channels last) and MiniXception's outputs for them, for `keras_to_gapnet.py --test-data`
(models/keras/README.md has the full command).
"""
import os
import sys
import tempfile

import numpy as np
import torch

from keras_import_bad_files import check_bad_files
from keras_import_checks import check_mistakes_are_seen, check_published_model, check_structure, check_synthetic
from keras_import_common import EMOTIONS
from keras_import_models import chain_model, graph_model, keras3_activations_model, vector_model
from keras_import_reference import mini_xception_outputs, reference_inputs


torch.set_num_threads(1)


# ---- main ---------------------------------------------------------------------------------------------------


def write_reference(path):
    x = reference_inputs()
    y = mini_xception_outputs(x).astype(np.float32)
    np.savez(path, x=x, y=y)
    for i, row in enumerate(y):
        top = np.argsort(-row)[:3]
        print(f"input {i}: " + ", ".join(f"{EMOTIONS[j]} {row[j]:.4f}" for j in top))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-reference":
        write_reference(sys.argv[2])
        return
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: test_keras_import.py PATH/TO/gapnet   (or --write-reference OUT.npz)")
    gapnet = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        check_published_model(gapnet, tmp)
        outputs = {}
        for spec_fn, container, version in (
            (chain_model, "hdf5", "2.0.5"),
            (chain_model, "keras", "3.3.3"),
            (graph_model, "hdf5", "2.4.0"),
            (graph_model, "keras", "3.3.3"),
            (keras3_activations_model, "keras", "3.3.3"),
            (vector_model, "hdf5", "2.4.0"),
            (vector_model, "keras", "3.3.3"),
        ):
            outputs[(spec_fn.__name__, version)] = check_synthetic(gapnet, tmp, spec_fn(), container, version)
        check_structure(outputs[("chain_model", "2.0.5")], outputs[("graph_model", "2.4.0")])
        check_mistakes_are_seen(gapnet, tmp, outputs[("chain_model", "2.0.5")], outputs[("graph_model", "2.4.0")])
        check_bad_files(tmp)
    print("all Keras import tests passed")


if __name__ == "__main__":
    main()

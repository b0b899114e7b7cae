#!/usr/bin/python3
"""ONNX import, end to end: tools/onnx_to_gapnet.py against ONNX's own backend test suite, plus a few
hand-made graphs.

    /usr/bin/python3 tests/test_onnx_conformance.py PATH/TO/gapnet

1. Conformance. Every case in ONNX's node tests (Debian's libonnx-testdata, data/node/test_*) whose
   operators are all ones the converter supports is converted, its weights (W, B, scale, mean, var,
   Clip's bounds, ... given there as extra graph inputs) bound as constants from the case's input_*.pb
   files. The data set's input and expected output, split over the batch dimension N (one test per
   sample), go into the file's "tests"; a "flatten" is appended when the output is a feature map (C-H-W
   order, so the values are unchanged); then `gapnet verify --tolerance 1e-5` must pass. A case the
   converter cannot honour must be refused with its own one-line message, never by a crash. A table
   lists every case as pass or refused: reason. The run fails if any converted case fails
   verification, or if any case in EXPECTED_PASSING does not pass (a regression cannot silently turn
   a pass into a refusal). All cases pass at the default tolerance 1e-5 (|v - r| <= 1e-5 * max(1, |r|)).

   ONNX 1.12's cases for the graph operators (Add, Sum, Mul, Concat, Clip, the activations) use 1-D
   to 3-D tensors, and the binary ones two data inputs, while a gapnet model reads one image or
   vector. Where it changes no value, such a case is lifted to 4-D (lift(): unit axes appended,
   several data inputs packed along the channels and picked apart by exact 0/1 1x1 convolutions), so
   its numbers, ONNX's own, still go through gapnet; the table says "pass (as [3,4,5,1])". The others
   (broadcasting, integer types, shape-dependent operators) are converted as they are and refused.

2. Hand-made graphs (onnx.helper): unsupported operators, attribute values and graph structures
   (a cycle, a Pad not read by a Conv or AveragePool, broadcasting, a grouped or padded Conv on a
   pooled vector, two outputs, ...) are refused with the node named (also through the command line,
   exit status 1, one line); a Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax
   classifier converts and `gapnet classify` gives the probabilities NumPy computes for a real image
   file; graphs using the paths the node tests do not reach must match NumPy references under
   `gapnet verify`: MatMul + Add as one dense, Gemm alpha/beta folding, Reshape to a vector, grouped
   dilated SAME_UPPER convolution, ceil_mode, count_include_pad, opset-11 softmax of a feature map, a
   vector input; and graphs: a residual block with a squeeze-and-excitation gate, an inception-like
   block (Concat, Pads folded into a Conv and an AveragePool, Clip with constant bounds), the
   activations at opset 6 (attribute bounds, defaults; Sigmoid and Mul as one silu), 1x1 Convs on pooled
   vectors as dense layers with dead nodes pruned, and a 1x1 image mixing feature maps and vectors. For
   these the layer list (types, names, what each reads) is checked too.

Needs Debian's python3-onnx, python3-numpy and libonnx-testdata (installed by `make test`); a missing
one is a failure, not a skip.

Parts, in tests/: onnx_conformance_nodes.py (1: the node tests, lift(), EXPECTED_PASSING),
onnx_conformance_refusals.py (2: the refusals, and damaged or hostile files), onnx_conformance_numerics.py
(2: the classifier and the graphs checked against NumPy), onnx_conformance_common.py (what they share).
"""
import os
import sys
import tempfile


try:  # the parts below import these; a missing one is reported here, with its package, not as a traceback
    import numpy  # noqa: F401
    import onnx  # noqa: F401
except ImportError as e:
    sys.exit(
        f"FAIL: {e}: install Debian's python3-onnx and python3-numpy "
        "(apt-get install python3-onnx python3-numpy, or make test)"
    )

from onnx_conformance_common import NODE_TESTS  # noqa: E402
from onnx_conformance_nodes import check_conformance  # noqa: E402
from onnx_conformance_numerics import check_classifier, check_handmade_numerics  # noqa: E402
from onnx_conformance_refusals import check_hostile_files, check_refusals  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/gapnet")
    gapnet = sys.argv[1]
    if not os.access(gapnet, os.X_OK):
        sys.exit(f"FAIL: {gapnet} is not an executable gapnet program")
    if not os.path.isdir(NODE_TESTS):
        sys.exit(f"FAIL: ONNX's node tests are missing ({NODE_TESTS}): apt-get install libonnx-testdata")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for check in (
            check_refusals,
            check_hostile_files,
            check_classifier,
            check_handmade_numerics,
            check_conformance,
        ):
            try:
                check(gapnet, tmp)
            except AssertionError as e:
                print(f"FAIL {check.__name__}: {e}")
                failures += 1
            except Exception as e:  # a crash in one check must not hide the others' results
                print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
                failures += 1
    if failures:
        sys.exit(f"FAIL: {failures} check(s) failed")
    print("all ONNX checks passed")


if __name__ == "__main__":
    main()

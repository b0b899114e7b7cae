"""The engines' side of tools/bench_peers.py: the Python peers' blocks (PyTorch, OpenCV DNN) in a worker
process, ONNX Runtime's installation (tools/ort_worker.js runs its blocks), running those processes,
and the machine facts."""

import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import tempfile
import time

from bench_peers_config import BenchError, ORT_VERSION, PEER_TOLERANCE, ROOT, THREAD_ENV
from bench_peers_models import reference_cases, timing_input, torch_model_from_gapnet


# ----------------------------------------------------------------------------------------------
# Workers: one engine, one block, in a process of its own; print one JSON object.


def time_runs(run, x, warmup, iterations):
    for _ in range(warmup):
        run(x)
    latencies = []
    for _ in range(iterations):
        start = time.perf_counter()
        run(x)
        latencies.append(1e3 * (time.perf_counter() - start))
    return latencies


def loaded_libraries(pattern):
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(p for p in paths if re.search(pattern, os.path.basename(p)))


def openblas_config(paths):
    import ctypes

    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib.openblas_get_config().decode()
        except (OSError, AttributeError):
            continue
    return None


def worker_info():
    """Versions and library facts of the peers, from a process set up as the workers are."""
    import numpy as np
    import torch
    import cv2

    torch.backends.mkldnn.enabled = False
    a = torch.randn(256, 256)
    torch.mm(a, a)  # loads BLAS
    blas = loaded_libraries(r"blas")
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v[\w.]+|oneDNN v[\w.]+", config)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cv2": cv2.__version__,
        "blas_libraries": blas,
        "torch_uses_openblas": any("openblas" in p for p in blas),
        "openblas_config": openblas_config(blas),
        "torch_blas_info": (re.search(r"BLAS_INFO=(\w+)", config) or [None, None])[1],
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "onednn_version": onednn.group(0) if onednn else None,
        "cv2_parallel": next(
            (
                line.split(":", 1)[1].strip()
                for line in cv2.getBuildInformation().splitlines()
                if "Parallel framework" in line
            ),
            None,
        ),
    }


def worker_block(args):
    import numpy as np

    with open(args.model_file) as f:
        doc = json.load(f)
    check_inputs, check_outputs = reference_cases(doc)
    x = timing_input(doc, args.batch)
    if args.worker in ("pytorch", "pytorch-no-mkldnn"):
        import torch

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        torch.backends.mkldnn.enabled = args.worker == "pytorch"
        model = torch_model_from_gapnet(doc)
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model, torch.from_numpy(x)).eval())

        def run(batch):
            with torch.inference_mode():
                return frozen(torch.from_numpy(batch)).numpy()

        threads = torch.get_num_threads()
    elif args.worker == "opencv":
        import cv2

        cv2.setNumThreads(args.threads)
        net = cv2.dnn.readNetFromONNX(args.onnx)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

        def run(batch):
            net.setInput(batch)
            return net.forward()

        threads = cv2.getNumThreads()
    else:
        raise BenchError(f"unknown worker '{args.worker}'")
    got = np.asarray(run(np.ascontiguousarray(check_inputs))).reshape(check_outputs.shape)
    difference = float(np.max(np.abs(got - check_outputs)))
    result = {"engine": args.worker, "threads": threads, "batch": args.batch, "max_difference": difference}
    if not difference <= PEER_TOLERANCE:  # NaN fails too
        result["refused"] = f"outputs differ from PyTorch's recorded ones by {difference:.3g} > {PEER_TOLERANCE:g}"
    else:
        result["latencies_ms"] = time_runs(run, x, args.warmup, args.iterations)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


# ----------------------------------------------------------------------------------------------
# ONNX Runtime: onnxruntime-node from the npm registry, installed on first use into a folder of its
# own; its blocks are run by tools/ort_worker.js.


def default_ort_dir():
    """$GAPNET_ORT_DIR, or a folder of the user's cache: outside the repository, kept between runs."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("GAPNET_ORT_DIR") or os.path.join(cache, "gapnet", f"onnxruntime-node-{ORT_VERSION}")


def installed_ort_version(folder):
    try:
        with open(os.path.join(folder, "node_modules", "onnxruntime-node", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def install_onnxruntime(folder):
    """Makes sure `folder` holds onnxruntime-node ORT_VERSION: if not, `npm install --ignore-scripts`
    it (the package ships its CPU binaries; its install script would only fetch GPU ones) into a
    staging folder beside it, then moves that into place. Any failure is an error, never a skip."""
    if installed_ort_version(folder) == ORT_VERSION:
        return
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        raise BenchError(f"the ONNX Runtime peer needs Node.js and npm; not found: {', '.join(missing)}")
    package = f"onnxruntime-node@{ORT_VERSION}"
    print(f"installing {package} into {folder}", flush=True)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".onnxruntime-node-", dir=os.path.dirname(folder))
    try:
        try:
            run_checked(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", staging, package],
                timeout=900,
            )
        except BenchError as e:
            raise BenchError(f"could not install {package}: {e}")
        if installed_ort_version(staging) != ORT_VERSION:
            raise BenchError(f"npm installed no onnxruntime-node {ORT_VERSION} into {staging}")
        os.chmod(staging, 0o755)  # mkdtemp's folder is private
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:
            if installed_ort_version(folder) != ORT_VERSION:  # not another run's install, done meanwhile
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_checked(command, env=None, timeout=3600):
    """Runs `command`, capturing its output; fails (BenchError, with the output's tail) unless it exits 0."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(command)}")
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BenchError(f"exit status {done.returncode}: {shlex.join(command)}\n{tail}")
    return done


def run_json(command, env=None, timeout=3600, echo=False):
    """Runs `command` and returns the JSON object on the last line of its output (its other lines are
    printed when `echo`)."""
    done = run_checked(command, env, timeout)
    lines = done.stdout.strip().splitlines()
    if echo and len(lines) > 1:
        print("\n".join(lines[:-1]), flush=True)
    try:
        return json.loads(lines[-1])
    except (ValueError, IndexError):
        raise BenchError(f"no JSON from {shlex.join(command)}:\n{done.stdout[-2000:]}")


def thread_env(threads):
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(threads)
    return env


# ----------------------------------------------------------------------------------------------
# Machine facts.


def command_output(command, cwd=None):
    try:
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_facts(args):
    lscpu = command_output(["lscpu"])
    field = lambda name: next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith(name + ":")), "?"  # noqa: E731
    )
    flags = field("Flags").split()
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    openblas_package = command_output(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"])
    return {
        "cpu": field("Model name"),
        "cpus": os.cpu_count(),
        "threads_per_core": field("Thread(s) per core"),
        "hypervisor": field("Hypervisor vendor"),
        "simd": " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16") if f in flags),
        "kernel": platform.release(),
        "debian": debian,
        "openblas_package": openblas_package,
        "load_average_start": os.getloadavg(),
        "gapnet_version": command_output([args.gapnet, "--version"]),
        "git_describe": command_output(["git", "describe", "--always", "--dirty", "--tags"], cwd=ROOT),
        "compiler": command_output(["c++", "--version"]).splitlines()[0] if shutil.which("c++") else "?",
    }

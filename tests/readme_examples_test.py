#!/usr/bin/python3
"""Every command of the README runs, and prints what the README shows.

Usage: readme_examples_test.py GAPNET SOURCE_DIR

The commands are read from README.md itself, so the test follows the README as it changes:
  - ```sh blocks: every line (a trailing backslash continues it), `$gapnet` being the program;
  - blocks without a language: the lines after a `$ ` prompt are commands, the lines up to the next
    prompt their output as the README shows it. Each shown line must be a line of the actual output
    (spaces at the ends aside), except the lines that are measurements of this machine (latency,
    memory), which change from run to run.
Commands run in a scratch directory holding links to the tree's models/, data/, tools/ and the
program, so what they write (cam.png, conv4.npy, docs/cam-emotion.png) does not touch the tree. The
README's placeholders get real files: IMAGE... two sample images, photo.png a sample, photos/ a JPEG.
Not run, by rule: `make demo` and `make test` (CI is them) and the full peer benchmark (45 minutes;
its smoke run is the bench_peers_smoke test). A command that fails, or output that differs, fails
the test with the command and what differed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Commands CI does not run from here, and why.
NOT_RUN = {
    r"^make (demo|test)\b": "the README's two set-up commands: CI runs them itself",
    r"tools/bench_peers\.py --rounds": "the full peer benchmark (45 minutes); its smoke run is a test",
}
# Shown output lines that measure this machine, not the program.
VOLATILE = re.compile(r"latency|Latency|peak memory")
PLACEHOLDERS = {"IMAGE...": "data/samples/bag.png data/samples/coat.png"}


def commands(readme):
    """(command, shown output lines or None) in README order."""
    found, block, language = [], None, None
    for line in readme.splitlines():
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            if block is None:
                block, language = [], fence.group(1)
                continue
            if language == "sh":
                joined = "\n".join(block).replace("\\\n", " ")
                found += [(c, None) for c in joined.splitlines() if c.strip()]
            elif language == "":
                current = None
                for line in block:
                    if line.startswith("$ "):
                        current = [line[2:], []]
                        found.append(current)
                    elif current is not None:
                        if current[0].endswith("\\") and not current[1]:
                            current[0] = current[0][:-1] + " " + line.strip()
                        else:
                            current[1].append(line)
            block = None
        elif block is not None:
            block.append(line)
    return [(c, shown) for c, shown in found]


def scratch_dir(source, gapnet):
    d = tempfile.mkdtemp(prefix="gapnet-readme-")
    for name in ("models", "data", "tools", "include", "examples"):
        os.symlink(os.path.join(source, name), os.path.join(d, name))
    os.makedirs(os.path.join(d, "build", "release"))
    os.symlink(os.path.abspath(gapnet), os.path.join(d, "build", "release", "gapnet"))
    os.makedirs(os.path.join(d, "docs"))
    shutil.copy(os.path.join(source, "data", "samples", "bag.png"), os.path.join(d, "photo.png"))
    os.makedirs(os.path.join(d, "photos"))
    from PIL import Image  # python3-pil, a test dependency

    Image.open(os.path.join(source, "data", "samples", "faces", "astronaut.png")).convert("RGB").save(
        os.path.join(d, "photos", "astronaut.jpg"), quality=90
    )
    return d


def main():
    gapnet, source = sys.argv[1], os.path.abspath(sys.argv[2])
    with open(os.path.join(source, "README.md"), encoding="utf-8") as f:
        found = commands(f.read())
    d = scratch_dir(source, gapnet)
    failures, ran = [], 0
    try:
        for command, shown in found:
            text = command.split("  #")[0].strip() if "  #" in command else command.strip()
            if not text or text.startswith("gapnet="):
                continue  # the variable every command gets
            why = next((why for pattern, why in NOT_RUN.items() if re.search(pattern, text)), None)
            if why:
                print(f"not run: {text}  ({why})")
                continue
            for placeholder, value in PLACEHOLDERS.items():
                text = text.replace(placeholder, value)
            env = dict(os.environ, gapnet="build/release/gapnet")
            p = subprocess.run(
                ["bash", "-o", "pipefail", "-c", text], cwd=d, env=env, capture_output=True, text=True, timeout=900
            )
            ran += 1
            if p.returncode != 0:
                failures.append(f"{text}\n  exit {p.returncode}: {p.stderr.strip()[-500:]}")
                continue
            if shown:
                actual = {line.strip() for line in p.stdout.splitlines()}
                missing = [
                    line for line in shown if line.strip() and not VOLATILE.search(line) and line.strip() not in actual
                ]
                if missing:
                    failures.append(
                        f"{text}\n  the README shows lines the program does not print:\n    "
                        + "\n    ".join(missing)
                        + "\n  it printed:\n    "
                        + "\n    ".join(p.stdout.splitlines())
                    )
                    continue
            print(f"ok: {text}")
    finally:
        shutil.rmtree(d)
    if ran < 20:  # the README has more; fewer means the parsing broke
        failures.append(f"only {ran} commands found in README.md")
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    print(f"{ran} commands run, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

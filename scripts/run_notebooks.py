"""Execute notebooks in place so their stored outputs are what the code produces today.

Usage: python scripts/run_notebooks.py notebooks/01_sip_message_parser.ipynb [...]
Runs each top to bottom with the current venv's kernel (working directory: notebooks/),
prints how long each took, and fails loudly on the first cell error.
"""
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(
        nb, {"metadata": {"path": str(path.parent)}}
    )
    elapsed = time.perf_counter() - started
    nbformat.write(nb, path)
    return elapsed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {run(Path(name)):.1f} s", flush=True)

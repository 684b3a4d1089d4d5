"""Write an ImageNet-sized synthetic step-1 file, to benchmark step 2.

1000 classes, VGG16's 13 convolution layers (4224 filters), random activations
in [0, 1) (seed 0). Usage:

    python bench/make_synthetic_step1.py /tmp/synth
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from filtag.artifacts import write_vars

VGG16_FILTERS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]

#: The file's name inside the folder.
FILE_NAME = "2026-01-01-0000-QFA-VGG16-vars.pkl"


def write_synthetic_step1(folder: Path, n_classes: int = 1000) -> Path:
    """Write the synthetic step-1 file set into ``folder``; return the vars path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    variables = {"labels_id": {i: f"n{i:08d}" for i in range(n_classes)}}
    for i in range(n_classes):
        variables[f"filter_act_{i}"] = [rng.random(n) for n in VGG16_FILTERS]
    variables["meta"] = {"step": "QFA", "network": "VGG16"}
    return write_vars(
        folder / FILE_NAME, variables, "synthetic ImageNet-sized step-1 file"
    )


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/synth")
    print(write_synthetic_step1(folder))


if __name__ == "__main__":
    main()

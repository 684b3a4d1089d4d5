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


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/synth")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    variables = {"labels_id": {i: f"n{i:08d}" for i in range(1000)}}
    for i in range(1000):
        variables[f"filter_act_{i}"] = [rng.random(n) for n in VGG16_FILTERS]
    variables["meta"] = {"step": "QFA", "network": "VGG16"}
    path = folder / "2026-01-01-0000-QFA-VGG16-vars.pkl"
    print(write_vars(path, variables, "synthetic ImageNet-sized step-1 file"))


if __name__ == "__main__":
    main()

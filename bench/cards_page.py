"""Measure the tag page with filter cards at ImageNet shape (1000 classes).

Step 1 runs for real (EfficientNet-Lite0 with its ImageNet weights on the 20
ImageNet JPEGs of ``tests/support/lite0.py``: real exemplars, real feature
maps); its file is then widened to the 1000 ImageNet classes with random class
activations (seed 0), as a full ImageNet run would have; step 2 tags (k = 5)
and ``filtag vis`` writes the page of the last 4 layers (3904 filter cards).
Prints the page's size, the cards' share and the pictures folder's size; the
wall time and peak memory of ``filtag vis`` come from ``/usr/bin/time -v``.

    python bench/cards_page.py /tmp/cards_bench
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import filtag
import tests.support.torch_shim  # noqa: F401
from filtag.artifacts import load_vars, write_vars
from filtag.labels import imagenet_wnids
from tests.support.lite0 import imagenet_images_dir, lite0_model_path


def widened_step1(root: Path) -> Path:
    """Run step 1 on the 20 JPEGs; rewrite its file with 1000 classes; return it."""
    model = lite0_model_path(root / "lite0")
    images = imagenet_images_dir(root / "imagenet" / "images")
    path = filtag.step1(network=str(model), images_dir=images, save_dir=root).path
    v = load_vars(path)
    sizes = [len(a) for a in v["filter_act_0"]]
    wnids = list(imagenet_wnids())[:1000]
    rng = np.random.default_rng(0)
    widened = {"labels_id": dict(enumerate(wnids))}
    widened |= {f"filter_act_{i}": [rng.random(n) for n in sizes] for i in range(1000)}
    widened |= {
        key: value
        for key, value in v.items()
        if key != "labels_id" and not key.startswith("filter_act_")
    }
    widened["meta"] = {**v["meta"], "class_names": wnids}
    return write_vars(path, widened, "step 1 widened to 1000 classes")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cards_bench")
    step2 = filtag.step2(activations_file=widened_step1(root), k_q=[5], save_dir=root)
    command = [sys.executable, "-m", "filtag", "vis", "--filtags-file",
               str(step2.path), "--save-dir", str(root / "vis")]  # fmt: skip
    measured = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True
    )
    for line in measured.stderr.splitlines():
        if "Elapsed" in line or "Maximum resident" in line or "tag page:" in line:
            print(line.strip())
    page = Path(measured.stdout.strip().splitlines()[-1])
    text = page.read_text(encoding="utf-8")
    cards = len(text) - text.find('<h2 id="cards">')
    folder = page.with_name(page.stem + "-cards")
    pictures = sum(f.stat().st_size for f in folder.iterdir())
    count = text.count('class="card"')
    print(f"page {len(text.encode()) / 1e6:.2f} MB, of which the cards "
          f"{cards / 1e6:.2f} MB ({count} cards); "
          f"pictures {pictures / 1e6:.1f} MB in {folder.name}/")  # fmt: skip


if __name__ == "__main__":
    main()

"""Let torchvision's Python models import where its C extension cannot load.

PyPI's torchvision wheels are built against CUDA torch; with torch's CPU build
(what this project's test machines have) their ``_C`` extension does not load,
and torchvision 0.28's ``_meta_registrations`` then fails at import on two
operators it registers without checking (``torchvision::nms``, ``qnms``).
Defining those two schemas first lets ``import torchvision`` (and timm) work;
the models filtag uses need neither operator. Import this module before
torchvision; it does nothing where the extension loads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_LIBRARY = None


def install() -> None:
    """Define the two schemas when torchvision's extension cannot load."""
    global _LIBRARY
    spec = importlib.util.find_spec("torchvision")
    if spec is None or _LIBRARY is not None:
        return
    import torch

    extension = next(Path(spec.origin).parent.glob("_C*.so"), None)
    try:
        if extension is not None:
            torch.ops.load_library(str(extension))
            return
    except OSError:
        pass
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        _LIBRARY.define(
            f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        )


install()

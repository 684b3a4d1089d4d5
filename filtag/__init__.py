"""filtag: explain image-classification CNNs by tagging their filters with classes.

The method (FilTag, AIMLAI@CIKM'22) in four steps, one module each:

- :mod:`filtag.activations`: step 1, mean scaled filter activations per class;
- :mod:`filtag.tagging`: step 2, tag each filter with the classes that activate it most;
- :mod:`filtag.evaluation`: step 3, rank classes by the tags of active filters;
- :mod:`filtag.hitrates`: step 4, how often that ranking agrees with the network.

The Python API runs them with keyword arguments and returns typed results::

    import filtag

    r1 = filtag.step1()  # the embedded default; or network=..., images_dir=...
    r2 = filtag.step2(activations_file=r1.path)
    r3 = filtag.step3(filtags_file=r2.path)
    r4 = filtag.step4(eval_file=r3.path)
    print(r4.summary)

Importing filtag imports neither TensorFlow nor anything heavy, and changes no
environment variable; the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

#: The public names, and the module each lives in.
_API = {
    "step1": "filtag.steps",
    "step2": "filtag.steps",
    "step3": "filtag.steps",
    "step4": "filtag.steps",
    "explain": "filtag.steps",
    "RunResult": "filtag.steps",
    "Step1Result": "filtag.steps",
    "Step2Result": "filtag.steps",
    "Step3Result": "filtag.steps",
    "Step4Result": "filtag.steps",
    "ExplainResult": "filtag.steps",
    "check": "filtag.tagcheck",
    "CheckResult": "filtag.results",
    "decode": "filtag.relabel",
    "tag_views": "filtag.views",
    "hitrate_plots": "filtag.views",
    "demo": "filtag.quickstart",
    "DemoResult": "filtag.quickstart",
    "load_vars": "filtag.artifacts",
    "FiltagError": "filtag.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'filtag' has no attribute {name!r}")

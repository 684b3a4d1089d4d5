"""Files exactly as the original FilTag scripts write them (for compatibility tests).

The original ``step1collectingactivations.py`` and ``step2labelfilters.py``
(FilTag, AIMLAI@CIKM'22) write with plain ``pickle.dump`` calls, in this order:

- step 1: ``<runid>-CA-<network>-vars`` (no ``.pkl``) holding
  ``train_filenames``, ``test_filenames`` (full paths ``images_dir/class/file``),
  ``labels_id`` ({index: folder name}) and then one list of float32 arrays per
  class; ``<...>-vars-names`` holds the list of names, the class entries
  written as ``"filter_act_<i>: filter activations of class <name>"``;
- step 2: ``<runid>-LF-<network>-vars`` holding ``labels_filters`` (a dict
  {position in the k list: [per layer [per filter [class names]]]}) and
  ``labels_filters_per`` ({q value: ...}); ``-vars-names`` lists those two.

The functions below reproduce that pickling (not filtag's writer), from values
given by the test.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_step1(
    save_dir: Path,
    network: str,
    images_dir: str,
    train: list[str],
    test: list[str],
    class_names: list[str],
    activations: list[list[np.ndarray]],
) -> Path:
    """Write a step-1 file as the original script does; return its ``-vars`` path.

    Args:
        train, test: image paths relative to ``images_dir`` (``class/file``).
        class_names: the folder names, class index order.
        activations: per class, per layer, the filter activations.
    """
    save_vars = save_dir / f"2021-01-01-0000-CA-{network}-vars"
    names = ["train_filenames", "test_filenames", "labels_id"]
    labels_id = dict(enumerate(class_names))
    with open(save_vars, "wb") as p:
        pickle.dump([f"{images_dir}/{f}" for f in train], p)
        pickle.dump([f"{images_dir}/{f}" for f in test], p)
        pickle.dump(labels_id, p)
    for i, per_layer in enumerate(activations):
        with open(save_vars, "ab") as p:
            pickle.dump([np.asarray(a, np.float32) for a in per_layer], p)
        names.append(f"filter_act_{i}: filter activations of class {labels_id[i]}")
        with open(f"{save_vars}-names", "wb") as p:
            pickle.dump(names, p)
    return save_vars


def write_step2(
    save_dir: Path, network: str, k: list[int], tags_k: dict, tags_q: dict
) -> Path:
    """Write a step-2 file as the original script does; return its ``-vars`` path.

    Args:
        k: the original's k list (its k tags are keyed by position in it).
        tags_k, tags_q: {value: [per layer [per filter [class names]]]}.
    """
    save_vars = save_dir / f"2021-01-01-0000-LF-{network}-vars"
    with open(save_vars, "wb") as p:
        pickle.dump({i: tags_k[value] for i, value in enumerate(k)}, p)
    with open(save_vars, "ab") as p:
        pickle.dump({value: tags_q[value] for value in k}, p)
    with open(f"{save_vars}-names", "wb") as r:
        pickle.dump(["labels_filters", "labels_filters_per"], r)
    return save_vars

"""The steps end to end: read the inputs, run the stages, write the run's files.

Each ``stepN`` function takes the validated command-line values of its script
and returns the path of the ``-vars.pkl`` it wrote. The stages it calls
(:mod:`filtag.activations`, ...) do no file I/O of their own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from filtag import __version__
from filtag.artifacts import reserve_run, write_vars
from filtag.cli import run_logs

logger = logging.getLogger(__name__)


def package_versions() -> dict[str, str]:
    """Return the versions of Python and the packages that shape the results."""
    versions = {"python": platform.python_version(), "filtag": __version__}
    for name in ("tensorflow", "keras", "numpy", "pillow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_digest(train: list[list[str]], test: list[list[str]]) -> str:
    """Return the SHA-256 of a split's file lists, to recognise the same split later."""
    return hashlib.sha256(
        json.dumps([train, test]).encode("utf-8", "surrogateescape")
    ).hexdigest()


def step1(args: argparse.Namespace) -> Path:
    """Step 1: per class, the mean scaled activation of every selected filter.

    Args:
        args: network, weights, images_dir, save_dir, split, seed_rn,
            time_delta, batch_size, preprocess, interpolation, class_names,
            layers (see :data:`filtag.cli.FLAGS`).

    Returns:
        The ``-vars.pkl`` written.
    """
    from filtag import activations, data, labels, models

    classes = data.list_classes(args.images_dir)
    model = models.load_network(args.network, args.weights)
    layers = models.select_layers(model, args.layers)
    spec = models.image_spec(model, args.interpolation)
    preprocess = models.resolve_preprocess(args.preprocess, args.network)
    class_names = labels.output_class_names(
        int(model.output_shape[-1]), classes, args.class_names
    )
    probe = activations.FilterProbe(
        model, layers, models.preprocess_function(preprocess)
    )

    run = reserve_run(
        args.save_dir, "QFA", models.network_name(args.network), args.time_delta
    )
    with run_logs(run):
        logger.info("step 1 run %s: %s", run.prefix, vars(args))
        split = data.split_images(args.images_dir, args.split, args.seed_rn)
        logger.info(
            "%d classes, %d train and %d test images; %d layers, %d filters",
            len(split.classes),
            sum(map(len, split.train)),
            sum(map(len, split.test)),
            len(layers),
            sum(probe.filters_per_layer),
        )
        paths, image_labels = split.files("train")
        dataset = data.image_dataset(
            [args.images_dir / p for p in paths], spec, args.batch_size
        )
        with logging_redirect_tqdm(), tqdm(total=len(paths), unit="img") as bar:
            sums, counts = activations.class_sums(
                probe, dataset, image_labels, len(split.classes), bar
            )
        expected = np.bincount(image_labels, minlength=len(split.classes))
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]
        for index in np.flatnonzero(counts == 0):
            logger.warning(
                "class %r has no readable train image; its filter activations are NaN",
                split.classes[index],
            )
        skipped = int((expected - counts).sum())
        logger.info(
            "read %d train images; skipped %d broken and %d non-image files",
            int(counts.sum()),
            skipped,
            len(split.rejected),
        )
        meta = {
            "step": "QFA",
            "run_id": run.run_id,
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "network": models.network_name(args.network),
            "model_path": str(Path(args.network).resolve())
            if models.is_model_file(args.network)
            else None,
            "model_sha256": file_digest(Path(args.network))
            if models.is_model_file(args.network)
            else None,
            "weights": args.weights,
            "layers_rule": args.layers,
            "layer_names": [layer.name for layer in layers],
            "filters_per_layer": list(probe.filters_per_layer),
            "image_size": [spec.height, spec.width],
            "color_mode": spec.color_mode,
            "preprocess": preprocess,
            "interpolation": spec.interpolation,
            "images_dir": str(args.images_dir.resolve()),
            "split": args.split,
            "seed_rn": args.seed_rn,
            "split_sha256": split_digest(split.train, split.test),
            "images_per_class": {
                name: int(n) for name, n in zip(split.classes, counts, strict=True)
            },
            "skipped_broken": skipped,
            "skipped_not_images": dict(split.rejected),
            "class_names": class_names,
            "batch_size": args.batch_size,
            "versions": package_versions(),
        }
        variables: dict[str, Any] = {
            "labels_id": dict(enumerate(split.classes)),
            "train_filenames": paths,
            "test_filenames": split.files("test")[0],
        }
        for index, row in enumerate(means):
            variables[f"filter_act_{index}"] = probe.split_layers(row)
        variables["meta"] = meta
        header = f"filtag step 1 (filter activations), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)

"""Run filtag end to end on the embedded default, offline.

The first run trains a small CNN on Fashion-MNIST (about 2 minutes on 2 CPU
cores; cached in default/) and writes 300 real test images per class into
default/images/<class>/. Then it runs the four FilTag steps on them with the
step scripts' own defaults (k_q = 0..25, m = 1..5): filter activations, filter
tags, evaluation of the test images, hit rates; prints the total hit-rate
tables and where the results are.

Example:
    python rundefault.py --save-dir results
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import step1filteractivations
import step2filtertags
import step3evaluation
import step4hitrates
from filtag import cli, default, pipeline

logger = logging.getLogger("filtag.rundefault")

# --- Inputs: edit here, or override with flags ------------------------------------
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run ids
BATCH_SIZE = 32
# -----------------------------------------------------------------------------------


def run_default(args: argparse.Namespace) -> Path:
    """Make the embedded default if needed and run steps 1-4; return step 4's file."""
    files = default.ensure_default()
    accuracy = json.loads(files.accuracy.read_text())["test_accuracy"]
    logger.info("default CNN %s: test accuracy %.2f %%", files.model, 100 * accuracy)
    common = ["--save-dir", str(args.save_dir), "--time-delta", str(args.time_delta)]
    batch = ["--batch-size", str(args.batch_size)]
    step1_file = pipeline.step1(
        step1filteractivations.parse_args(
            ["--network", str(files.model), "--images-dir", str(files.images_dir)]
            + batch
            + common
        )
    )
    step2_file = pipeline.step2(
        step2filtertags.parse_args(["--activations-file", str(step1_file), *common])
    )
    step3_file = pipeline.step3(
        step3evaluation.parse_args(["--filtags-file", str(step2_file), *batch, *common])
    )
    step4_file = pipeline.step4(
        step4hitrates.parse_args(["--eval-file", str(step3_file), *common])
    )
    for step, path in enumerate((step1_file, step2_file, step3_file, step4_file), 1):
        logger.info("step %d: %s", step, path)
    logger.info(
        "hit-rate tables: %s", str(step4_file).replace("-vars.pkl", "-results.txt")
    )
    logger.info("results are in %s", args.save_dir.resolve())
    return step4_file


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(
        __doc__, argv, save_dir=SAVE_DIR, time_delta=TIME_DELTA, batch_size=BATCH_SIZE
    )
    return cli.run(run_default, args)


if __name__ == "__main__":
    raise SystemExit(main())

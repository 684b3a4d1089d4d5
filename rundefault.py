"""Run filtag end to end on the embedded default, offline.

The first run trains a small CNN on Fashion-MNIST (about 2 minutes on 2 CPU
cores; cached in default/) and writes 300 real test images per class into
default/images/<class>/. Then it runs the four FilTag steps on them with the
step scripts' own defaults (k_q = 0..25, m = 1..5): filter activations, filter
tags, evaluation of the test images, hit rates; then the views: the filter tag
page, the hit-rate plots, three explained test images, and a report page that
links them all (<id>-HR-<network>-report.html). It prints the total hit-rate
tables and, last, the path of the report.

Example:
    python rundefault.py --save-dir results
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import step1filteractivations
import step2filtertags
import step3evaluation
import step4hitrates
from filtag import cli, default, pipeline, views
from filtag.artifacts import atomic_write_text, load_vars
from filtag.report import report_html

filtagsvis = importlib.import_module("filTagsvis")
hitrates_plots = importlib.import_module("hitrates-plots")
si_eval = importlib.import_module("si-eval")

logger = logging.getLogger("filtag.rundefault")

# --- Inputs: edit here, or override with flags ------------------------------------
SAVE_DIR = "results"
TIME_DELTA = 0  # hours from UTC for the run ids
BATCH_SIZE = 32
# -----------------------------------------------------------------------------------


def run_default(args: argparse.Namespace) -> Path:
    """Make the embedded default if needed, run steps 1-4 and the views.

    Returns:
        The report page, ``<id>-HR-<network>-report.html``.
    """
    files = default.ensure_default()
    accuracy = json.loads(files.accuracy.read_text())["test_accuracy"]
    logger.info("default CNN %s: test accuracy %.2f %%", files.model, 100 * accuracy)
    common = ["--save-dir", str(args.save_dir), "--time-delta", str(args.time_delta)]
    batch = ["--batch-size", str(args.batch_size)]
    network = ["--network", str(files.model), "--images-dir", str(files.images_dir)]
    step1_file = pipeline.step1(
        step1filteractivations.parse_args([*network, *batch, *common])
    )
    step2_file = pipeline.step2(
        step2filtertags.parse_args(
            ["--activations-file", str(step1_file), "--export", *common]
        )
    )
    step3_file = pipeline.step3(
        step3evaluation.parse_args(
            ["--filtags-file", str(step2_file), "--export", *batch, *common]
        )
    )
    step4_file = pipeline.step4(
        step4hitrates.parse_args(["--eval-file", str(step3_file), *common])
    )
    tags_page = views.write_tag_views(
        filtagsvis.parse_args(["--filtags-file", str(step2_file), *common])
    )
    rates_page = views.write_hitrate_plots(
        hitrates_plots.parse_args(["--hitrates-file", str(step4_file), *common])
    )
    explained = []
    for image in _example_images(load_vars(step1_file, "QFA")["test_filenames"]):
        image_args = si_eval.parse_args(
            ["--filtags-file", str(step2_file), "--html", *common,
             "--image", str(files.images_dir / image)]
        )  # fmt: skip
        image_args.quiet = True  # the report links the pages
        text = pipeline.si_eval(image_args)
        explained.append((image, _beside(text, "-explanation.html", "-results.txt")))
    v4 = load_vars(step4_file, "HR")
    pages = [
        ("filter tags (k = 5): tag maps and classes sharing filters", tags_page),
        ("hit rates against m", rates_page),
        ("hit-rate tables (text)", _beside(step4_file, "-results.txt")),
        ("step 2 tags (CSV)", _beside(step2_file, "-tags.csv")),
        ("step 3 rankings (CSV)", _beside(step3_file, "-rankings.csv")),
    ]
    steps = (step1_file, step2_file, step3_file, step4_file)
    facts = [
        f"network: {files.model.name}, test accuracy {100 * accuracy:.2f} % on the "
        "10,000 Fashion-MNIST test images",
        f"{v4['meta']['images']} test images of {len(v4['hit_k'])} classes evaluated",
        *(f"step {i}: {path.name}" for i, path in enumerate(steps, 1)),
    ]
    report = _beside(step4_file, "-report.html")
    totals = {
        variant: v4[f"totalhit_{variant}"] for variant in ("k", "q", "k_ll", "q_ll")
    }
    atomic_write_text(
        report,
        report_html("filtag on the embedded default", facts, pages, totals, explained,
                    args.save_dir),
    )  # fmt: skip
    logger.info("results are in %s; open %s", args.save_dir.resolve(), report)
    return report


def _beside(path: Path, suffix: str, old: str = "-vars.pkl") -> Path:
    """Return the run's file with ``suffix`` for ``old``: x-vars.pkl -> x-tags.csv."""
    return path.with_name(path.name.removesuffix(old) + suffix)


def _example_images(test_files: list[str], n: int = 3) -> list[str]:
    """Return the first test image of the first ``n`` classes."""
    firsts = {path.split("/")[0]: path for path in reversed(test_files)}
    return [firsts[name] for name in sorted(firsts)[:n]]


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(
        __doc__, argv, save_dir=SAVE_DIR, time_delta=TIME_DELTA, batch_size=BATCH_SIZE
    )
    return cli.run(run_default, args)


if __name__ == "__main__":
    raise SystemExit(main())

"""filtag's commands: the ``filtag`` console command, ``python -m filtag``, the scripts.

Each command runs one function of the Python API with the inputs of its flags.
``filtag step1 ...`` and ``python step1filteractivations.py ...`` are the same
command; a script passes its Inputs block as the defaults of the flags.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from filtag import __version__, cli
from filtag.text import printable


@dataclass(frozen=True)
class Command:
    """One command.

    Attributes:
        function: ``module:function`` of the API it runs (imported on use).
        script: the top-level script that runs the same command.
        doc: what it does, for ``--help``.
        defaults: {input name: default}, in flag order.
        required: inputs without which it cannot run.
        show: prints the asked-for output of a result (before its path).
        tensorflow: whether it runs a network (TensorFlow is imported quietly
            first); the others never import TensorFlow.
    """

    function: str
    script: str
    doc: str
    defaults: dict[str, Any]
    required: tuple[str, ...] = ()
    show: Callable[[Any], None] | None = field(default=None)
    tensorflow: bool = True

    def run(self) -> Callable[..., Any]:
        """Return the API function."""
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)


def _show_totals(result: Any) -> None:
    """Print step 4's pooled tables and its summary."""
    from filtag import report

    meta = result.load()["meta"]
    m_values = meta["m"]
    print(report.chance_line(m_values, meta["n_classes"]) + "\n")
    print(report.rate_tables("Total (pooled over all images)", result.totals))
    print(printable(result.summary))


def _show_text(result: Any) -> None:
    print(printable(result.text))


def _show_summary(result: Any) -> None:
    print(printable(result.summary))


_COMMON = {"save_dir": "results", "time_delta": 0}

#: Where steps 1 and 3 run their forward passes (see filtag.ray_engine).
_ENGINE = {
    "engine": "local",
    "ray_address": None,
    "ray_actors": None,
    "ray_gpus_per_actor": None,
}

COMMANDS: dict[str, Command] = {
    "step1": Command(
        "filtag.steps:step1",
        "step1filteractivations.py",
        """Step 1 of FilTag: the mean scaled activation of every filter, per class.

Feeds the train images of each class through the network. For every selected
layer of every image, the layer output is scaled into [0, 1] by min-max over the
whole layer output, each feature map is averaged to one number, and these are
averaged over the images of the class: one filter activation per (class, layer,
filter). In the same pass, every filter keeps its --exemplars train images with
the largest value (its exemplars). The train/test split (per class,
deterministic in --seed-rn) is the one step 3 rebuilds. Each finished class is
journaled; --resume RUN_ID continues an interrupted run with the same result.
With --engine ray, the forward passes run in a pool of Ray actors (a local Ray,
or a cluster with --ray-address auto); the result equals --engine local's.

Writes, in --save-dir, <run id>-QFA-<network>-vars.pkl with labels_id,
train_filenames, test_filenames, filter_act_<i> per class, exemplar_images,
exemplar_values and meta (see -vars-info.txt), and prints that path as its last
line.

Examples:
    filtag step1 --network VGG16 --images-dir imagenet/train
    filtag step1 --network torchvision:resnet18 --images-dir imagenet/train""",
        {
            "network": "default",
            "weights": None,
            "images_dir": None,
            **_COMMON,
            "split": 0.2,
            "seed_rn": 123,
            "batch_size": 32,
            "preprocess": "auto",
            "mean": None,
            "std": None,
            "interpolation": "auto",
            "image_size": None,
            "class_names": None,
            "layers": "conv",
            "exemplars": 9,
            "mixed_precision": False,
            "xla": "auto",
            "resume": None,
            **_ENGINE,
        },
        ("network",),
    ),
    "step2": Command(
        "filtag.steps:step2",
        "step2filtertags.py",
        """Step 2 of FilTag: tag each filter with the classes that activate it most.

For every k in --k-q, a filter is tagged with a class when it is among the k
largest filter activations of its layer for that class (k = 0: strictly above
the layer's mean; a k larger than the layer falls back to the mean rule). For
every q in --k-q, the same with the p = max(1, floor(q / 100 * filters + 0.5))
largest (q = 0 or q > 100: the mean rule). Ties at the cut go to the lower
filter index.

Reads step 1's -vars.pkl (or a step-1 file of the original FilTag scripts);
writes, in --save-dir, <run id>-TF-<network>-vars.pkl with filTags_k, filTags_q
and meta (see -vars-info.txt), and prints its path as the last line. Needs no
TensorFlow.

Example:
    filtag step2 --k-q 0-25 --activations-file results/...-QFA-VGG16-vars.pkl""",
        {"activations_file": None, "k_q": "0-25", "export": False, **_COMMON},
        ("activations_file",),
        tensorflow=False,
    ),
    "step3": Command(
        "filtag.steps:step3",
        "step3evaluation.py",
        """Step 3 of FilTag: rank each test image's classes by the tags of its filters.

Rebuilds step 1's train/test split and, for each test image, runs the network
once: its top-5 prediction, and its filter activations. For each k (and q) of
--k-q, the image's active filters per layer are chosen by step 2's rule; each
active filter adds 1 for each of its tags; the classes are ranked by count
(descending, ties by class index), over all layers and over the last layer, and
the first --top of them are kept. With --engine ray, the forward passes run in
a pool of Ray actors (see step1 --help); the class files are the same.

Reads step 2's -vars.pkl (the network, preprocessing and layers come from step
1 through it); writes, in --save-dir, one <run id>-E-<network>-varsX.pkl per
class X (y, y_k, y_k_ll, y_q, y_q_ll, class_images_dict) and the index
<run id>-E-<network>-vars.pkl (eval_files, k_q, classes, meta), whose path it
prints as the last line.

Example:
    filtag step3 --filtags-file results/...-TF-VGG16-vars.pkl --k-q 1,5,25""",
        {
            "filtags_file": None,
            "k_q": None,
            "top": 20,
            "images_dir": None,
            "split": None,
            "seed_rn": None,
            **_COMMON,
            "batch_size": 32,
            "classes": None,
            "export": False,
            "mixed_precision": False,
            "xla": "auto",
            "resume": None,
            **_ENGINE,
        },
        ("filtags_file",),
    ),
    "step4": Command(
        "filtag.steps:step4",
        "step4hitrates.py",
        """Step 4 of FilTag: hit rates of the tag rankings against the network.

hit(image, k, m) = the network's top-1 class is among the first m classes of the
image's tag ranking. The rates are fractions in [0, 1]: per class, pooled over
all evaluated images (total) and averaged over classes (mean); for all layers
and for the last layer only. Chance, for a random ranking, is m / classes.

Reads step 3's index -vars.pkl (and the per-class files beside it); writes, in
--save-dir, <run id>-HR-<network>-vars.pkl (hit_*, totalhit_*, meanhit_*,
meta) and -results.txt with the tables; prints the total tables and the best
rule, then the path of the -vars.pkl as the last line.

Example:
    filtag step4 --eval-file results/...-E-VGG16-vars.pkl --m 1-5""",
        {"eval_file": None, "m": "1-5", "k_q": None, "classes_img": None, **_COMMON},
        ("eval_file",),
        _show_totals,
        tensorflow=False,
    ),
    "explain": Command(
        "filtag.steps:explain",
        "si-eval.py",
        """Explain single images by the tags of their most active filters.

For one class: each test image's tag counts (all layers and the last layer, for
the chosen k or q), with the network's prediction beside them. With --image:
any image file in full: whether the tags agree with the network (a hit: the
class the tags rank first is the network's top-1), the network's top-5, the
classes ranked by the tags of the image's active filters, and per layer which
active filters carried which tags (and with --html, the same as a page with the
image, titled by its file name, the network's class highlighted, and where
the active filters fire: each one's feature map laid over the image, grouped
by class tag, with the summed map of each top-ranked class; with --cards-page
a tag page of filtag vis, each active filter links to its card there).

Reads step 2's -vars.pkl (the network and its layers come from step 1 through
it); writes <run id>-SI-<network>-results.txt (and -explanation.html) in
--save-dir, prints the explanation, then the path of the results as the last
line. A step-2 file of the original FilTag scripts records no network: pass
--network (--weights, --layers: default the original's 'conv' in the layer
name) with --image.

Examples:
    filtag explain --filtags-file results/...-TF-VGG16-vars.pkl --class-name Bag
    filtag explain --filtags-file results/...-TF-VGG16-vars.pkl \\
        --image my_cat.jpg --kind q --value 5 --html""",
        {
            "filtags_file": None,
            "class_name": None,
            "image": None,
            "kind": "k",
            "value": None,
            "html": False,
            "cards_page": None,
            "images_dir": None,
            "split": None,
            "seed_rn": None,
            "batch_size": 32,
            "xla": "auto",
            **_COMMON,
            "network": None,
            "weights": None,
            "layers": None,
            "preprocess": "auto",
            "class_names": None,
        },
        ("filtags_file",),
        _show_text,
    ),
    "check": Command(
        "filtag.tagcheck:check",
        "tagcheck.py",
        """Check the tags by ablation: do a class's tagged filters matter for it?

For each class c with test images, the filters of --layers that the rule
(--kind, --value) tags with c are switched off (their channels of the layer
output multiplied by 0) and the network's probability p_c of the class is
measured again on step 1's test images: drop_tagged (the class's own images),
drop_random (as many random untagged filters per layer; --random-draws draws
seeded by --seed-rn) and drop_others (the other classes' images, each for its
own class); the same for log p_c and the top-1 accuracy. Beside them: the
rule's hit rates against chance and against shuffled tags, and per filter its
number of tags and the entropy of its class activations.

Reads step 2's -vars.pkl (step 1's network and file through it); writes, in
--save-dir, <run id>-TC-<network>-vars.pkl (see -vars-info.txt), -results.txt
and the page -check.html; prints the table and the summary, then the path of
the -vars.pkl as the last line.

Example:
    filtag check --filtags-file results/...-TF-VGG16-vars.pkl --layers all""",
        {
            "filtags_file": None,
            "kind": "k",
            "value": 5,
            "check_layers": "last",
            "random_draws": 10,
            "others_per_class": None,
            "images_dir": None,
            "split": None,
            "seed_rn": None,
            "batch_size": 32,
            **_COMMON,
        },
        ("filtags_file",),
        _show_text,
    ),
    "decode": Command(
        "filtag.relabel:decode",
        "labdecode.py",
        """Decode the class labels of a step 2, 3 or 4 file (n02088364 -> beagle).

Rewrites every class label through --mapping (filtag's decoding_wnids.txt,
ImageNet wnid -> name, by default): step 2's tags and class names; step 3's
index and every per-class file (top-5 predictions, rankings, image lists,
classes); step 4's per-class hit rates and classes. Counts, probabilities,
rates and paths stay as they are. A label the mapping lacks stays as it is (the
warnings log counts them). Labels that would share a name are each named
"<name> (<label>)" (decoding_wnids.txt names two wnids "crane" and two
"maillot"), so no ranking holds two classes of one name.

Reads the -vars.pkl given by --vars-file (a step-3 index with its class files
beside it); writes, in --save-dir, a new run of the same step,
<run id>-<TF|E|HR>-<network>-names-vars.pkl (+ step 3's -varsX.pkl and the
exports), whose meta keeps the step and adds label_mapping, decoded_from,
mapping_file and unknown_labels; prints its path as the last line. A failed
run leaves no partial file set. Needs no TensorFlow.

Example:
    filtag decode --vars-file results/...-E-efficientnet_lite0-vars.pkl""",
        {"vars_file": None, "mapping": None, **_COMMON},
        ("vars_file",),
        tensorflow=False,
    ),
    "vis": Command(
        "filtag.views:tag_views",
        "filTagsvis.py",
        """Show the filter tags of step 2 as an interactive web page.

For one rule (--kind k or q, --value) and some layers (--layers; by default the
last 4), the page shows how many class tags the filters carry, and per layer
which filters are tagged with which class (a filter x class map) and which
classes share filters (a class x class map). Hovering shows layer, filter,
class and tags; dragging zooms in. Below, a card per filter of those layers:
its tags, its activation for every class (step 1's numbers behind the tags) and
its exemplars (the train images that activate it most) with its feature map
laid over each. A search box finds the filters that carry a class, or a
filter by layer:filter (conv4:53, or 3:53); clicking a tag-map cell opens the
filter's card.

Reads step 2's -vars.pkl, step 1's -vars.pkl it names, the exemplar images
(from --images-dir, by default the folder step 1 read; without them the cards
show tags and activations, with a note) and the network; writes, in
--save-dir, the page <run id>-VIS-<network>-<kind><value>.html (it opens
offline in any browser, with plotly.js beside it) and its pictures in the
folder <run id>-VIS-<network>-<kind><value>-cards/ beside it, and prints the
page's path as the last line.

Example:
    filtag vis --filtags-file results/...-TF-VGG16-vars.pkl --kind k --value 5""",
        {
            "filtags_file": None,
            "kind": "k",
            "value": 5,
            "view_layers": None,
            "images_dir": None,
            **_COMMON,
        },
        ("filtags_file",),
    ),
    "plots": Command(
        "filtag.views:hitrate_plots",
        "hitrates-plots.py",
        """Plot the hit rates of step 4: an interactive web page and PNG images.

A hit: the network's own top-1 class is among the first m classes that the
filter tags rank for a test image. The plots show the hit rate (%) against m,
one line per k and per q value, for the tags of all layers and of the last
layer alone, beside the chance level: pooled over all test images, and as the
mean of the per-class rates; then each class's hit rate at the smallest m.

Reads step 4's -vars.pkl; writes, in --save-dir, the page
<run id>-HRP-<network>-hitrates.html (offline, with plotly.js beside it) and
one PNG per plot (rendered by kaleido in headless Chrome/Chromium; without one,
only the page is written, with a warning), and prints the page's path as the
last line.

Example:
    filtag plots --hitrates-file results/...-HR-VGG16-vars.pkl""",
        {"hitrates_file": None, **_COMMON},
        ("hitrates_file",),
        tensorflow=False,
    ),
    "demo": Command(
        "filtag.quickstart:demo",
        "rundefault.py",
        """Run filtag end to end on the embedded default, offline.

The first run trains a small CNN on Fashion-MNIST (about 2 minutes on 2 CPU
cores; cached in ~/.cache/filtag or $FILTAG_HOME) and writes 300 real test
images per class. Then it runs the four FilTag steps on them (k_q = 0..25,
m = 1..5) and the views: the filter tag page, the hit-rate plots, three
explained test images (two hits and a miss under the best rule), and a report
page (<id>-HR-<network>-report.html) that opens with the best agreement beside
chance, the hit-rate figure and the explained images, and links the rest. The
pages share one plotly.js written beside them (plotly-<version>.min.js): keep
the folder whole. It prints a summary (the best rule beside chance) and, last,
the path of the report.

Example:
    filtag demo --save-dir results""",
        {**_COMMON, "batch_size": 32},
        (),
        _show_summary,
    ),
}


def run(name: str, argv: Sequence[str] | None = None, **inputs: Any) -> int:
    """Run the command ``name`` with the command line ``argv``.

    Args:
        name: a key of :data:`COMMANDS`.
        argv: the flags (None: ``sys.argv[1:]``).
        **inputs: defaults that replace the command's own (a script's Inputs).

    Returns:
        The exit code.
    """
    command = COMMANDS[name]
    defaults = {**command.defaults, **inputs}
    parser = cli.add_arguments(cli.new_parser(command.doc), defaults)
    args = cli.validate(parser, parser.parse_args(argv), defaults, command.required)
    return cli.run(command.run(), args, command.show, command.tensorflow)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``filtag`` console command: ``filtag <command> [flags]``."""
    parser = cli.new_parser(
        "filtag: explain image-classification CNNs by tagging their filters with "
        "classes (FilTag). Run 'filtag <command> --help' for a command's flags.",
        prog="filtag",
    )
    parser.add_argument("--version", action="version", version=f"filtag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=command.doc.splitlines()[0].rstrip("."),
            description=command.doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cli.add_arguments(sub, command.defaults)
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    del args.command
    args = cli.validate(parser, args, command.defaults, command.required)
    return cli.run(command.run(), args, command.show, command.tensorflow)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Networks: load a Keras CNN, choose its layers, its preprocessing and input.

A network is either a ``keras.applications`` name (``VGG16``, ``ResNet50``, ...;
see :func:`applications`) or the path of a saved ``.keras``/``.h5`` model.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import keras

from filtag.data import COLOR_MODES, ImageSpec, check_interpolation
from filtag.errors import FiltagError
from filtag.networks import MEAN_STD, choose_layers, mean_std

logger = logging.getLogger(__name__)

#: ``keras.applications.imagenet_utils.preprocess_input`` modes, plus "none".
PREPROCESS_MODES = ("caffe", "tf", "torch", "none")

#: Free (None) input dimensions are read at this size.
DEFAULT_SIZE = 224

#: The layer classes that count as 2-D convolutions (subclasses included).
CONV_CLASSES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def applications() -> dict[str, Callable[..., keras.Model]]:
    """Return every network constructor ``keras.applications`` ships, by name."""
    return {
        name: getattr(keras.applications, name)
        for name in dir(keras.applications)
        if name[0].isupper() and callable(getattr(keras.applications, name))
    }


def is_model_file(network: str) -> bool:
    """Tell whether ``network`` names a saved model file rather than an application."""
    return network.endswith((".keras", ".h5", ".hdf5")) or Path(network).is_file()


def network_name(network: str) -> str:
    """Return the name used in file names: the application name or the file's stem."""
    return Path(network).stem if is_model_file(network) else network


def load_network(network: str, weights: str | None = None) -> keras.Model:
    """Load a network.

    Args:
        network: a ``keras.applications`` name or a ``.keras``/``.h5`` file.
        weights: for an application, ``"imagenet"`` (default; downloaded once
            by Keras), ``"none"`` (random) or a weights file; for a model file,
            None (its own weights) or a weights file to load on top.

    Returns:
        The model, not compiled.

    Raises:
        FiltagError: the name or a file is unknown or unreadable.
    """
    if is_model_file(network):
        path = Path(network)
        if not path.is_file():
            raise FiltagError(
                f"--network {network} not found; pass an existing model file."
            )
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:
            raise FiltagError(
                f"--network {network} is not a loadable Keras model "
                f"({type(exc).__name__}: {exc}); save it with model.save('m.keras')."
            ) from None
        if weights not in (None, "none", "imagenet"):
            _load_weights(model, weights)
        return model
    constructors = applications()
    if network not in constructors:
        raise FiltagError(
            f"--network {network!r} is neither a keras.applications name "
            f"({', '.join(sorted(constructors))}) nor a .keras/.h5 model file."
        )
    spec = {None: "imagenet", "none": None}.get(weights, weights)
    if spec not in (None, "imagenet") and not Path(spec).is_file():
        raise FiltagError(
            f"--weights {weights} not found; pass imagenet, none or a file."
        )
    try:
        return constructors[network](weights=spec)
    except Exception as exc:
        raise FiltagError(
            f"--network {network} --weights {weights or 'imagenet'} could not be built "
            f"({type(exc).__name__}: {exc}); without internet, pass --weights FILE "
            "or --weights none."
        ) from None


def _load_weights(model: keras.Model, weights: str) -> None:
    """Load a weights file into ``model``, as a :class:`FiltagError` on failure."""
    try:
        model.load_weights(weights)
    except Exception as exc:
        raise FiltagError(
            f"--weights {weights} does not fit the model ({type(exc).__name__}: {exc})."
        ) from None


def distribution():
    """Return ``tf.distribute.MirroredStrategy`` over the GPUs when there are
    several, else the default strategy (one device). Build the network in its
    ``scope()`` and give it to :class:`filtag.activations.FilterProbe`.
    """
    import tensorflow as tf

    if len(tf.config.list_logical_devices("GPU")) > 1:
        strategy = tf.distribute.MirroredStrategy()
        logger.info(
            "%d GPUs: batches are split between them", strategy.num_replicas_in_sync
        )
        return strategy
    return tf.distribute.get_strategy()


def mixed_precision(model: keras.Model) -> keras.Model:
    """Return a copy of ``model`` that computes in float16 (``mixed_float16``).

    The weights stay float32 and are the same; filtag's statistics are taken
    in float32/float64 whatever the model computes in. Worth it on GPUs with
    float16 units; on CPUs it is slower.
    """

    def mixed(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config(
            {**layer.get_config(), "dtype": "mixed_float16"}
        )

    clone = keras.models.clone_model(model, clone_function=mixed)
    clone.set_weights(model.get_weights())
    return clone


# ----------------------------------------------------------------- preprocessing


def resolve_preprocess(preprocess: str, network: str) -> str:
    """Return the preprocessing to record for ``network``.

    Args:
        preprocess: ``"auto"``, one of :data:`PREPROCESS_MODES`, or an
            application name (its own ``preprocess_input``).
        network: the network argument.

    Returns:
        ``"auto"`` resolved: the application name for an application, ``"none"``
        for a model file; any other value (a recorded ``"mean-std M/S"`` too)
        unchanged.

    Raises:
        FiltagError: an unknown value.
    """
    if preprocess == "auto":
        return "none" if is_model_file(network) else network
    if (
        preprocess in PREPROCESS_MODES
        or preprocess in applications()
        or mean_std(preprocess) is not None
    ):
        return preprocess
    raise FiltagError(
        f"--preprocess {preprocess!r} is unknown; use auto, "
        f"{', '.join(PREPROCESS_MODES)}, {MEAN_STD} (with --mean and --std) or an "
        "application name such as VGG16."
    )


def preprocess_function(preprocess: str) -> Callable:
    """Return the function that maps float32 pixels 0..255 to the model's input.

    Args:
        preprocess: a value returned by :func:`resolve_preprocess`.

    Returns:
        A function of a float32 tensor (batch, height, width, channels).
    """
    if preprocess == "none":
        return lambda x: x
    scaling = mean_std(preprocess)
    if scaling is not None:
        mean, std = (keras.ops.convert_to_tensor(v, "float32") for v in scaling)
        return lambda x: (x / 255.0 - mean) / std
    if preprocess in PREPROCESS_MODES:
        return lambda x: keras.applications.imagenet_utils.preprocess_input(
            x, mode=preprocess
        )
    module = importlib.import_module(applications()[preprocess].__module__)
    return module.preprocess_input


# ------------------------------------------------------------------ input, layers


def image_spec(
    model: keras.Model,
    interpolation: str = "nearest",
    size: Sequence[int] | None = None,
) -> ImageSpec:
    """Return how images are read for ``model``: its input size and colour mode.

    Args:
        model: the network.
        interpolation: one of :data:`filtag.data.INTERPOLATIONS`, or ``auto``
            (nearest).
        size: (height, width) for free input dimensions (None:
            :data:`DEFAULT_SIZE`); a fixed dimension must equal it.

    Free dimensions are read at ``size``; 1 channel is grayscale, 3 RGB, 4 RGBA.

    Raises:
        FiltagError: the model's input is not an image of 1, 3 or 4 channels,
            or ``size`` differs from its fixed size.
    """
    interpolation = check_interpolation(
        "nearest" if interpolation == "auto" else interpolation
    )
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] not in COLOR_MODES:
        raise FiltagError(
            f"the model's input must be one image batch (None, height, width, 1|3|4); "
            f"Received: input_shape={shape}."
        )
    fixed = shape[1:3]
    if size and any(
        dim not in (None, want) for dim, want in zip(fixed, size, strict=True)
    ):
        raise FiltagError(
            f"--image-size {size[0]},{size[1]}: the model's input is fixed at "
            f"{fixed[0]}x{fixed[1]}; leave --image-size out or pass that size."
        )
    wanted = size or (DEFAULT_SIZE, DEFAULT_SIZE)
    height, width = (dim or want for dim, want in zip(fixed, wanted, strict=True))
    return ImageSpec(height, width, COLOR_MODES[shape[-1]], interpolation)


def select_layers(model: keras.Model, rule: str = "conv") -> list[keras.layers.Layer]:
    """Return the layers whose filters filtag tags, in model order.

    Args:
        model: the network.
        rule: ``"conv"``: every 2-D convolution (:data:`CONV_CLASSES` and their
            subclasses); ``"name"``: the original rule, ``'conv' in layer.name``;
            a comma list of layer names; or a regular expression searched in
            layer names. Only layers with a 4-D output (batch, h, w, filters)
            are kept.

    Raises:
        FiltagError: no layer fits the rule.
    """
    chosen = [
        model.layers[i]
        for i in choose_layers(
            [layer.name for layer in model.layers],
            [isinstance(layer, CONV_CLASSES) for layer in model.layers],
            rule,
        )
    ]
    chosen = [layer for layer in chosen if len(layer.output.shape) == 4]
    if not chosen:
        nested = [
            layer.name for layer in model.layers if isinstance(layer, keras.Model)
        ]
        hint = (
            f" The model nests the model(s) {nested}: save the inner model and pass it."
            if nested
            else ""
        )
        raise FiltagError(
            f"--layers {rule!r} selects no layer with a 4-D output in model "
            f"{model.name!r}.{hint}"
        )
    return chosen

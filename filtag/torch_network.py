"""A PyTorch network behind the seam of :mod:`filtag.networks`.

A PyTorch model is named in one of four ways (``--network``):

- ``torchvision:NAME``: ``torchvision.models.get_model(NAME)``, a
  classification model; ``--weights imagenet`` (default) its ``DEFAULT``
  weights (downloaded once by torchvision), ``none`` random, or a state dict;
- ``timm:NAME``: ``timm.create_model(NAME)``; ``--weights`` likewise;
- ``FILE.py:FACTORY``: the function ``FACTORY`` of the Python file, called
  without arguments, returns an ``nn.Module``; ``--weights FILE`` loads a state
  dict on top (None or ``none``: the factory's own weights);
- ``package.module:FACTORY``: the same, from an importable module.

State dicts are read with ``torch.load(..., weights_only=True)``: a pickled
module (which could run code) is refused. Random weights (``none``, a
factory's own initialisation) are made with torch's generator seeded with
:data:`BUILD_SEED`, so every step rebuilds the same network.

The selected modules' outputs are reduced inside forward hooks, right when the
module returns: per image the min and max over the whole output, per channel
the mean; only (batch, filters) matrices leave the model. Reducing there also
reads the value before an in-place activation (``nn.ReLU(inplace=True)``)
overwrites it. A module called more than once in a forward pass counts with
its first call. The model runs in eval mode under ``torch.inference_mode()``,
in channels-last memory format (faster for convolutions on CPUs), on the GPU
when there is one.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from filtag import networks
from filtag.data import COLOR_MODES, INTERPOLATIONS, ImageSpec, check_interpolation
from filtag.errors import FiltagError
from filtag.provenance import file_digest

logger = logging.getLogger(__name__)

#: Images are read at this size when neither ``--image-size`` nor the model says.
DEFAULT_SIZE = 224

#: The seed of torch's generator while a model is built (then restored).
BUILD_SEED = 0

TORCHVISION = "torchvision"
TIMM = "timm"

#: A forward hook: (module, inputs, output) -> None or a replacement output.
Hook = Callable[[nn.Module, Any, Any], Any]


# --------------------------------------------------------------------- naming


@dataclass(frozen=True)
class ModelName:
    """A PyTorch ``--network``, parsed.

    Attributes:
        kind: ``torchvision``, ``timm``, ``file`` (FILE.py:FACTORY) or
            ``module`` (package.module:FACTORY).
        target: the model name, the absolute path of FILE.py, or the module.
        factory: the FACTORY (None for torchvision and timm).
    """

    kind: str
    target: str
    factory: str | None = None

    @classmethod
    def parse(cls, network: str) -> ModelName:
        """Parse a ``network`` that :func:`filtag.networks.is_torch_network` accepts."""
        head, _, tail = network.partition(":")
        if head in (TORCHVISION, TIMM):
            return cls(head, tail)
        if head.endswith(".py"):
            return cls("file", str(Path(head).expanduser().resolve()), tail)
        return cls("module", head, tail)

    @property
    def network(self) -> str:
        """The ``--network`` that rebuilds the model (a file by its absolute path)."""
        if self.factory is None:
            return f"{self.kind}:{self.target}"
        return f"{self.target}:{self.factory}"

    @property
    def name(self) -> str:
        """The name in file names: NAME, or ``<file or module>.<FACTORY>``."""
        if self.factory is None:
            return self.target
        stem = Path(self.target).stem if self.kind == "file" else self.target
        return f"{stem.rsplit('.', 1)[-1]}.{self.factory}"


def _import(package: str, network: str) -> Any:
    """Import torchvision or timm, as a :class:`FiltagError` when it cannot be.

    Raises:
        FiltagError: the package is missing or does not import.
    """
    try:
        return importlib.import_module(package)
    except ImportError:
        raise FiltagError(
            f"--network {network} needs {package}: {networks.TORCH_EXTRA}"
        ) from None
    except Exception as exc:  # e.g. a torchvision built for another torch
        raise FiltagError(
            f"--network {network}: {package} does not import ({type(exc).__name__}: "
            f"{_line(exc)}); install one built for torch {torch.__version__}: "
            f"{networks.TORCH_EXTRA}"
        ) from None


def _line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------- building


def build_model(
    source: ModelName, network: str, weights: str | None
) -> tuple[nn.Module, Path | None, Path | None]:
    """Build the model of ``source`` with its weights, in eval mode.

    Args:
        source: the parsed ``network``.
        network: the ``--network`` as given (for messages).
        weights: ``imagenet`` (None: the default for torchvision and timm),
            ``none``, or a state-dict file.

    Returns:
        (model, model file, weights file): the model file is FILE.py or the
        module's source file (None for torchvision and timm); the weights file
        the state dict loaded (None when none was).

    Raises:
        FiltagError: the model cannot be built or the weights do not fit.
    """
    named = source.factory is None
    if weights == "imagenet" and not named:
        raise FiltagError(
            f"--network {network} has no imagenet weights of filtag's; pass "
            "--weights FILE (a state dict) or leave --weights out (its own)."
        )
    weights_file = None if weights in (None, "imagenet", "none") else Path(weights)
    if weights_file is not None and not weights_file.is_file():
        raise FiltagError(
            f"--weights {weights} not found; pass imagenet, none or a state-dict file."
        )
    pretrained = named and weights in (None, "imagenet")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BUILD_SEED)
        if named:
            model, model_file = _named_model(source, network, pretrained), None
        else:
            model, model_file = _factory_model(source, network)
    if weights_file is not None:
        load_state_dict(model, weights_file)
    return model.eval(), model_file, weights_file


def _named_model(source: ModelName, network: str, pretrained: bool) -> nn.Module:
    """Build a ``torchvision:NAME`` or ``timm:NAME`` model.

    Raises:
        FiltagError: an unknown name, or weights that cannot be downloaded.
    """
    package = _import(source.kind, network)
    if source.kind == TORCHVISION:
        known = package.models.list_models(module=package.models)
        if source.target not in known:
            raise FiltagError(
                f"--network {network} is not a torchvision classification model; "
                f"choose among {', '.join(known[:8])}, ... "
                "(torchvision.models.list_models(module=torchvision.models))."
            )
        build = lambda: package.models.get_model(  # noqa: E731
            source.target, weights="DEFAULT" if pretrained else None
        )
    else:
        if not package.is_model(source.target):
            raise FiltagError(
                f"--network {network} is not a timm model; see timm.list_models()."
            )
        build = lambda: package.create_model(source.target, pretrained=pretrained)  # noqa: E731
    try:
        return build()
    except Exception as exc:
        raise FiltagError(
            f"--network {network} --weights imagenet could not be built "
            f"({type(exc).__name__}: {_line(exc)}); without internet, pass --weights "
            "FILE (a state dict) or --weights none."
        ) from None


def _factory_model(source: ModelName, network: str) -> tuple[nn.Module, Path | None]:
    """Call a ``FILE.py:FACTORY`` or ``package.module:FACTORY``.

    Returns:
        (model, the file that defines the factory's module).

    Raises:
        FiltagError: the file or module cannot be imported, has no FACTORY, or
            FACTORY fails or returns no ``nn.Module``.
    """
    module = (
        _file_module(Path(source.target), network)
        if source.kind == "file"
        else _imported_module(source.target, network)
    )
    factory = getattr(module, source.factory, None)
    if not callable(factory):
        raise FiltagError(
            f"--network {network}: {source.target} has no function {source.factory}; "
            "name a function that returns an nn.Module."
        )
    try:
        model = factory()
    except Exception as exc:
        raise FiltagError(
            f"--network {network}: {source.factory}() failed "
            f"({type(exc).__name__}: {_line(exc)})."
        ) from None
    if not isinstance(model, nn.Module):
        raise FiltagError(
            f"--network {network}: {source.factory}() returned a "
            f"{type(model).__name__}, not a torch.nn.Module."
        )
    path = getattr(module, "__file__", None)
    return model, Path(path) if path else None


def _file_module(path: Path, network: str) -> Any:
    """Import a Python file (its folder first on ``sys.path`` meanwhile).

    Raises:
        FiltagError: the file is missing or fails to import.
    """
    if not path.is_file():
        raise FiltagError(f"--network {network}: {path} not found.")
    spec = importlib.util.spec_from_file_location(f"filtag_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise FiltagError(
            f"--network {network}: {path} fails to import "
            f"({type(exc).__name__}: {_line(exc)})."
        ) from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def _imported_module(name: str, network: str) -> Any:
    """Import ``package.module``.

    Raises:
        FiltagError: it is not importable.
    """
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise FiltagError(
            f"--network {network}: module {name} cannot be imported "
            f"({type(exc).__name__}: {_line(exc)}); put it on PYTHONPATH."
        ) from None


def load_state_dict(model: nn.Module, path: Path) -> None:
    """Load a state dict file into ``model``, strictly.

    Raises:
        FiltagError: the file is not a state dict that ``torch.load`` reads
            with ``weights_only=True`` (e.g. a pickled module), or it does not
            fit the model.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FiltagError(
            f"--weights {path} is not a state dict that torch.load(weights_only="
            f"True) reads ({type(exc).__name__}: {_line(exc, 160)}); save "
            "model.state_dict(), not the model."
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in state.items()
    ):
        raise FiltagError(
            f"--weights {path} holds a {type(state).__name__} that is not a state "
            "dict (parameter names to tensors); save model.state_dict()."
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise FiltagError(
            f"--weights {path} does not fit the model ({_line(exc)})."
        ) from None


# -------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class OwnInput:
    """A torchvision or timm model's own evaluation transform.

    Attributes:
        kind: ``torchvision`` or ``timm``.
        size: (height, width) of the centre crop, the model's input.
        mean, std: per channel, of pixels / 255.
        interpolation: the resize filter.
        scale: how much larger than the crop the resize is: torchvision's
            resize_size / crop_size, timm's 1 / crop_pct.
        squash: timm's ``squash`` crop mode (resize both sides, not the
            shorter one).
    """

    kind: str
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    scale: tuple[int, int] | float
    squash: bool = False

    def resize(self, size: tuple[int, int]) -> int | tuple[int, int]:
        """Return :attr:`filtag.data.ImageSpec.resize` for a crop of ``size``.

        torchvision: the shorter side to ``max(size) * resize_size //
        crop_size`` (256 for 224); timm: ``floor(max(size) / crop_pct)``
        (``squash``: each side ``floor(side / crop_pct)``), as timm computes it.
        """
        if isinstance(self.scale, tuple):
            return max(size) * self.scale[0] // self.scale[1]
        if self.squash:
            return (math.floor(size[0] / self.scale), math.floor(size[1] / self.scale))
        return math.floor(max(size) / self.scale)


def own_input(source: ModelName, model: nn.Module) -> OwnInput | None:
    """Return the evaluation transform torchvision or timm states for the model.

    Returns:
        None for a FACTORY model, or a torchvision model without one.
    """
    if source.kind == TORCHVISION:
        import torchvision

        try:
            weights = torchvision.models.get_model_weights(source.target).DEFAULT
            t = weights.transforms()
            crop, resize = t.crop_size[0], t.resize_size[0]
        except (AttributeError, ValueError, IndexError, TypeError):
            return None
        return OwnInput(
            TORCHVISION, (crop, crop), tuple(t.mean), tuple(t.std),
            t.interpolation.value, (resize, crop),
        )  # fmt: skip
    if source.kind == TIMM:
        import timm.data

        config = timm.data.resolve_data_config({}, model=model)
        mode = config.get("crop_mode") or "center"
        if mode not in ("center", "squash"):
            logger.warning(
                "timm's crop mode %r of %s is read as 'center'", mode, source.target
            )
        interpolation = config["interpolation"]
        return OwnInput(
            TIMM,
            tuple(config["input_size"][1:]),
            tuple(config["mean"]),
            tuple(config["std"]),
            interpolation if interpolation in INTERPOLATIONS else "bilinear",
            config.get("crop_pct") or 0.875,
            mode == "squash",
        )
    return None


@dataclass(frozen=True)
class Preprocessing:
    """How images become the model's input.

    Attributes:
        recorded: what ``meta`` records: ``torchvision``, ``timm``, ``none``
            or ``mean-std M/S``; step 3 passes it back to rebuild the same.
        mean, std: of pixels / 255, per channel or one value; None: raw
            pixels 0..255.
        spec: how images are read (size, colour mode, resize and crop).
    """

    recorded: str
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    spec: ImageSpec


def preprocessing(
    own: OwnInput | None,
    preprocess: str,
    interpolation: str,
    image_size: tuple[int, int] | None,
    channels: int,
) -> Preprocessing:
    """Resolve ``--preprocess``, ``--interpolation`` and ``--image-size``.

    Args:
        own: the model's own transform (None: it has none).
        preprocess: ``auto`` (the model's own, else none), ``torchvision`` /
            ``timm`` (the model's own), ``none``, or ``mean-std M/S``.
        interpolation: ``auto`` (the model's own with its preprocessing,
            else nearest) or a filter name.
        image_size: (height, width); None: the model's own size, else 224.
        channels: the channels of the first convolution's input.

    Raises:
        FiltagError: a preprocessing this model has not, or that does not fit
            its channels; an unknown interpolation.
    """
    if preprocess == "auto":
        preprocess = own.kind if own else "none"
    scaling = networks.mean_std(preprocess)
    if own is not None and preprocess == own.kind:
        mean, std = own.mean, own.std
    elif scaling is not None:
        mean, std = scaling
    elif preprocess == "none":
        mean = std = None
    else:
        kinds = f"auto, {own.kind}" if own else "auto"
        raise FiltagError(
            f"--preprocess {preprocess!r} is not one for this PyTorch model; use "
            f"{kinds}, mean-std (with --mean and --std) or none."
        )
    for what, values in (("mean", mean), ("std", std)):
        if values is not None:
            networks.check_channels(values, channels, what)
    model_own = own is not None and preprocess == own.kind
    size = image_size or (own.size if own else (DEFAULT_SIZE, DEFAULT_SIZE))
    if interpolation == "auto":
        interpolation = own.interpolation if model_own else "nearest"
    spec = ImageSpec(
        size[0],
        size[1],
        COLOR_MODES[channels],
        check_interpolation(interpolation),
        own.resize(size) if model_own else None,
    )
    return Preprocessing(preprocess, mean, std, spec)


# --------------------------------------------------------------------- layers


def input_channels(model: nn.Module, network: str) -> int:
    """Return the ``in_channels`` of the first ``nn.Conv2d`` (registration order).

    Raises:
        FiltagError: no ``nn.Conv2d``, or one that reads neither 1, 3 nor 4
            channels.
    """
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or first.in_channels not in COLOR_MODES:
        found = "no nn.Conv2d" if first is None else f"{first.in_channels} channels"
        raise FiltagError(
            f"--network {network}: filtag reads images of 1, 3 or 4 channels for "
            f"the first nn.Conv2d; the model has {found}."
        )
    return first.in_channels


def scaled_filter_means(maps: torch.Tensor) -> torch.Tensor:
    """Return each filter's mean of the per-image min-max scaled layer output.

    The same as :func:`filtag.activations.scaled_filter_means`, in torch:
    ``(mean(A[b]) - min A) / (max A - min A)``, 0 where max == min.

    Args:
        maps: a layer output, shape (batch, filters, h, w).

    Returns:
        float32, shape (batch, filters).
    """
    maps = maps.float()
    low = maps.amin(dim=(1, 2, 3))[:, None]
    high = maps.amax(dim=(1, 2, 3))[:, None]
    means = maps.mean(dim=(2, 3))
    span = high - low
    return torch.where(span == 0, 0.0, (means - low) / span)


def _padded(images: Any, size: int) -> np.ndarray:
    """Return ``images`` (uint8) padded with black images to ``size`` images."""
    images = np.asarray(images, np.uint8)
    if len(images) >= size:
        return images
    blank = np.zeros((size - len(images), *images.shape[1:]), np.uint8)
    return np.concatenate([images, blank])


# -------------------------------------------------------------------- network


@dataclass
class TorchNetwork:
    """A PyTorch model, its selected modules and how its images are read.

    Build it with :meth:`load`. See :class:`filtag.networks.Network`.

    Attributes:
        network: the ``--network`` that rebuilds it (``meta['network_arg']``).
        model: the ``nn.Module``, in eval mode, on :attr:`device`.
        weights_file: the state dict loaded, or None.
        layer_names: the selected modules' paths (``layer1.0.conv1``).
        filters_per_layer: their output channels.
        prep: the preprocessing and image reading.
        device: where the model runs (the GPU when there is one).
        mixed_precision: run under ``torch.autocast`` (float16 on GPUs,
            bfloat16 on CPUs).
    """

    name: str
    network: str
    model_file: Path | None
    weights_file: Path | None
    model: nn.Module
    layer_names: list[str]
    filters_per_layer: list[int]
    n_outputs: int
    prep: Preprocessing
    device: torch.device
    mixed_precision: bool = False
    framework: str = "torch"

    @classmethod
    def load(cls, request: networks.NetworkRequest) -> TorchNetwork:
        """Build the model, resolve its input and select its layers.

        One forward pass of a black image finds the selected modules' output
        shapes (modules without a 4-D output, or not called, are dropped) and
        the number of outputs.

        Args:
            request: what to load.

        Raises:
            FiltagError: the model, its weights, its input or its layers
                cannot be used.
        """
        network, layers = request.network, request.layers
        source = ModelName.parse(network)
        model, model_file, weights_file = build_model(source, network, request.weights)
        channels = input_channels(model, network)
        prep = preprocessing(
            own_input(source, model), request.preprocess, request.interpolation,
            request.image_size, channels,
        )  # fmt: skip
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = model.to(device, memory_format=torch.channels_last)
        names = [name for name, _ in model.named_modules() if name]
        modules = dict(model.named_modules())
        chosen = networks.choose_layers(
            names, [isinstance(modules[n], nn.Conv2d) for n in names], layers
        )
        net = cls(
            source.name, source.network, model_file, weights_file, model,
            [names[i] for i in chosen], [], 0, prep, device, request.mixed_precision,
        )  # fmt: skip
        net._select(network, layers, names)
        logger.debug(
            "%s: %d layers selected, %d outputs, input %s on %s",
            network, len(net.layer_names), net.n_outputs, prep.spec, device,
        )  # fmt: skip
        return net

    def _select(self, network: str, rule: str, names: list[str]) -> None:
        """Keep the candidate layers with a 4-D output; count the outputs.

        Args:
            network, rule: ``--network`` and ``--layers``, for messages.
            names: every module path of the model, for messages.

        Raises:
            FiltagError: the model fails on an image of its input size, its
                output is not (batch, classes), or no candidate is kept.
        """
        spec = self.prep.spec
        shapes: dict[str, tuple[int, ...]] = {}

        def hook_for(name: str) -> Hook:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                if name not in shapes and isinstance(output, torch.Tensor):
                    shapes[name] = tuple(output.shape)

            return hook

        blank = np.zeros((1, spec.height, spec.width, spec.channels), np.uint8)
        try:
            outputs = self.forward(
                blank, {name: hook_for(name) for name in self.layer_names}
            )
        except Exception as exc:
            raise FiltagError(
                f"--network {network} fails on a {spec.height}x{spec.width} "
                f"{spec.color_mode} image ({type(exc).__name__}: {_line(exc)}); "
                "check --image-size."
            ) from None
        if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2:
            found = (
                tuple(outputs.shape)
                if isinstance(outputs, torch.Tensor)
                else (type(outputs).__name__)
            )
            raise FiltagError(
                f"--network {network} returns {found}; filtag needs one tensor of "
                "shape (batch, classes)."
            )
        self.layer_names = [n for n in self.layer_names if len(shapes.get(n, ())) == 4]
        if not self.layer_names:
            raise FiltagError(
                f"--layers {rule!r} selects no module with a 4-D output in "
                f"--network {network}; layers are module paths such as "
                f"{', '.join(names[:3])}."
            )
        self.filters_per_layer = [shapes[n][1] for n in self.layer_names]
        self.n_outputs = int(outputs.shape[1])

    @property
    def spec(self) -> ImageSpec:
        return self.prep.spec

    @property
    def preprocess(self) -> str:
        return self.prep.recorded

    def inputs(self, images: Any) -> torch.Tensor:
        """Return the model's input for uint8 images.

        Args:
            images: uint8, shape (batch, height, width, channels) (numpy or
                anything ``np.asarray`` reads, e.g. a TensorFlow tensor).

        Returns:
            float32, shape (batch, channels, height, width), channels-last, on
            the device: pixels / 255, minus mean, divided by std (as
            torchvision's ``ToTensor`` and ``Normalize``), or raw 0..255.
        """
        array = np.require(np.asarray(images, np.uint8), requirements="W")
        x = torch.from_numpy(array).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        if self.prep.mean is not None:  # in place, in torchvision's order
            mean, std = (
                torch.tensor(v, dtype=torch.float32, device=self.device)[:, None, None]
                for v in (self.prep.mean, self.prep.std)
            )
            x.div_(255).sub_(mean).div_(std)
        return x.contiguous(memory_format=torch.channels_last)

    @contextlib.contextmanager
    def _hooked(self, hooks: Mapping[str, Hook]) -> Iterator[None]:
        """Register forward hooks on modules by path for the duration of the block."""
        handles = [
            self.model.get_submodule(name).register_forward_hook(hook)
            for name, hook in hooks.items()
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def forward(self, images: Any, hooks: Mapping[str, Hook]) -> Any:
        """Run the model on uint8 images with ``hooks`` on modules (by path).

        Returns:
            The model's output (a tensor on the device, for a classifier).
        """
        x = self.inputs(images)
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        with (
            self._hooked(hooks),
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype, enabled=self.mixed_precision),
        ):
            return self.model(x)

    def probe(self, batch_size: int, xla: str = "auto") -> TorchProbe:
        """Return the network's probe; ``xla`` is for Keras and ignored here."""
        return TorchProbe(self, batch_size)

    def ablator(self, layer_names: Sequence[str]) -> TorchAblator:
        """Return a forward pass whose ``layer_names`` filters can be switched off."""
        return TorchAblator(self, layer_names)

    def feature_maps(self, images: Any, layer: str) -> np.ndarray:
        """Return one selected layer's output (its first call) for a batch.

        Returns:
            float32, shape (batch, h, w, filters), as Keras lays it out.
        """
        maps: dict[str, torch.Tensor] = {}

        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            if layer not in maps:  # a copy: an in-place activation follows
                maps[layer] = output.float().clone()

        self.forward(images, {layer: hook})
        return np.ascontiguousarray(maps[layer].permute(0, 2, 3, 1).cpu().numpy())

    def describe(self) -> dict[str, Any]:
        """Return what ``meta`` records besides the common keys.

        Returns:
            framework, network_arg (the ``--network`` that rebuilds it),
            weights_path and weights_sha256 (a state dict, or None), mean and
            std (of pixels / 255, or None), resize (see
            :attr:`filtag.data.ImageSpec.resize`) and torch_version.
        """
        weights = self.weights_file
        resize = self.spec.resize
        return {
            "framework": self.framework,
            "network_arg": self.network,
            "weights_path": str(weights.resolve()) if weights else None,
            "weights_sha256": file_digest(weights) if weights else None,
            "mean": list(self.prep.mean) if self.prep.mean else None,
            "std": list(self.prep.std) if self.prep.std else None,
            "resize": list(resize) if isinstance(resize, tuple) else resize,
            "torch_version": str(torch.__version__),
        }


def _outputs(outputs: torch.Tensor, n: int) -> np.ndarray:
    """The first ``n`` rows of the model's outputs, float32 numpy."""
    return outputs[:n].float().cpu().numpy()


class TorchProbe:
    """One forward pass that returns filter activations and outputs.

    Args:
        network: the network.
        batch_size: smaller batches are padded with black images to this size,
            so an image's values do not depend on the size of its batch.

    See :class:`filtag.networks.Probe`.
    """

    #: PyTorch has no XLA here: ``--xla`` is recorded as not used.
    xla_used = "none"

    def __init__(self, network: TorchNetwork, batch_size: int) -> None:
        self.filters_per_layer = list(network.filters_per_layer)
        self._network = network
        self._batch_size = batch_size

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images, np.uint8)
        n = len(images)
        reduced: dict[str, torch.Tensor] = {}

        def hook_for(name: str) -> Hook:
            def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
                if name not in reduced:  # the first call of the module
                    reduced[name] = scaled_filter_means(output)

            return hook

        names = self._network.layer_names
        outputs = self._network.forward(
            _padded(images, self._batch_size), {name: hook_for(name) for name in names}
        )
        activations = torch.cat([reduced[name] for name in names], dim=1)
        return activations[:n].cpu().numpy(), _outputs(outputs, n)

    def split_layers(self, activations: np.ndarray) -> list[np.ndarray]:
        """Split (..., F) activations into one array per layer, (..., filters)."""
        return np.split(activations, np.cumsum(self.filters_per_layer)[:-1], axis=-1)


class TorchAblator:
    """The network with chosen filters switched off by per-image masks.

    Forward hooks multiply each chosen module's output (every call of it) by
    the image's mask columns: channel j by the column of filter j. See
    :class:`filtag.networks.Ablator` and :mod:`filtag.keras_ablation` for
    what zeroing a convolution's output means.

    Args:
        network: the network.
        layer_names: chosen layers among its selected ones; their filters are
            the mask columns, layer after layer.

    Raises:
        ValueError: a name is not a selected layer of ``network``.
    """

    def __init__(self, network: TorchNetwork, layer_names: Sequence[str]) -> None:
        unknown = [n for n in layer_names if n not in network.layer_names]
        if unknown:
            raise ValueError(
                f"layers {unknown}: expected selected layers of the network "
                f"({network.layer_names[:3]}...)"
            )
        filters = dict(zip(network.layer_names, network.filters_per_layer, strict=True))
        self.filters_per_layer = [filters[n] for n in layer_names]
        stops = np.cumsum(self.filters_per_layer).tolist()
        self._columns = {
            name: (stop - filters[name], stop)
            for name, stop in zip(layer_names, stops, strict=True)
        }
        self._network = network

    @property
    def n_filters(self) -> int:
        """The mask width F: the filters of the chosen layers together."""
        return sum(self.filters_per_layer)

    def __call__(self, images: Any, masks: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.uint8)
        masks = np.asarray(masks, np.float32)
        if masks.shape != (len(images), self.n_filters):
            raise ValueError(
                f"masks: expected shape ({len(images)}, {self.n_filters}); "
                f"received {masks.shape}"
            )
        mask = torch.from_numpy(masks).to(self._network.device)

        def hook_for(start: int, stop: int) -> Hook:
            def hook(module: nn.Module, args: Any, output: torch.Tensor) -> Any:
                return output * mask[:, start:stop, None, None].to(output.dtype)

            return hook

        hooks = {name: hook_for(*cols) for name, cols in self._columns.items()}
        return _outputs(self._network.forward(images, hooks), len(images))

"""Several replicas (MirroredStrategy, as with several GPUs) give the same statistics.

Two logical CPU devices stand in for two GPUs; TensorFlow must be configured
before it starts, so the check runs in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHECK = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from filtag import activations, models
from tests.reference import read_image
paths = sorted(Path(r"{images}").glob("*/*.png"))[:11]
images = np.stack([read_image(p, (28, 28), "grayscale") for p in paths])
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
with mirrored.scope():
    model = models.load_network(r"{model}")
layers = models.select_layers(model)
split = activations.FilterProbe(model, layers, lambda x: x, batch_size=8,
                                strategy=mirrored)
plain = models.load_network(r"{model}")
single = activations.FilterProbe(plain, models.select_layers(plain), lambda x: x,
                                 batch_size=8)
for batch in (images[:8], images[8:]):
    a, outputs = split(batch)
    b, outputs_single = single(batch)
    assert a.shape == b.shape == (len(batch), 176), a.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs, outputs_single, rtol=1e-5, atol=1e-6)
print("same on 2 replicas")
"""


def test_two_replicas_give_the_same_activations(default_files, small_images) -> None:
    code = "from pathlib import Path\n" + CHECK.format(
        images=small_images, model=default_files.model
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same on 2 replicas" in result.stdout

"""filtag: explain image-classification CNNs by tagging their filters with classes.

The method (FilTag, AIMLAI@CIKM'22) in four steps, one module each:

- :mod:`filtag.activations`: step 1, mean scaled filter activations per class;
- :mod:`filtag.tagging`: step 2, tag each filter with the classes that activate it most;
- :mod:`filtag.evaluation`: step 3, rank classes by the tags of active filters;
- :mod:`filtag.hitrates`: step 4, how often that ranking agrees with the network.

:mod:`filtag.data`, :mod:`filtag.models`, :mod:`filtag.labels` and
:mod:`filtag.artifacts` read images, networks, labels and step files;
:mod:`filtag.pipeline` runs the steps end to end for the scripts.
"""

import os

# TensorFlow's C++ start-up chatter hides filtag's own messages; users can still
# set the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# filtag's host-side numpy work (step 3's tag counts) runs beside TensorFlow's own
# threads; a multi-threaded BLAS would fight them for the cores. Users can still
# set the variable themselves (before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

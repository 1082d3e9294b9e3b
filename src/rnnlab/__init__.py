"""rnnlab: recurrent networks from first principles, trained in a reproducible DVC pipeline.

Importing the package is cheap on purpose: numpy and TensorFlow are imported only by the
modules that need them, so a stage can validate its params before any heavy import.
"""

__version__ = "0.1.0"

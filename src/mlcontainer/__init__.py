"""mlcontainer: a tabular dataset to a trained, evaluated, safely saved and served classifier."""

__version__ = "0.1.0"

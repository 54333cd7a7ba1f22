"""The lab's deliverable: ``python train.py [options]`` is ``mlcontainer train [options]``."""

import sys
from pathlib import Path

try:
    from mlcontainer.cli import train_main
except ImportError:  # run from a source checkout without installing: use src/
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from mlcontainer.cli import train_main

if __name__ == "__main__":
    train_main()

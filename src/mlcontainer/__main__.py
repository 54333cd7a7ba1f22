"""Run the command line with ``python -m mlcontainer``."""

from mlcontainer.cli import main

if __name__ == "__main__":
    main()

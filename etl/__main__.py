"""``python -m etl`` is the ``etl`` command."""

from etl.cli import main

if __name__ == "__main__":
    main()

"""localaws: the project's local AWS, a moto server extended at start-up.

Run it with ``python -m localaws --port 0`` (``tests/`` on PYTHONPATH) or through
``scripts/local-aws start``. See README.md beside this file.

This package must stay cheap to import: the pytest suite imports it without
starting a server, so nothing here touches moto.
"""

"""The core every part builds on: errors, settings, the input schema and the model-folder format.

Imports nothing from ``training``, ``inference``, ``serving`` or the command line, and never
Flask or click (``tests/test_architecture.py`` checks the whole import graph).
"""

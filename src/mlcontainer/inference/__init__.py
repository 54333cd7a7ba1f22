"""Inference: rows in, predictions out, with no training library on the ONNX path.

Rules for a cell (``coercion``), decoding records, positional rows and text tables into typed
columns (``decoding``), readers for CSV (``csvreader``, ``arrowreader``) and Parquet
(``parquetreader``), the two runtimes (``onnx_runtime``, ``sklearn_runtime``), the
``predictor`` that joins them, output rendering (``output``, ``csvformat``) and ``batch``
prediction of whole files. Imports the core only; never ``training``.
"""

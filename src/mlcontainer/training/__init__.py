"""Training: a table in, a compared, tuned, evaluated and saved model out.

Data intake (``sources``, ``intake``, ``dataset``, ``audit``), the candidate registry
(``models``), the time budget (``budget``) and where fits run (``cluster``), cross-validation
and selection (``selection``), metrics, pictures and the report (``metrics``, ``plots``,
``report``), ONNX export (``onnx_export``), the manifest (``manifest``), the whole job
(``workflow``, driven by ``options``). Imports the
core only; never ``inference`` or ``serving``.
"""

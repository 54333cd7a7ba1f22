"""What is written: the skops file, the ONNX graph, the manifest and the serving copy."""

"""Adapters to the outside world: store, HTTP, ONNX Runtime, Pillow."""

"""Face detection adapters: weights, inference backends, modes, attributes.

Importing the package imports nothing: each module is imported by name, so a process
that only validates options (`attributes`) never loads an inference library.

Map: `factory.build_detector` is the entry point. It returns a `face_detector.FaceDetector`
(fuses its models' candidates, adds the attributes) whose members are
`model_runner.ModelRunner`s (one model's scale passes) on an `inference.InferenceSession`
opened by `backends` (`onnx_backend` or `openvino_backend`) and cached by `sessions`.
To add a model: its weights in `weights.REGISTRY` (and its family in
`core/detection/families.py`); a speed/accuracy preset: `modes.py`; a per-face
attribute: `attributes.ATTRIBUTES`. Measurements behind the choices:
docs/detection-notes.md.
"""

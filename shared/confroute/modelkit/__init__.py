"""The model kit: builds edge model bundles (ONNX graph with a fused uncertainty head) from GGUF files,
Hugging Face folders or hub ids. Workstation tooling: needs the ``export`` extra (torch, transformers, onnx).
"""

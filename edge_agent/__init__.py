"""The edge agent: answers on the device with a small ONNX model and its fused uncertainty head.

Never imports ``cloud_service``, redis, tritonclient, torch or transformers: a device image stays lean.
"""

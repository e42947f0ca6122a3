"""Inference backends of the cloud service: the cloud model behind Triton."""

from cloud_service.backends.prompt import PROMPT_FORMATS, PromptFormat, render_prompt
from cloud_service.backends.triton import TritonBackend, TritonBackendConfig

__all__ = ["PROMPT_FORMATS", "PromptFormat", "TritonBackend", "TritonBackendConfig", "render_prompt"]

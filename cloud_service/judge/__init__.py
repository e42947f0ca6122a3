"""LLM-as-a-judge labels for shadow and escalated outcomes, within their own call budget."""

from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.judge import Judge
from cloud_service.judge.verdict import Verdict
from cloud_service.judge.worker import JudgeWorker

__all__ = ["Judge", "JudgeConfig", "JudgeWorker", "Verdict"]

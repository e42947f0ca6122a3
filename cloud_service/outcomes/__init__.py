"""The outcome log: one Redis Stream entry per query, written once per query id."""

from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.outcomes.stats import OutcomeLogStats

__all__ = ["OutcomeLogConfig", "OutcomeLogStats", "RedisOutcomeLog"]

"""The recalibration worker: folds new outcomes into the statistics and publishes new policies from them."""

from cloud_service.calibration.config import RecalibrationConfig, Target
from cloud_service.calibration.worker import RecalibrationWorker

__all__ = ["RecalibrationConfig", "RecalibrationWorker", "Target"]

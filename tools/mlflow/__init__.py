"""MLflow adapters: the registry port (versions, aliases, tags, lineage, timeline, promote and
rollback) and the train port (retrain through a subprocess or a Kubernetes Job, evaluated with
``mlflow.models.evaluate`` and registered as ``challenger``).

MLflow itself is imported only when an adapter first talks to the store, so importing this
package is cheap. The same adapters work on a tracking server and on a local store::

    connection = MlflowConnection(tracking_uri="http://mlflow:5000")
    connection = MlflowConnection.local("out/mlflow")  # sqlite + artifacts/, no server

    registry = MlflowRegistry(connection)
    registry.versions("fraud")
    registry.promote("fraud", "7", expected_champion="6")

    trainer = MlflowTrainer(connection, {"fraud": "fraud_training.train:fit"})
    trainer.retrain("fraud", window=w, exclude=[], idempotency_key="k", min_accuracy=0.8)
"""

from ._config import MlflowConnection
from ._history import AliasMove
from ._kubejob import KubernetesJobRunner, render_job
from ._registry import AliasChange, MlflowRegistry, VersionLineage
from ._runners import InProcessRunner, LocalRunner, TrainingRunner
from ._trainer import MlflowTrainer
from ._training import TrainedModel, TrainingRequest

__all__ = [
    "AliasChange",
    "AliasMove",
    "InProcessRunner",
    "KubernetesJobRunner",
    "LocalRunner",
    "MlflowConnection",
    "MlflowRegistry",
    "MlflowTrainer",
    "TrainedModel",
    "TrainingRequest",
    "TrainingRunner",
    "VersionLineage",
    "render_job",
]

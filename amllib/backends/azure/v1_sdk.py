"""The azureml-core classes the backend uses, in one namespace so tests can swap in autospec'd fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Sdk:
    Workspace: Any
    Experiment: Any
    Model: Any
    ComputeTarget: Any
    AmlCompute: Any
    ScriptRunConfig: Any
    RunConfiguration: Any
    DataReferenceConfiguration: Any
    CondaDependencies: Any
    ComputeTargetException: Any
    DockerConfiguration: Any


def real_sdk() -> Sdk:
    """The installed azureml-core; imported only when the azureml backend is chosen."""
    from azureml.core import Experiment, Model, RunConfiguration, ScriptRunConfig, Workspace
    from azureml.core.compute import AmlCompute, ComputeTarget
    from azureml.core.compute_target import ComputeTargetException
    from azureml.core.conda_dependencies import CondaDependencies
    from azureml.core.runconfig import DataReferenceConfiguration, DockerConfiguration

    return Sdk(
        Workspace=Workspace,
        Experiment=Experiment,
        Model=Model,
        ComputeTarget=ComputeTarget,
        AmlCompute=AmlCompute,
        ScriptRunConfig=ScriptRunConfig,
        RunConfiguration=RunConfiguration,
        DataReferenceConfiguration=DataReferenceConfiguration,
        CondaDependencies=CondaDependencies,
        ComputeTargetException=ComputeTargetException,
        DockerConfiguration=DockerConfiguration,
    )

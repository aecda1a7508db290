"""The cluster deployment (deploy/k8s/): with the Kubernetes executor every job resolves, and the
step pods that dagster-k8s would create ask for a GPU on exactly the fold-checkpoint steps."""

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.executors import (
    GPU_RESOURCE,
    K8S_CONFIG_TAG,
    K8S_EXECUTOR_CONFIG,
    executor_from_environment,
)
from cmrbias_dagster.resources import build_resources

DEPLOY = Path(__file__).parents[1] / "deploy" / "k8s"
FOLDS = 2
FOLD_STEPS = {f"fold_{fold}_checkpoint" for fold in range(FOLDS)}


@pytest.fixture(scope="module")
def k8s_defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    work = tmp_path_factory.mktemp("k8s")
    resources = build_resources(profile="tiny", work_dir=work, cohort_root=work / "cohort")
    executor = executor_from_environment({"CMRBIAS_EXECUTOR": "k8s"})
    return build_definitions(resources, FOLDS, executor=executor)


def step_pod_resources(tags: dict[str, str]) -> dict[str, dict[str, str]]:
    """The container resources of the Kubernetes Job that dagster-k8s's step handler builds for a
    step with `tags`: the executor's step config merged with the step's `dagster-k8s/config` tag."""
    executor_config = UserDefinedDagsterK8sConfig.from_dict(K8S_EXECUTOR_CONFIG["step_k8s_config"])
    context = K8sContainerContext(run_k8s_config=executor_config).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags))
    )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="cmrbias-dagster:test"),
        args=[],
        job_name="dagster-step-test",
        user_defined_k8s_config=context.run_k8s_config,
    )
    resources = job.spec.template.spec.containers[0].resources
    return {"limits": resources.limits or {}, "requests": resources.requests or {}}


def test_every_job_resolves_with_the_k8s_executor(k8s_defs: dg.Definitions) -> None:
    jobs = k8s_defs.resolve_all_job_defs()
    assert {"partition_job", "analysis_job", "cohort_job"} <= {job.name for job in jobs}
    assert {job.executor_def.name for job in jobs} == {"cmrbias_k8s_job_executor"}


def test_gpu_pods_on_exactly_the_fold_steps(k8s_defs: dg.Definitions) -> None:
    for job in k8s_defs.resolve_all_job_defs():
        steps = {node.name: node.definition.tags for node in job.graph.nodes}
        pods = {name: step_pod_resources(tags) for name, tags in steps.items()}
        with_gpu = {name for name, pod in pods.items() if GPU_RESOURCE in pod["limits"]}
        assert with_gpu == FOLD_STEPS & set(steps), job.name
        assert all(
            pod["limits"][GPU_RESOURCE] == "1" for name, pod in pods.items() if name in with_gpu
        )
        # Every pod, GPU or not, keeps the executor's CPU and memory requests.
        assert all(pod["requests"]["cpu"] == "2" for pod in pods.values()), job.name
        tagged = {name for name, tags in steps.items() if K8S_CONFIG_TAG in tags}
        assert tagged == with_gpu, job.name
    partition_steps = {node.name for node in k8s_defs.resolve_job_def("partition_job").graph.nodes}
    assert partition_steps >= FOLD_STEPS


def test_executor_config_is_valid_for_dagster_k8s() -> None:
    assert process_config(k8s_job_executor.config_schema.config_type, K8S_EXECUTOR_CONFIG).success


@pytest.mark.parametrize("name", [None, "", "local", " LOCAL "])
def test_local_executor_by_default(name: str | None) -> None:
    environ = {} if name is None else {"CMRBIAS_EXECUTOR": name}
    assert executor_from_environment(environ) is None


def test_unknown_executor_is_refused() -> None:
    with pytest.raises(ValueError, match="CMRBIAS_EXECUTOR='celery'"):
        executor_from_environment({"CMRBIAS_EXECUTOR": "celery"})


def test_shipped_instance_is_valid_for_dagster_k8s(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "USERNAME", "PASSWORD", "DB"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "5432" if name == "PORT" else "x")
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    fields = dg.Shape(K8sRunLauncher.config_type())
    assert process_config(fields, launcher["config"]).success
    env = dict(item.split("=", 1) for item in launcher["config"]["env_vars"])
    assert env["CMRBIAS_EXECUTOR"] == "k8s"


def test_helm_values_name_the_code_location_and_shared_volume() -> None:
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "cmrbias_dagster.definitions"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["CMRBIAS_EXECUTOR"] == "k8s"
    mount = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}["study-data"]
    assert env["CMRBIAS_WORK_DIR"].startswith(mount) and env["CMRBIAS_COHORT_ROOT"].startswith(
        mount
    )
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"]

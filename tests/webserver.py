"""A real `dagster-webserver` in a subprocess, and the GraphQL calls its UI makes.

The launch follows the UI's "Materialize" button (ui-core LaunchAssetExecutionButton and
LaunchAssetChoosePartitionsDialog in dagster-webserver 1.13): pick the first job every selected
asset belongs to, ask the job for the partition's tags, then `launchPipelineExecution` with the
assets and their checks.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WEBSERVER = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "dagster-webserver"

# What a user may type into the launch dialog's config editor: one process per run instead of
# one per step, each of which would import the code location again (~5 s on 2 cores).
IN_PROCESS_RUN_CONFIG = "execution:\n  config:\n    in_process: {}\n"

LOCATIONS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
  }
}
"""

LAUNCH_NODES_QUERY = """
query LaunchNodes($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    jobNames
    assetChecksOrError { ... on AssetChecks { checks { name jobNames } } }
  }
}
"""

PARTITION_TAGS_QUERY = """
query PartitionTags($params: PipelineSelector!, $partition: String!, $keys: [AssetKeyInput!]!) {
  pipelineOrError(params: $params) {
    __typename
    ... on Pipeline {
      partition(partitionName: $partition, selectedAssetKeys: $keys) {
        tagsOrError {
          ... on PartitionTags { results { key value } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""

LAUNCH_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { status tags { key value } }
  }
}
"""

RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on AssetCheckEvaluationEvent { evaluation { checkName success } }
      }
    }
  }
}
"""

MATERIALIZATION_QUERY = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $partitions, limit: 1) {
        partition
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
          ... on PathMetadataEntry { path }
        }
      }
    }
  }
}
"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class WebserverError(RuntimeError):
    """The webserver did not start, or a GraphQL call or a run failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Webserver:
    """A running webserver with one code location, and its repository's address."""

    process: subprocess.Popen
    url: str
    log_path: Path
    location: str = ""
    repository: str = ""

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """The `data` of a GraphQL call; GraphQL errors raise with their messages."""
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # invalid queries come back as HTTP 400
            body = json.load(error)
        if body.get("errors"):
            messages = "; ".join(error["message"] for error in body["errors"])
            raise WebserverError(f"GraphQL error from {self.url}: {messages}")
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the webserver's combined stdout and stderr."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until_loaded(self, timeout_s: float) -> None:
        """Block until the code location has loaded a repository; fail early on a load error."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebserverError(
                    f"dagster-webserver exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._repository_loaded():
                return
            time.sleep(1)
        raise WebserverError(f"code location not loaded after {timeout_s} s:\n{self.log_tail()}")

    def _repository_loaded(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/server_info", timeout=5).close()
            workspace = self.graphql(LOCATIONS_QUERY)["workspaceOrError"]
        except OSError:  # not listening yet, or closed the connection while starting
            return False
        for entry in workspace.get("locationEntries", []):
            location = entry["locationOrLoadError"] or {}
            if location.get("__typename") == "PythonError":
                raise WebserverError(f"code location {entry['name']} failed to load:\n{location}")
            if location.get("repositories"):
                self.location = entry["name"]
                self.repository = location["repositories"][0]["name"]
                return True
        return False

    def stop(self, grace_s: float = 15) -> None:
        """SIGINT, then SIGTERM, then SIGKILL to the process group (webserver, code server and
        run workers), each given `grace_s` for the webserver to exit; then kill what is left."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=grace_s)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def launch_like_ui(
        self,
        asset_names: list[str],
        partition: str | None = None,
        run_config: str = IN_PROCESS_RUN_CONFIG,
    ) -> str:
        """Launch one run of the assets (and their checks) as the UI's Materialize button does;
        the run id."""
        keys = [{"path": [name]} for name in asset_names]
        nodes = self.graphql(LAUNCH_NODES_QUERY, {"keys": keys})["assetNodes"]
        job = next(j for j in nodes[0]["jobNames"] if all(j in n["jobNames"] for n in nodes))
        tags = self._partition_tags(job, partition, keys) if partition else []
        checks = [
            {"name": check["name"], "assetKey": {"path": node["assetKey"]["path"]}}
            for node in nodes
            for check in node["assetChecksOrError"]["checks"]
            if job in check["jobNames"]
        ]
        params = {
            "mode": "default",
            "executionMetadata": {"tags": tags},
            "runConfigData": run_config,
            "selector": {
                **self._repository_selector(),
                "pipelineName": job,
                "assetSelection": keys,
                "assetCheckSelection": checks,
            },
        }
        launched = self.graphql(LAUNCH_MUTATION, {"executionParams": params})
        result = launched["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise WebserverError(f"launch of {asset_names} [{partition}] failed: {result}")
        return result["run"]["id"]

    def _repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository}

    def _partition_tags(self, job: str, partition: str, keys: list[dict]) -> list[dict]:
        variables = {
            "params": {**self._repository_selector(), "pipelineName": job},
            "partition": partition,
            "keys": keys,
        }
        pipeline = self.graphql(PARTITION_TAGS_QUERY, variables)["pipelineOrError"]
        tags = pipeline["partition"]["tagsOrError"]
        if "results" not in tags:
            raise WebserverError(f"no tags for partition {partition} of {job}: {tags}")
        return tags["results"]

    def wait_for_run(self, run_id: str, timeout_s: float) -> dict:
        """The finished run (status, tags); a failed run raises with its event messages."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
            if run["status"] == "SUCCESS":
                return run
            if run["status"] in FINISHED:
                raise WebserverError(f"run {run_id} ended {run['status']}:\n{self.run_log(run_id)}")
            time.sleep(0.5)
        raise WebserverError(
            f"run {run_id} not finished after {timeout_s} s:\n{self.run_log(run_id)}"
        )

    def run_events(self, run_id: str) -> list[dict]:
        """Every event of a run, oldest first."""
        return self.graphql(RUN_EVENTS_QUERY, {"runId": run_id})["logsForRun"]["events"]

    def run_log(self, run_id: str) -> str:
        """A run's event messages and step errors, one a line."""
        lines = []
        for event in self.run_events(run_id):
            lines.append(f"[{event.get('stepKey') or '-'}] {event.get('message', '')}")
            if event.get("error"):
                lines.append(event["error"]["message"] + "".join(event["error"]["stack"]))
        return "\n".join(lines)

    def latest_metadata(self, asset_name: str, partition: str | None = None) -> dict:
        """Label -> value of the asset's (partition's) latest materialization metadata."""
        variables = {
            "key": {"path": [asset_name]},
            "partitions": [partition] if partition else None,
        }
        asset = self.graphql(MATERIALIZATION_QUERY, variables)["assetOrError"]
        materializations = asset.get("assetMaterializations") or []
        if not materializations:
            raise WebserverError(f"{asset_name} [{partition}] has no materialization")
        return {
            entry["label"]: next((v for k, v in entry.items() if k != "label"), None)
            for entry in materializations[0]["metadataEntries"]
        }

    def dismiss_community_dialog(self) -> None:
        """What the UI's "Skip" does on the first visit: never show the newsletter dialog."""
        self.graphql("mutation { setNuxSeen }")


def start_webserver(module: str, env: dict[str, str], log_path: Path) -> Webserver:
    """`dagster-webserver -m MODULE` on a free port, in its own process group.

    `env --default-signal` restores SIGINT/SIGTERM in case this process inherited them ignored
    (a background job of a non-interactive shell), which the webserver's children would inherit.
    """
    port = free_port()
    command = [
        "env",
        "--default-signal=INT,TERM",
        str(WEBSERVER),
        "-m",
        module,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Webserver(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)


@contextlib.contextmanager
def tiny_study_webserver(root: Path, cohort: Path, home: Path) -> Iterator[Webserver]:
    """The study's code location on the tiny profile (work folder `root/work`, the cohort at
    `cohort`, DAGSTER_HOME `home`), served until the block ends."""
    env = {
        "CMRBIAS_PROFILE": "tiny",
        "CMRBIAS_WORK_DIR": str(root / "work"),
        "CMRBIAS_COHORT_ROOT": str(cohort),
        "DAGSTER_HOME": str(home),
    }
    server = start_webserver("cmrbias_dagster.definitions", env, root / "webserver.log")
    try:
        server.wait_until_loaded(timeout_s=120)
        yield server
    finally:
        server.stop()

"""Reading asset events for the automation: latest versions, and what an item was built from."""

import dagster as dg

# Where Dagster records the data version of an asset event, and the partition of a run.
DATA_VERSION_TAG = "dagster/data_version"
PARTITION_TAG = "dagster/partition"

MANIFEST = dg.AssetKey("subject_manifest")
MANIFEST_ITEM = "subject_manifest"
TEST_SET = dg.AssetKey("test_set")
TRAINING_SPLIT = dg.AssetKey("training_split")
CV_FOLDS = dg.AssetKey("cv_folds")
NNUNET_DATASET = dg.AssetKey("nnunet_dataset")
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def latest_event(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    partition: str | None = None,
    before: int | None = None,
    observation: bool = False,
) -> dg.EventLogRecord | None:
    """The latest materialization (or observation) of an asset partition, if given before a
    storage id."""
    records_filter = dg.AssetRecordsFilter(
        key, asset_partitions=[partition] if partition else None, before_storage_id=before
    )
    fetch = instance.fetch_observations if observation else instance.fetch_materializations
    records = fetch(records_filter, limit=1).records
    return records[0] if records else None


def version_of(record: dg.EventLogRecord | None) -> str | None:
    """The data version an asset event recorded."""
    event = record.asset_event if record else None
    return event.tags.get(DATA_VERSION_TAG) if event else None


def built_from(
    instance: dg.DagsterInstance,
    parent: dg.AssetKey,
    child: dg.EventLogRecord | None,
    partition: str | None = None,
    observation: bool = False,
) -> str | None:
    """The version of `parent` (partition) that `child` was built from: the latest before it."""
    if child is None:
        return None
    return version_of(latest_event(instance, parent, partition, child.storage_id, observation))


def item(key: dg.AssetKey, partition: str) -> str:
    """A cursor item: an asset partition, e.g. `test_set[race_black]`."""
    return f"{key.to_user_string()}[{partition}]"


def item_partition(name: str) -> str:
    """The partition key of a cursor item."""
    return name[name.index("[") + 1 : -1]

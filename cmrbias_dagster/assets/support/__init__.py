"""What only assets share, and no asset module owns: what a fold asset reports once trained
(`fold_reports`), how `ensemble_prediction` segments a partition by its mitigation
(`ensemble_routes`), the fold checkpoints' asset names (`fold_keys`), and how a table or a figure
leaves an asset (`outputs`).
Imports `lib`, `resources` and Dagster, never an asset module."""

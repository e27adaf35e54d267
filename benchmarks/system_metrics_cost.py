"""What MLflow's system metrics cost training: the engine's samples/s on the superres MLP with and
without a run that samples the machine, alternating in one process.

    python -m benchmarks.system_metrics_cost [--device auto] [--interval 5] [--repeats 3]

Every stage's MLflow run samples CPU, memory, disk, network (and per GPU utilisation and memory)
every `pipeline.tracking.SYSTEM_METRICS_INTERVAL` seconds; `--interval 1` shows a five times
denser sampling too. The store is a throwaway SQLite file.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from benchmarks.common import device_label
from benchmarks.engine_throughput import measure
from pipeline.core.device import pick_device, seed_everything
from pipeline.tracking import SYSTEM_METRICS_INTERVAL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--interval", type=float, default=SYSTEM_METRICS_INTERVAL)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=80)
    args = ap.parse_args()
    import mlflow

    seed_everything(0)
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{os.path.join(tmp, 'mlflow.db')}")
        mlflow.set_system_metrics_sampling_interval(args.interval)
        rates: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(args.repeats):
            rates["without"].append(measure(device, "pixel", 1024, args.epochs))
            with mlflow.start_run(log_system_metrics=True) as run:
                rates["with"].append(measure(device, "pixel", 1024, args.epochs))
        samples = len(mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id,
                                                                         "system/cpu_utilization_percentage"))
    without, with_ = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(f"device: {device_label(device)}; superres MLP, batch 1024; system metrics every {args.interval:g} s")
    print(f"without system metrics {without:12,.0f} samples/s  (runs: {', '.join(f'{r:,.0f}' for r in rates['without'])})")
    print(f"with system metrics    {with_:12,.0f} samples/s  (runs: {', '.join(f'{r:,.0f}' for r in rates['with'])}); "
          f"{samples} samples in the last run")
    print(f"with / without: {with_ / without:.3f}")


if __name__ == "__main__":
    main()

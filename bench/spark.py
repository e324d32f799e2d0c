"""The Spark benchmark: ``spark-run`` on ``local[2]`` against ``run --jobs 2``, on the data of
``bench/run.py`` (same generator, same events and seed), measured in one run.

It reports Spark's start-up (a session and a first trivial job), the job itself (events per
second, and bytes of input per second per core), its ratio to ``run --jobs 2`` on the same
machine, and checks that both packages hold the same log files. From the per-core figure it
prints an *estimate* (not a measurement) of what N executors would take over a 10 TB archive.

Usage: ``python bench/spark.py [--events N] [--seed S] [--out DIR] [--split-mb MB]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import generate  # noqa: E402  (a sibling module of this script)

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE_BYTES = 10 * 10**12  # the 10 TB archive of the estimate


def digest(directory: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(directory.glob("*.gz")):
        sha.update(path.read_bytes())
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--split-mb", type=int, default=32)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log, _ = generate(args.events, args.seed, 1000, args.out)
    size = log.stat().st_size
    key = args.out / "bench.key"
    if not key.exists():
        subprocess.run([sys.executable, "-m", "anonymizer.cli", "keygen", "--out", str(key)], check=True, capture_output=True)
    local_out, spark_out = args.out / "package-run-j2", args.out / "package-spark"
    for path in (local_out, spark_out):
        shutil.rmtree(path, ignore_errors=True)

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "anonymizer.cli", "run", str(log), "--out", str(local_out), "--key-file", str(key), "--quiet", "--jobs", "2"], check=True)
    local_seconds = time.perf_counter() - started

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession  # noqa: PLC0415  (after the environment is set)

    from anonymizer import load_key, load_policy  # noqa: PLC0415
    from anonymizer.io.spark import spark_run  # noqa: PLC0415

    started = time.perf_counter()
    session = SparkSession.builder.master("local[2]").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.parallelize(range(2), 2).count()
    startup = time.perf_counter() - started
    started = time.perf_counter()
    spark_run(session, [log], spark_out, load_policy("research"), load_key(key), split_bytes=args.split_mb << 20)
    job = time.perf_counter() - started
    session.stop()

    identical = digest(local_out) == digest(spark_out)
    per_core = size / job / 2
    figures = {
        "events": args.events, "input_mb": round(size / 1e6, 1), "run_jobs2_seconds": round(local_seconds, 2),
        "spark_startup_seconds": round(startup, 2), "spark_job_seconds": round(job, 2),
        "spark_events_per_second": round(args.events / job), "run_jobs2_events_per_second": round(args.events / local_seconds),
        "ratio_spark_to_run_jobs2": round(local_seconds / job, 3), "ratio_with_startup": round(local_seconds / (job + startup), 3),
        "input_mb_per_second_per_core": round(per_core / 1e6, 2), "identical_logs": identical,
    }
    print(f"{'input':<34}{figures['input_mb']} MB, {args.events} events")
    print(f"{'run --jobs 2':<34}{local_seconds:8.2f} s  {figures['run_jobs2_events_per_second']:>8} ev/s")
    print(f"{'spark start-up (session + 1 job)':<34}{startup:8.2f} s")
    print(f"{'spark-run on local[2] (job)':<34}{job:8.2f} s  {figures['spark_events_per_second']:>8} ev/s")
    print(f"{'ratio spark / run --jobs 2':<34}{figures['ratio_spark_to_run_jobs2']:8.3f}  (with start-up: {figures['ratio_with_startup']:.3f})")
    print(f"{'input per core':<34}{figures['input_mb_per_second_per_core']:8.2f} MB/s")
    print(f"{'log files identical to run':<34}{identical}")
    print("estimate, not a measurement: a 10 TB archive at this per-core speed would take")
    for executors, cores in ((10, 8), (50, 8), (200, 8)):
        hours = ARCHIVE_BYTES / (per_core * executors * cores) / 3600 + startup / 3600
        print(f"  {executors:>4} executors x {cores} cores: {hours:8.1f} h")
    (args.out / "bench-spark.json").write_text(json.dumps(figures, indent=2))
    if not identical:
        sys.exit("the Spark package's log files differ from run's")


if __name__ == "__main__":
    main()

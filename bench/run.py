"""`make bench`: run the benchmarks, write bench/results/<name>.json and print a short table."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import environment_bench
import gateway_bench
import image_bench
import named_servers_bench
import operations_bench
import scale_bench
import stack_bench

RESULTS = Path(__file__).parent / "results"
BENCHES = {"image": image_bench.run, "layers": image_bench.layer_reuse, "environment": environment_bench.run,
           "stack": stack_bench.run, "gateway": gateway_bench.run, "operations": operations_bench.run,
           "named-servers": named_servers_bench.run, "scale": scale_bench.run}


def flatten(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in flatten(f"{prefix}.{k}" if prefix else k, v)]
    return [(prefix, str(value))]


def main(names: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    for name in names or BENCHES:
        result = {"machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
                  "when": time.strftime("%Y-%m-%dT%H:%M:%S"), **BENCHES[name]()}
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\n== {name} ==")
        for key, value in flatten("", result):
            print(f"  {key:<45} {value}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The load test's gate without its speed thresholds, for the tests that check something else with a load run on a
machine the suite's other workers share: the run keeps the rest of its gate (failure ratio, every over-limit body
answered 413, nothing lost). A broken speed threshold failing a run is tested in ``test_locust_runs``; the speed
itself is measured by the benchmarks (``benchmarks/upload_paths.py``), and ``.ci/run``'s rehearsal keeps the default
thresholds, on a machine it has to itself."""

from __future__ import annotations

from loadtests.options import env_var

THRESHOLDS = {"--min-uploads-per-s": "0", "--min-upload-mb-per-s": "0", "--max-upload-p95-ms": "1e12"}
ARGS = tuple(part for option, value in THRESHOLDS.items() for part in (option, value))
ENVIRONMENT = {env_var(option): value for option, value in THRESHOLDS.items()}

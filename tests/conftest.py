"""Keep every test offline and quiet: no hub look-ups, update checks or telemetry."""

import os

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "WANDB_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TOKENIZERS_PARALLELISM": "false",
    # A stalled Ray Data job (a deadlock) fails its test in minutes, not Ray's default 30.
    "RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S": "180",
}.items():
    os.environ.setdefault(_name, _value)


def pytest_sessionfinish() -> None:
    """Stop the temporary Prefect servers of flows run in this process (as `asif build-anchors`
    does) while pytest's output is open, their queued logs sent first: at interpreter exit the
    goodbye line fails, and a log sent after the stop is an error."""
    import logging
    import sys

    if "prefect.server.api.server" not in sys.modules:
        return
    from prefect.server.api.server import SubprocessASGIServer

    from tests.prefect_fixtures import drain_prefect_services

    drain_prefect_services()
    logging.getLogger("prefect").disabled = True  # the goodbye line
    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()

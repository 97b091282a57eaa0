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

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READ = (
    "import flows\n"
    "from prefect.settings import get_current_settings\n"
    "print(get_current_settings().server.analytics_enabled)\n"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "False"), ("true", "True")])
def test_importing_the_flows_turns_off_server_telemetry_unless_set(given, expected):
    """No `Failed to send telemetry` errors from the temporary server of an offline run."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    if given is not None:
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = given
    done = subprocess.run(
        [sys.executable, "-c", READ], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == expected

"""Prefect flows of the ASIF pipeline.

A flow called as a plain function starts a temporary Prefect server, whose telemetry service
logs `ERROR ... Failed to send telemetry` on any machine without internet: it reads like a
failure of the run and is none. Importing the flows turns it off for the servers this process
starts, unless PREFECT_SERVER_ANALYTICS_ENABLED is set.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

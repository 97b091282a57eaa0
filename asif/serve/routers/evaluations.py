"""`/evaluations`: the stored zero-shot results of the served table's recent versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from asif.evaluation.evaluations_table import recent_evaluations
from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.dependencies import Live

router = APIRouter(dependencies=[Authorized])


@router.get("/evaluations", response_model=schemas.EvaluationsResponse)
def evaluations(live: Live, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    """The newest results of `asif evaluate` and the evaluate flow for this anchor table (the
    `evaluations` table beside it; none if it has none)."""
    columns = list(schemas.EvaluationRow.model_fields)
    rows = recent_evaluations(
        live.uri, live.name, columns, limit, storage_options=live.storage_options
    )
    return {"evaluations": rows}  # NaN (acc5 below five classes) is written as null

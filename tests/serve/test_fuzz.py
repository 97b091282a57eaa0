"""Issue 13, item 4: the service, fuzzed from its own OpenAPI schema (schemathesis), answers
no 5xx and nothing that breaks the schema. Bounded: a few examples per operation, in-process
(ASGI), so nothing leaves this machine."""

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from asif.serve.app import create_app
from asif.serve.live_model import LiveModel

EXAMPLES = 15  # per operation


def test_no_server_errors_and_answers_fit_the_schema(shape_table, encoders):
    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(live, watch_interval=None))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def answers_well(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            if response.status_code < 300:
                case.validate_response(response, checks=[response_schema_conformance])

        answers_well()

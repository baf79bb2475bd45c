import pytest

from caravan_commons.settings import SettingsError, load_settings
from caravan_gateway.settings import GatewaySettings

BASE = {"CARAVAN_GATEWAY_ROUTES": '{"/api/svc-a": "svc-a"}', "CARAVAN_API_KEYS_FILE": "keys.json"}


def test_settings_come_from_caravan_variables():
    s = load_settings(GatewaySettings, BASE | {"CARAVAN_RATE_PER_SECOND": "5", "CARAVAN_PORT": "9000"})
    assert s.gateway_routes == {"/api/svc-a": "svc-a"}
    assert (s.rate_per_second, s.port, s.host, s.service_name) == (5.0, 9000, "127.0.0.1", "gateway")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CARAVAN_GATEWAY_ROUTES": "[1]"}, "CARAVAN_GATEWAY_ROUTES"),
        ({"CARAVAN_MAX_BODY_BYTES": "-1"}, "CARAVAN_MAX_BODY_BYTES"),
        ({"CARAVAN_RATE_BURST": "0"}, "CARAVAN_RATE_BURST"),
        ({"CARAVAN_JWT_ALGORITHMS": '["none"]'}, "CARAVAN_JWT_ALGORITHMS"),
        ({"CARAVAN_API_KEYS_FILE": ""}, "CARAVAN_API_KEYS_FILE"),
    ],
)
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as err:
        load_settings(GatewaySettings, BASE | env)
    assert variable in str(err.value) or "CARAVAN_*" in str(err.value)

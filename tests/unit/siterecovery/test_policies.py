"""Policy validation as the real service does it, before anything is created."""

import pytest

from fakes.azure.siterecovery import errors
from fakes.azure.siterecovery.models.policies import check_policy_input


def body(**inp):
    return {
        "properties": {
            "providerSpecificInput": {
                "instanceType": "InMageAzureV2",
                "multiVmSyncStatus": "Enable",
                **inp,
            }
        }
    }


@pytest.mark.parametrize("minutes", [1, 30, 59])
def test_app_consistent_under_60_minutes_is_15040(minutes):
    with pytest.raises(errors.AppConsistentFrequencyTooLow) as info:
        check_policy_input(body(appConsistentFrequencyInMinutes=minutes))
    assert info.value.code == "15040" and info.value.status == 400
    assert info.value.body()["error"]["recommendedAction"]


@pytest.mark.parametrize("minutes", [0, 60, 240, 720])
def test_app_consistent_off_or_at_least_an_hour_is_accepted(minutes):
    assert (
        check_policy_input(body(appConsistentFrequencyInMinutes=minutes))[
            "appConsistentFrequencyInMinutes"
        ]
        == minutes
    )


def test_retention_at_most_15_days():
    assert check_policy_input(body(recoveryPointHistory=21600))["recoveryPointHistory"] == 21600
    with pytest.raises(errors.RetentionTooLong):
        check_policy_input(body(recoveryPointHistory=21601))


def test_defaults_and_fixed_crash_consistent_interval():
    settings = check_policy_input(body())
    assert settings == {
        "recoveryPointThresholdInMinutes": 60,
        "recoveryPointHistory": 1440,
        "crashConsistentFrequencyInMinutes": 5,
        "appConsistentFrequencyInMinutes": 0,
        "multiVmSyncStatus": "Enable",
    }


def test_bad_inputs():
    with pytest.raises(errors.InvalidInput):
        check_policy_input(
            {"properties": {"providerSpecificInput": {"instanceType": "InMageAzureV2"}}}
        )
    with pytest.raises(errors.InvalidInput):
        check_policy_input(body(recoveryPointHistory="a day"))
    with pytest.raises(errors.InvalidInput):
        check_policy_input(body(appConsistentFrequencyInMinutes=780))
    with pytest.raises(errors.InvalidInput):
        check_policy_input(body(appConsistentFrequencyInMinutes=120, recoveryPointHistory=60))
    with pytest.raises(errors.ProviderNotEmulated) as info:
        check_policy_input({"properties": {"providerSpecificInput": {"instanceType": "A2A"}}})
    assert info.value.status == 501

"""Settings come from LBS_* variables; a malformed one is named, not a traceback deep inside."""

from __future__ import annotations

import pytest

from lbs.config import Settings


def test_environment_overrides_defaults_with_their_types() -> None:
    settings = Settings.from_env(
        {"LBS_WORKERS": "5", "LBS_INDEX_REFRESH_S": "0.5", "LBS_H3_RESOLUTIONS": "6,8"}
    )

    assert (settings.workers, settings.index_refresh_s, settings.resolutions) == (5, 0.5, (6, 8))
    assert Settings.from_env({}).database_url.startswith("sqlite:///")


@pytest.mark.parametrize(("name", "value"), [("LBS_WORKERS", "two"), ("LBS_INDEX_REFRESH_S", "soon")])
def test_a_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("value", ["abc", "9,7", "7,7,9", "7,16", "", "-1,3"])
def test_h3_resolutions_must_increase_within_h3s_range(value: str) -> None:
    with pytest.raises(ValueError, match="LBS_H3_RESOLUTIONS"):
        Settings.from_env({"LBS_H3_RESOLUTIONS": value})

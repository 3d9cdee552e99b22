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

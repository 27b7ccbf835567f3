"""How a listed image becomes a `LiveImage`: its error detail, its creation time and its
updates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dateutil.tz import tzlocal

from reconciler.kinds.image import error_detail, live_image

LISTED = {"ImageId": "wsi-0a1b2c3d4", "Name": "golden", "Description": "d", "State": "ERROR"}


def test_an_image_with_only_error_details_says_what_they_say() -> None:
    image = {
        **LISTED,
        "ErrorDetails": [
            {"ErrorCode": "OutdatedPowershellVersion", "ErrorMessage": "update PowerShell"},
            {"ErrorCode": "InsufficientDiskSpace"},
        ],
    }
    assert error_detail(image) == (
        "OutdatedPowershellVersion: update PowerShell: InsufficientDiskSpace"
    )
    assert live_image(image, {}).error_message == error_detail(image)


def test_error_code_and_message_come_first_and_are_not_repeated() -> None:
    image = {
        **LISTED,
        "ErrorCode": "E1",
        "ErrorMessage": "disk full",
        "ErrorDetails": [{"ErrorCode": "E1", "ErrorMessage": "disk full"}],
    }
    assert error_detail(image) == "E1: disk full"
    live = live_image(image, {})
    assert (live.error_code, live.error_message) == ("E1", "disk full")


def test_an_image_without_any_detail_has_none() -> None:
    assert error_detail(LISTED) == ""
    assert live_image(LISTED, {}).error_message is None


def test_creation_times_are_held_in_utc_whatever_zone_botocore_gave() -> None:
    # botocore parses timestamps into the machine's local zone (tzlocal()).
    here = datetime(2026, 11, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    created = live_image({**LISTED, "Created": here}, {}).created
    assert created is not None
    assert created.utcoffset() == timedelta(0)
    assert (created.hour, created.minute) == (10, 0)
    local = datetime(2026, 11, 1, 12, 0, tzinfo=tzlocal())
    again = live_image({**LISTED, "Created": local}, {}).created
    assert again == local
    assert again is not None
    assert again.utcoffset() == timedelta(0)


def test_updates_say_whether_aws_has_newer_components_and_what_they_are() -> None:
    offered = {"UpdateAvailable": True, "Description": "WorkSpaces agent 3.2, new drivers"}
    live = live_image({**LISTED, "State": "AVAILABLE", "Updates": offered}, {})
    assert (live.update_available, live.update_description) == (True, offered["Description"])
    current = live_image({**LISTED, "Updates": {"UpdateAvailable": False}}, {})
    assert (current.update_available, current.update_description) == (False, None)
    # An answer without Updates (or with a malformed one) says nothing: null, not false.
    assert live_image(LISTED, {}).update_available is None
    assert (
        live_image({**LISTED, "Updates": {"UpdateAvailable": "yes"}}, {}).update_available is None
    )

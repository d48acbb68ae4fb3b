"""Rows made on first use, when two requests come at once (two administrators, or a double click): the first
connector seeded from the environment and the schedule row of « Paramétrage des connecteurs ».

The race is made certain: another transaction has created the row but not committed it when this request looks for
it (it sees nothing), then commits while this request writes.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from connectors.models import Connector, SyncSchedule
from connectors.services import connector_seed_from_environment, schedule_get

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _at_the_same_moment(other_request, this_request):
    created, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other():
        try:
            with transaction.atomic():
                other_request()
                created.set()
                commit.wait(10)
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            created.set()
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    created.wait(10)
    threading.Timer(1.0, commit.set).start()
    try:
        return this_request()
    finally:
        thread.join(10)
        assert errors == []


def test_two_first_visits_seed_one_connector(settings):
    settings.SAGE_FRP1000_URL = "http://127.0.0.1:8765"
    seeded = _at_the_same_moment(connector_seed_from_environment, connector_seed_from_environment)
    assert Connector.objects.count() == 1
    assert seeded == Connector.objects.get()
    assert seeded.has_api_key


def test_two_first_visits_make_one_schedule():
    schedule = _at_the_same_moment(schedule_get, schedule_get)
    assert SyncSchedule.objects.count() == 1
    assert schedule == SyncSchedule.objects.get()

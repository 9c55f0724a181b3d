"""Hypothesis profiles: ``dev`` (default, fast) and ``ci`` (>= 200 examples per property).

The property tests take the plugin's ``xp``/``device``/``dtype`` fixtures inside ``@given``:
those are immutable values, identical for every example, so hypothesis' function-scoped
fixture health check does not apply and is suppressed in both profiles.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("dev")

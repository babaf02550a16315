"""Profile time zones work on a machine without a system zone database (PF-1).

A child process is started with ``PYTHONTZPATH`` naming an empty folder, as
on Windows or in a slim container: `zoneinfo` then has only the ``tzdata``
package the library depends on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import os
    import zoneinfo
    from securepractice import HashParameters, Messaging, Portal, Settings
    from securepractice.testing import Outbox, World

    # The only folder zoneinfo may read is the empty one: zones come from tzdata alone.
    assert len(zoneinfo.TZPATH) == 1 and not os.listdir(zoneinfo.TZPATH[0])
    portal = Portal.in_memory(
        messaging=Messaging.using(Outbox()),
        settings=Settings(hashing=HashParameters(time_cost=1, memory_cost=8, parallelism=1)),
    )
    world = World(portal.deps)
    world.user("dr@example.com", practice=world.practice())
    token = world.sign_in("dr@example.com")
    print(portal.accounts.update_profile(token, time_zone="America/Chicago").time_zone)
    """
)


def test_pf_1_time_zones_need_no_system_zone_database(tmp_path: Path) -> None:
    empty = tmp_path / "no-zones"
    empty.mkdir()
    environment = {**os.environ, "PYTHONTZPATH": str(empty)}
    child = subprocess.run(  # noqa: S603 - this interpreter, this module's script
        [sys.executable, "-c", CHILD],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "America/Chicago"

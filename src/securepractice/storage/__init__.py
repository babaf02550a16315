"""Storage: everything the portal remembers, behind `typing.Protocol` ports (ST-1).

`securepractice.storage.ports` defines the repositories and the unit of work
that services use; `securepractice.storage.memory` (tests) and
`securepractice.storage.sqlite` (the embedded default) implement them, and
`securepractice.storage.faults` wraps any of them to inject storage failures.
Importing this package opens nothing: a store connects only when built.
"""

from __future__ import annotations

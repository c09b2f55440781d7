"""Every test run checks the replication invariants (`sim.invariants`) continuously."""

from __future__ import annotations

from sim import invariants

invariants.ENABLED_BY_DEFAULT[0] = True

"""The pre-upgrade gate: rehearse an Immich upgrade on a cluster before it reaches the node.

Phases, in order, each a test case of its own (JUnit, HTML): deploy the from-release and wait until it is
Available; run the scenarios; seed assets with unique bytes; upgrade to the to-release and wait for the rollout and
the new version; verify every seeded asset, byte for byte, and run the scenarios again. ``immich-conformance
rehearse`` runs them (see ``immich_conformance.rehearsal.run``).
"""

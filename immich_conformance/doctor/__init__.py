"""``immich-conformance doctor``: check the node the stack is about to run on, locally or over SSH.

- `settings`: what the checks need, read from a rendered overlay (host folders, node port, public hostname...).
- `node`: a node seen through a pytest-testinfra host, optionally under a fake root (tests).
- `verdicts`: pass / warn / fail with what was found and the exact fix.
- `checks`: one module per group (NAS, boot ordering, internal drive, the node, DNS).
- `runner`: every check as a pytest test (so ``--junitxml`` works), the results collected.
- `command`: the subcommand's arguments and output.
"""

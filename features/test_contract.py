"""Binds every scenario under features/ so that `pytest features/` runs them (steps live in steps/)."""

from pytest_bdd import scenarios

scenarios(".")

"""NetworkPolicy as a cluster enforces it: the stack's whole traffic matrix, judged three ways (the project's static
evaluator, cyclonus, and real connections from inside the pods)."""

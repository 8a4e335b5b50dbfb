"""Load tests of the upload paths (locust): ``locust -f loadtests/upload.py``; see ``loadtests/upload.py``."""

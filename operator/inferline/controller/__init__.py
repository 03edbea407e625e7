"""The operator: the only package that talks to Kubernetes (kopf and the official client)."""

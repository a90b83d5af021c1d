"""Ray Serve: the model deployments (one per role), their OpenAI-compatible ingress, and the
TailorMind HTTP API (``api.py``: ingress, workers, job records, auth guard, offline config check)."""

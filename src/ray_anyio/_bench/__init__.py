"""``python -m ray_anyio bench``: scenarios B1-B7 on both backends, with baselines."""

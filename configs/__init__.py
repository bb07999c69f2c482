# Hydra config groups, shipped inside the package as ``nmt.configs`` (see pyproject.toml).

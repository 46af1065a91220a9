"""nb2pipe: tagged Jupyter notebook -> tested Prefect pipeline, dependencies inferred statically."""

__version__ = "0.1.0"

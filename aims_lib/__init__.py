"""aims_lib: hierarchical AIMS infant pose recognition with synthetic data and LMMD."""

__version__ = "0.1.0"

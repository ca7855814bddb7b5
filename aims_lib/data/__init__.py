"""The AIMS dataset format, its importers and torch datasets (torch datasets: import
``aims_lib.data.torch_datasets`` explicitly, so that format tools do not import torch)."""

from aims_lib.data.format import (
    ANNOTATIONS_FILE,
    DOMAINS,
    SPLITS,
    AimsDataset,
    DatasetError,
    Sample,
    load_dataset,
    new_dataset,
    person_category,
    validate,
    write_dataset,
)

__all__ = [
    "ANNOTATIONS_FILE",
    "DOMAINS",
    "SPLITS",
    "AimsDataset",
    "DatasetError",
    "Sample",
    "load_dataset",
    "new_dataset",
    "person_category",
    "validate",
    "write_dataset",
]

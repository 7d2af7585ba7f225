"""Built-in data sources, the operations that make tasks from them, and your own data
(image folders, CSV files, .npz, Hugging Face datasets)."""

from transferlab.data._digits import load_digits
from transferlab.data._fashion import download_fashion, fashion_location, load_fashion
from transferlab.data._glyphs import available_charsets, glyph_fonts, load_glyphs
from transferlab.data._idx import read_idx, write_idx
from transferlab.data._ops import concat_tasks, k_shot, relabel, subsample, subset_classes
from transferlab.data._pairs import PairedTasks, concat_pairs
from transferlab.data._procedural import load_shapes, load_textures
from transferlab.data._shuffle import (
    block_permutation,
    block_shuffle,
    shuffle_blocks,
    unshuffle_blocks,
)
from transferlab.data._sized import load_sized
from transferlab.data._sources import SourceInfo, list_sources, load_task, parse_spec
from transferlab.data._task import DATA_VERSION, Task

from transferlab.data._external import (
    ImageData,
    ImageFiles,
    from_hf_dataset,
    load_csv,
    load_data,
    load_image_folder,
    load_npz,
)

__all__ = [
    "ImageData",
    "ImageFiles",
    "load_data",
    "load_image_folder",
    "load_csv",
    "load_npz",
    "from_hf_dataset",
    "Task",
    "DATA_VERSION",
    "load_task",
    "load_sized",
    "parse_spec",
    "list_sources",
    "SourceInfo",
    "load_fashion",
    "download_fashion",
    "fashion_location",
    "load_digits",
    "load_glyphs",
    "glyph_fonts",
    "available_charsets",
    "load_shapes",
    "load_textures",
    "read_idx",
    "write_idx",
    "subset_classes",
    "relabel",
    "k_shot",
    "subsample",
    "concat_tasks",
    "block_permutation",
    "shuffle_blocks",
    "unshuffle_blocks",
    "block_shuffle",
    "concat_pairs",
    "PairedTasks",
]

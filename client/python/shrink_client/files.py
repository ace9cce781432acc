"""Which local files a job uploads: the model folder's and the task's (as the `shrink` CLI does)."""

from __future__ import annotations

import hashlib
import os
import stat

import grpc

from .errors import ShrinkError

MODEL_CONFIG_FILE = "config.json"
MODEL_WEIGHTS_FILE = "model.safetensors"
# A transformer folder's tokenizer files travel with its model when present.
TOKENIZER_FILE_NAMES = ("vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json",
                        "special_tokens_map.json")
BUILTIN_TASKS = ("fashion-mnist", "fortunes-topic", "fortunes-lm", "wordnet-lexname")

# Where Debian's dataset-fashion-mnist, fortunes, fortunes-min and wordnet-base packages put their files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                       "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
FORTUNES_DIR = "/usr/share/games/fortunes"
WORDNET_DIR = "/usr/share/wordnet"
WORDNET_FILES = ("data.adj", "data.adv", "data.noun", "data.verb")

HASH_CHUNK_BYTES = 1 << 20


def sha256_file(path: str) -> str:
    """The lower-case hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def model_files(model_dir: str) -> list[tuple[str, str]]:
    """(name, path) of the files a model folder uploads: config, weights, tokenizer files."""
    files = []
    for name in (MODEL_CONFIG_FILE, MODEL_WEIGHTS_FILE) + TOKENIZER_FILE_NAMES:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            files.append((name, path))
        elif name in (MODEL_CONFIG_FILE, MODEL_WEIGHTS_FILE):
            raise ShrinkError(grpc.StatusCode.NOT_FOUND, f"model folder {model_dir} has no {name}")
    return files


def fortune_files(folder: str = FORTUNES_DIR) -> list[tuple[str, str]]:
    """(name, path) of the fortune data files in `folder`: no index (.dat), links or sub-folders."""
    if not os.path.isdir(folder):
        return []
    files = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or name.endswith((".dat", ".u8", ".sh")):
            continue
        path = os.path.join(folder, name)
        if stat.S_ISREG(os.lstat(path).st_mode):
            files.append((name, path))
    return files


def task_files(task: str) -> list[tuple[str, str]]:
    """(name, path) of the data files the task `task` uploads; a user's data file travels under its base name."""
    if task == "fashion-mnist":
        files = [(name, os.path.join(FASHION_MNIST_DIR, name)) for name in FASHION_MNIST_FILES]
        for _, path in files:
            if not os.path.isfile(path):
                raise ShrinkError(grpc.StatusCode.NOT_FOUND,
                                  f"{path} is missing; install the Debian package dataset-fashion-mnist")
        return files
    if task in ("fortunes-topic", "fortunes-lm"):
        files = fortune_files()
        if not files:
            raise ShrinkError(grpc.StatusCode.NOT_FOUND, f"{FORTUNES_DIR} has no fortune files; install the "
                              "Debian packages fortunes and fortunes-min")
        return files
    if task == "wordnet-lexname":
        files = [(name, os.path.join(WORDNET_DIR, name)) for name in WORDNET_FILES]
        for _, path in files:
            if not os.path.isfile(path):
                raise ShrinkError(grpc.StatusCode.NOT_FOUND, f"{path} is missing; install the Debian package wordnet-base")
        return files
    if not os.path.isfile(task):
        raise ShrinkError(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown task '{task}': not {', '.join(BUILTIN_TASKS)} or a data file "
                          "(.jsonl / .tsv classification, .txt language modelling)")
    return [(os.path.basename(task), task)]

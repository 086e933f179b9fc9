"""Fine-tune the embedder on the editors' curated lists (train split only) and export it as int8 ONNX.

Pairs (event, a curated neighbour) come from train-split events whose neighbour is a train-split event too, and
never from the held-out part of the train split (`truth.DEV`), on which the settings are chosen: no test
query and no test query's list reaches the model. The loss is MultipleNegativesRankingLoss (each pair's
neighbour against every other pair's in the batch), so a batch holds no two pairs whose events are in each
other's curated lists: those would be taught as unrelated. Torch on the CPU, seeded; the result is saved with
its settings, the data's fingerprint and the base model's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from recommender.embed import BASE, model_path
from recommender.index import Index
from recommender.truth import Truth, subsplit_of

SETTINGS_FILE = "finetune.json"


@dataclass(frozen=True)
class FinetuneSettings:
    pairs: int = 8000
    pairs_per_query: int = 2
    batch_size: int = 32
    steps: int = 250
    learning_rate: float = 3e-5
    warmup: float = 0.1  # share of the steps
    scale: float = 20.0  # MultipleNegativesRankingLoss's cosine scale
    max_tokens: int = 128
    seed: int = 42


def training_pairs(index: Index, truth: Truth, settings: FinetuneSettings) -> list[tuple[int, int]]:
    """(row, row) pairs of an event and a curated neighbour, both in the train split and outside its dev part."""
    rng = random.Random(settings.seed)
    pairs: list[tuple[int, int]] = []
    for query in sorted(truth.relevant):
        if subsplit_of(query) != "train" or query not in index.position:
            continue
        neighbours = [r for r in truth.relevant[query] if subsplit_of(r) == "train" and r in index.position]
        rng.shuffle(neighbours)
        pairs += [(index.position[query], index.position[r]) for r in neighbours[: settings.pairs_per_query]]
    rng.shuffle(pairs)
    return pairs[: settings.pairs]


def batches_without_false_negatives(
    pairs: list[tuple[int, int]], related: dict[int, set[int]], batch_size: int, steps: int, seed: int
) -> list[list[tuple[int, int]]]:
    """`steps` batches of `batch_size` pairs, cycling through `pairs`; within a batch no event appears twice and
    no two events are in each other's curated lists (`related`)."""
    rng = random.Random(seed)
    out: list[list[tuple[int, int]]] = []
    waiting: list[tuple[int, int]] = []
    while len(out) < steps:
        if not waiting:
            waiting = pairs[:]
            rng.shuffle(waiting)
        batch: list[tuple[int, int]] = []
        taken: set[int] = set()
        blocked: set[int] = set()
        left = []
        for pair in waiting:
            if len(batch) < batch_size and not (set(pair) & (taken | blocked)):
                batch.append(pair)
                taken.update(pair)
                for event in pair:
                    blocked |= related.get(event, set())
            else:
                left.append(pair)
        waiting = left
        if len(batch) == batch_size or not waiting:
            out.append(batch)
    return out


def related_rows(index: Index, truth: Truth) -> dict[int, set[int]]:
    """Every event's curated neighbours as rows, both ways."""
    related: dict[int, set[int]] = {}
    for query, ids in truth.relevant.items():
        if query not in index.position:
            continue
        a = index.position[query]
        for other in ids:
            if other in index.position:
                b = index.position[other]
                related.setdefault(a, set()).add(b)
                related.setdefault(b, set()).add(a)
    return related


def data_fingerprint(index: Index, pairs: list[tuple[int, int]]) -> str:
    digest = hashlib.sha256()
    for a, b in pairs:
        digest.update(f"{index.text_sha[a]}:{index.text_sha[b]}\n".encode())
    return digest.hexdigest()[:16]


def finetune(
    index: Index,
    truth: Truth,
    out: Path,
    settings: FinetuneSettings = FinetuneSettings(),
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Train from the packaged base model and save it (sentence-transformers format, fp32) and its int8 ONNX
    export into `out`; returns `out`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    from recommender.atomic import write_text
    from recommender.embed import weights_fingerprint
    from recommender.onnx_export import export

    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    pairs = training_pairs(index, truth, settings)
    related = related_rows(index, truth)
    batches = batches_without_false_negatives(pairs, related, settings.batch_size, settings.steps, settings.seed)
    log(f"{len(pairs):,} train-split pairs, {len(batches)} batches of up to {settings.batch_size}")
    model = SentenceTransformer(str(model_path(BASE)), device="cpu", local_files_only=True)
    model.max_seq_length = settings.max_tokens
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    warmup = max(1, int(settings.warmup * len(batches)))

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (len(batches) - step) / max(1, len(batches) - warmup))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    model.train()
    losses = []
    for batch in tqdm(batches, disable=not progress, desc="finetune", unit="step"):
        anchors = model.preprocess([index.text(a) for a, _ in batch])
        positives = model.preprocess([index.text(b) for _, b in batch])
        left = torch.nn.functional.normalize(model(anchors)["sentence_embedding"], dim=-1)
        right = torch.nn.functional.normalize(model(positives)["sentence_embedding"], dim=-1)
        scores = settings.scale * left @ right.T
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    export(out, out / "onnx", quantized=True)
    record = {
        "settings": asdict(settings),
        "pairs": len(pairs),
        "data_fingerprint": data_fingerprint(index, pairs),
        "base_model_fingerprint": weights_fingerprint(BASE),
        "index": str(index.path),
        "loss_first_10": round(float(np.mean(losses[:10])), 4),
        "loss_last_10": round(float(np.mean(losses[-10:])), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "split": "both events of every pair in the train split outside its dev part (truth.subsplit_of)",
    }
    write_text(out / SETTINGS_FILE, json.dumps(record, indent=2) + "\n")
    log(f"trained in {record['seconds']:.0f}s, loss {record['loss_first_10']} -> {record['loss_last_10']}")
    return out


def ship_model(trained: Path) -> Path:
    """Copy a fine-tuned model's int8 ONNX, tokenizer, config and training record into the package (`tuned`)."""
    import shutil

    from recommender.embed import TUNED_DIR

    TUNED_DIR.mkdir(parents=True, exist_ok=True)
    for source, name in (
        (trained / "onnx" / "model_int8.onnx", "model_int8.onnx"),
        (trained / "tokenizer.json", "tokenizer.json"),
        (trained / "config.json", "config.json"),
        (trained / SETTINGS_FILE, SETTINGS_FILE),
    ):
        shutil.copyfile(source, TUNED_DIR / f".{name}.tmp")
        (TUNED_DIR / f".{name}.tmp").replace(TUNED_DIR / name)
    return TUNED_DIR
